//go:build linux

package sys_test

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"github.com/bpfmap/bpfmap/sys"
)

// A hash map through the raw bpf(2) surface: create, update, lookup,
// close.
func Example() {
	create := sys.MapCreateAttr{MapType: 1 /* BPF_MAP_TYPE_HASH */, KeySize: 4, ValueSize: 8, MaxEntries: 16}
	copy(create.MapName[:], "example")
	fd, err := sys.BPF(sys.BPF_MAP_CREATE, unsafe.Pointer(&create), unsafe.Sizeof(create))
	if err != nil {
		fmt.Println("create:", err)
		return
	}
	defer sys.Close(fd)

	key := make([]byte, 4)
	value := make([]byte, 8)
	// The buffers' addresses go into the attr as integers: pin them so
	// that they stay where they are for the calls.
	var pin runtime.Pinner
	defer pin.Unpin()
	pin.Pin(&key[0])
	pin.Pin(&value[0])

	binary.NativeEndian.PutUint32(key, 42)
	binary.NativeEndian.PutUint64(value, 4242)
	elem := sys.MapElemAttr{
		MapFD: uint32(fd),
		Key:   uint64(uintptr(unsafe.Pointer(&key[0]))),
		Value: uint64(uintptr(unsafe.Pointer(&value[0]))),
		Flags: sys.BPF_NOEXIST,
	}
	if _, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, unsafe.Pointer(&elem), unsafe.Sizeof(elem)); err != nil {
		fmt.Println("update:", err)
	}
	if _, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, unsafe.Pointer(&elem), unsafe.Sizeof(elem)); err != nil {
		fmt.Println("update again:", err)
	}

	clear(value)
	elem.Flags = 0
	if _, err := sys.BPF(sys.BPF_MAP_LOOKUP_ELEM, unsafe.Pointer(&elem), unsafe.Sizeof(elem)); err != nil {
		fmt.Println("lookup:", err)
	}
	fmt.Println("value:", binary.NativeEndian.Uint64(value))

	binary.NativeEndian.PutUint32(key, 7)
	_, err = sys.BPF(sys.BPF_MAP_LOOKUP_ELEM, unsafe.Pointer(&elem), unsafe.Sizeof(elem))
	fmt.Println("missing key:", err)
	// Output:
	// update again: file exists
	// value: 4242
	// missing key: no such file or directory
}

//go:build linux

package kbpf

import (
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bpf(2) command numbers used here (include/uapi/linux/bpf.h).
const (
	cmdMapCreate           = 0
	cmdMapLookupElem       = 1
	cmdMapUpdateElem       = 2
	cmdMapDeleteElem       = 3
	cmdMapGetNextKey       = 4
	cmdObjGetInfoByFD      = 15
	cmdMapLookupAndDelete  = 21
	cmdMapFreeze           = 22
	mapTypeArray           = 2
	elemAttrSize           = 32 // map_fd, pad, key, value/next_key, flags
	batchAttrSize          = 56 // in_batch … flags
	infoAttrSize           = 16 // bpf_fd, info_len, info
	batchCountOffset       = 32
	infoLenOffset          = 4
	elemAttrKeyOffset      = 8
	elemAttrValueOffset    = 16
	elemAttrFlagsOffset    = 24
	deleteAttrSize         = 16 // offsetofend(key)
	getNextKeyAttrSize     = 24 // offsetofend(next_key)
	freezeAttrSize         = 4  // offsetofend(map_fd)
	availableProbeMaxEntry = 1
)

var (
	availOnce sync.Once
	availErr  error
)

// Available reports whether bpf(2) can create maps here. It tries to create
// a tiny ARRAY map once and caches the result.
func Available() error {
	availOnce.Do(func() {
		fd, errno := CreateMap(&CreateAttr{
			MapType:    mapTypeArray,
			KeySize:    4,
			ValueSize:  4,
			MaxEntries: availableProbeMaxEntry,
		})
		if errno != 0 {
			availErr = fmt.Errorf("bpf(BPF_MAP_CREATE) of a 1-entry ARRAY failed: %w (need root or CAP_BPF)", errno)
			return
		}
		_ = unix.Close(fd)
	})
	return availErr
}

// Raw calls bpf(cmd, attr, len(attr)); attr may be nil (NULL pointer, size
// 0). It returns the syscall's return value and errno (0 on success). Any
// addresses inside attr must stay valid for the call; the wrappers in this
// package pin the memory they encode.
func Raw(cmd uint32, attr []byte) (int, syscall.Errno) {
	var p unsafe.Pointer
	if attr != nil {
		p = bytesPtr(attr)
	}
	// unsafe: the attr pointer is converted to uintptr inside the call
	// expression, which keeps attr alive and unmoved for the syscall.
	r, _, errno := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(p), uintptr(len(attr)))
	runtime.KeepAlive(attr)
	if errno != 0 {
		return int(int64(r)), errno
	}
	return int(r), 0
}

// bytesPtr returns a pointer to b's first byte. For a zero-length non-nil
// slice it returns a pointer to a freshly allocated dummy, so the kernel sees
// a valid, non-NULL address it must not read or write.
func bytesPtr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		// A 16-byte object keeps the dummy out of Go's tiny-object
		// allocator, so it never shares memory with other values.
		d := new([16]byte)
		// unsafe: pointer to our own dummy object.
		return unsafe.Pointer(&d[0])
	}
	// unsafe: pointer to the caller's first byte.
	return unsafe.Pointer(&b[0])
}

// pins tracks the Go buffers whose addresses were written into an attr, so
// they are neither moved nor collected until the syscall returns.
type pins struct{ p runtime.Pinner }

// addr pins b's backing memory and returns its address for an attr field; a
// nil slice yields 0 (NULL).
func (ps *pins) addr(b []byte) uint64 {
	if b == nil {
		return 0
	}
	p := bytesPtr(b)
	// Pinning makes the object heap-resident and immovable until Unpin;
	// the address below is only used by the kernel during the syscall.
	ps.p.Pin(p)
	// unsafe: the address of pinned memory, stored as a u64 in the attr.
	return uint64(uintptr(p))
}

// CreateMap runs BPF_MAP_CREATE with a.Bytes() and returns the new fd or the
// errno.
func CreateMap(a *CreateAttr) (fd int, errno syscall.Errno) {
	r, e := Raw(cmdMapCreate, a.Bytes())
	if e != 0 {
		return -1, e
	}
	return r, 0
}

// elem runs one element command with the 32-byte element attr, passing
// size bytes of it (offsetofend of the command's last field).
func elem(cmd uint32, size int, fd int, key, value []byte, flags uint64) syscall.Errno {
	var ps pins
	defer ps.p.Unpin()
	attr := make([]byte, elemAttrSize)
	ne.PutUint32(attr[0:], uint32(fd))
	ne.PutUint64(attr[elemAttrKeyOffset:], ps.addr(key))
	ne.PutUint64(attr[elemAttrValueOffset:], ps.addr(value))
	ne.PutUint64(attr[elemAttrFlagsOffset:], flags)
	_, e := Raw(cmd, attr[:size])
	return e
}

// Lookup runs BPF_MAP_LOOKUP_ELEM: value receives the element. A nil key or
// value is passed as NULL.
func Lookup(fd int, key, value []byte, flags uint64) syscall.Errno {
	return elem(cmdMapLookupElem, elemAttrSize, fd, key, value, flags)
}

// Update runs BPF_MAP_UPDATE_ELEM with the given flags.
func Update(fd int, key, value []byte, flags uint64) syscall.Errno {
	return elem(cmdMapUpdateElem, elemAttrSize, fd, key, value, flags)
}

// Delete runs BPF_MAP_DELETE_ELEM.
func Delete(fd int, key []byte) syscall.Errno {
	return elem(cmdMapDeleteElem, deleteAttrSize, fd, key, nil, 0)
}

// GetNextKey runs BPF_MAP_GET_NEXT_KEY: next receives the key following key
// (key nil asks for the first key).
func GetNextKey(fd int, key, next []byte) syscall.Errno {
	return elem(cmdMapGetNextKey, getNextKeyAttrSize, fd, key, next, 0)
}

// LookupAndDelete runs BPF_MAP_LOOKUP_AND_DELETE_ELEM.
func LookupAndDelete(fd int, key, value []byte, flags uint64) syscall.Errno {
	return elem(cmdMapLookupAndDelete, elemAttrSize, fd, key, value, flags)
}

// Freeze runs BPF_MAP_FREEZE.
func Freeze(fd int) syscall.Errno {
	return elem(cmdMapFreeze, freezeAttrSize, fd, nil, nil, 0)
}

// Batch runs one of the four batch commands (BPF_MAP_LOOKUP_BATCH 24,
// LOOKUP_AND_DELETE_BATCH 25, UPDATE_BATCH 26, DELETE_BATCH 27) on map fd
// and returns the count the kernel wrote back into the attr, and the errno.
func Batch(cmd uint32, fd int, b *BatchAttr) (count uint32, errno syscall.Errno) {
	var ps pins
	defer ps.p.Unpin()
	attr := make([]byte, batchAttrSize)
	ne.PutUint64(attr[0:], ps.addr(b.InBatch))
	ne.PutUint64(attr[8:], ps.addr(b.OutBatch))
	ne.PutUint64(attr[16:], ps.addr(b.Keys))
	ne.PutUint64(attr[24:], ps.addr(b.Values))
	ne.PutUint32(attr[batchCountOffset:], b.Count)
	ne.PutUint32(attr[36:], uint32(fd))
	ne.PutUint64(attr[40:], b.ElemFlags)
	ne.PutUint64(attr[48:], b.Flags)
	_, e := Raw(cmd, attr)
	return ne.Uint32(attr[batchCountOffset:]), e
}

// Info runs BPF_OBJ_GET_INFO_BY_FD with a MapInfoSize-byte buffer and
// decodes it.
func Info(fd int) (MapInfo, syscall.Errno) {
	var ps pins
	defer ps.p.Unpin()
	buf := make([]byte, MapInfoSize)
	attr := make([]byte, infoAttrSize)
	ne.PutUint32(attr[0:], uint32(fd))
	ne.PutUint32(attr[infoLenOffset:], MapInfoSize)
	ne.PutUint64(attr[8:], ps.addr(buf))
	if _, e := Raw(cmdObjGetInfoByFD, attr); e != 0 {
		return MapInfo{}, e
	}
	return decodeMapInfo(buf, ne.Uint32(attr[infoLenOffset:])), 0
}

// Close closes a file descriptor returned by CreateMap.
func Close(fd int) error {
	return unix.Close(fd)
}

//go:build linux

package kbpf

import (
	"encoding/binary"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
)

const (
	tHash  = 1
	tArray = 2

	flagNoExist = 1
	flagExist   = 2

	cmdLookupBatch = 24
)

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// mustCreate creates a map and registers its close with t.
func mustCreate(t *testing.T, a *CreateAttr) int {
	t.Helper()
	fd, errno := CreateMap(a)
	if errno != 0 {
		t.Fatalf("CreateMap(%+v): %v", *a, errno)
	}
	t.Cleanup(func() { _ = Close(fd) })
	return fd
}

func wantErrno(t *testing.T, what string, got, want syscall.Errno) {
	t.Helper()
	if got != want {
		t.Errorf("%s: errno %d (%v), want %d (%v)", what, int(got), got, int(want), want)
	}
}

func TestAvailable(t *testing.T) {
	Need(t)
	if err := Available(); err != nil {
		t.Fatal(err)
	}
}

func TestRawEnvelope(t *testing.T) {
	Need(t)

	// Bigger than a page → E2BIG.
	_, e := Raw(cmdMapCreate, make([]byte, 4097))
	wantErrno(t, "size 4097", e, syscall.E2BIG)

	// A non-zero byte after MAP_CREATE's last field → EINVAL.
	a := (&CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}).Bytes()
	attr := append(a, make([]byte, 8)...)
	attr[CreateAttrSize] = 1
	_, e = Raw(cmdMapCreate, attr)
	wantErrno(t, "create tail byte", e, syscall.EINVAL)

	// The same attr with a zero tail succeeds.
	attr[CreateAttrSize] = 0
	fd, e := Raw(cmdMapCreate, attr)
	wantErrno(t, "create zero tail", e, 0)
	if e == 0 {
		_ = Close(fd)
	}

	// A non-zero flags byte on DELETE_ELEM (whose last field is key) → EINVAL.
	mfd := mustCreate(t, &CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	key := u32(7)
	del := make([]byte, elemAttrSize)
	binary.NativeEndian.PutUint32(del, uint32(mfd))
	var ps pins
	binary.NativeEndian.PutUint64(del[elemAttrKeyOffset:], ps.addr(key))
	del[elemAttrFlagsOffset] = 1
	_, e = Raw(cmdMapDeleteElem, del)
	wantErrno(t, "delete with flags", e, syscall.EINVAL)
	del[elemAttrFlagsOffset] = 0
	_, e = Raw(cmdMapDeleteElem, del)
	ps.p.Unpin()
	wantErrno(t, "delete missing", e, syscall.ENOENT)

	// Unknown command.
	_, e = Raw(999, nil)
	wantErrno(t, "cmd 999 nil", e, syscall.EINVAL)
	_, e = Raw(999, make([]byte, 8))
	wantErrno(t, "cmd 999", e, syscall.EINVAL)
}

func TestCreateMap(t *testing.T) {
	Need(t)
	for _, typ := range []uint32{tHash, tArray} {
		a := &CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 16}
		copy(a.MapName[:], "kbpf_test")
		mustCreate(t, a)
	}
	bad := []CreateAttr{
		{MapType: tHash, KeySize: 0, ValueSize: 8, MaxEntries: 16},
		{MapType: tHash, KeySize: 4, ValueSize: 0, MaxEntries: 16},
		{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 0},
		{MapType: tArray, KeySize: 8, ValueSize: 8, MaxEntries: 16},
		{MapType: tArray, KeySize: 4, ValueSize: 0, MaxEntries: 16},
		{MapType: 0, KeySize: 4, ValueSize: 8, MaxEntries: 16},
		{MapType: 999, KeySize: 4, ValueSize: 8, MaxEntries: 16},
	}
	for _, a := range bad {
		fd, e := CreateMap(&a)
		if e == 0 {
			_ = Close(fd)
		}
		wantErrno(t, "create bad", e, syscall.EINVAL)
	}
	// An invalid name is rejected too.
	a := &CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 16}
	copy(a.MapName[:], "a-b")
	fd, e := CreateMap(a)
	if e == 0 {
		_ = Close(fd)
	}
	wantErrno(t, "create bad name", e, syscall.EINVAL)
}

func TestHashElementOps(t *testing.T) {
	Need(t)
	fd := mustCreate(t, &CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	val := make([]byte, 8)

	wantErrno(t, "lookup missing", Lookup(fd, u32(1), val, 0), syscall.ENOENT)
	wantErrno(t, "lookup missing, NULL value", Lookup(fd, u32(1), nil, 0), syscall.ENOENT)
	wantErrno(t, "update EXIST missing", Update(fd, u32(1), u64(10), flagExist), syscall.ENOENT)
	wantErrno(t, "update NULL key", Update(fd, nil, u64(10), 0), syscall.EFAULT)
	wantErrno(t, "update 1", Update(fd, u32(1), u64(10), 0), 0)
	wantErrno(t, "update NOEXIST existing", Update(fd, u32(1), u64(11), flagNoExist), syscall.EEXIST)
	wantErrno(t, "update bad flags", Update(fd, u32(1), u64(11), 3), syscall.EINVAL)
	wantErrno(t, "update 2", Update(fd, u32(2), u64(20), flagNoExist), 0)
	wantErrno(t, "update 3 when full", Update(fd, u32(3), u64(30), 0), syscall.E2BIG)
	wantErrno(t, "replace when full", Update(fd, u32(2), u64(21), flagExist), 0)

	wantErrno(t, "lookup 2", Lookup(fd, u32(2), val, 0), 0)
	if got := binary.NativeEndian.Uint64(val); got != 21 {
		t.Errorf("lookup 2 = %d, want 21", got)
	}
	wantErrno(t, "lookup bad flags", Lookup(fd, u32(2), val, 1), syscall.EINVAL)

	// Iterate: the two keys, then ENOENT.
	seen := map[uint32]bool{}
	next := make([]byte, 4)
	var cur []byte
	for {
		e := GetNextKey(fd, cur, next)
		if e == syscall.ENOENT {
			break
		}
		if e != 0 {
			t.Fatalf("GetNextKey: %v", e)
		}
		k := binary.NativeEndian.Uint32(next)
		if seen[k] {
			t.Fatalf("GetNextKey repeated key %d", k)
		}
		seen[k] = true
		cur = append([]byte(nil), next...)
	}
	if len(seen) != 2 || !seen[1] || !seen[2] {
		t.Errorf("iteration saw %v, want keys 1 and 2", seen)
	}

	wantErrno(t, "lookup-and-delete 1", LookupAndDelete(fd, u32(1), val, 0), 0)
	if got := binary.NativeEndian.Uint64(val); got != 10 {
		t.Errorf("lookup-and-delete 1 = %d, want 10", got)
	}
	wantErrno(t, "lookup-and-delete 1 again", LookupAndDelete(fd, u32(1), val, 0), syscall.ENOENT)
	wantErrno(t, "delete 2", Delete(fd, u32(2)), 0)
	wantErrno(t, "delete 2 again", Delete(fd, u32(2)), syscall.ENOENT)
	wantErrno(t, "get next on empty", GetNextKey(fd, nil, next), syscall.ENOENT)

	wantErrno(t, "freeze", Freeze(fd), 0)
	wantErrno(t, "update frozen", Update(fd, u32(1), u64(1), 0), syscall.EPERM)
	wantErrno(t, "lookup frozen", Lookup(fd, u32(1), val, 0), syscall.ENOENT)

	// Bad fds.
	wantErrno(t, "lookup closed fd", Lookup(1<<20, u32(1), val, 0), syscall.EBADF)
	wantErrno(t, "lookup non-map fd", Lookup(0, u32(1), val, 0), syscall.EINVAL)
}

func TestArrayElementOps(t *testing.T) {
	Need(t)
	fd := mustCreate(t, &CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	val := make([]byte, 8)
	wantErrno(t, "lookup 0", Lookup(fd, u32(0), val, 0), 0)
	wantErrno(t, "lookup 4", Lookup(fd, u32(4), val, 0), syscall.ENOENT)
	wantErrno(t, "update 4", Update(fd, u32(4), u64(1), 0), syscall.E2BIG)
	wantErrno(t, "update NOEXIST", Update(fd, u32(0), u64(1), flagNoExist), syscall.EEXIST)
	wantErrno(t, "update 3", Update(fd, u32(3), u64(33), 0), 0)
	wantErrno(t, "delete 3", Delete(fd, u32(3)), syscall.EINVAL)
	wantErrno(t, "lookup 3", Lookup(fd, u32(3), val, 0), 0)
	if got := binary.NativeEndian.Uint64(val); got != 33 {
		t.Errorf("lookup 3 = %d, want 33", got)
	}
	next := make([]byte, 4)
	wantErrno(t, "next of 3", GetNextKey(fd, u32(3), next), syscall.ENOENT)
	wantErrno(t, "next of NULL", GetNextKey(fd, nil, next), 0)
	if got := binary.NativeEndian.Uint32(next); got != 0 {
		t.Errorf("first key = %d, want 0", got)
	}
	wantErrno(t, "lookup-and-delete array", LookupAndDelete(fd, u32(0), val, 0), errENOTSUPP)
}

// errENOTSUPP is the kernel-internal ENOTSUPP (524) that leaks to user space.
const errENOTSUPP = syscall.Errno(524)

func TestZeroLengthKeyIsNonNull(t *testing.T) {
	Need(t)
	// QUEUE maps have key_size 0 and require a NULL key pointer: a
	// zero-length non-nil slice must reach the kernel as non-NULL.
	fd := mustCreate(t, &CreateAttr{MapType: 22, KeySize: 0, ValueSize: 8, MaxEntries: 4})
	wantErrno(t, "push with empty non-nil key", Update(fd, []byte{}, u64(5), 0), syscall.EINVAL)
	wantErrno(t, "push with NULL key", Update(fd, nil, u64(5), 0), 0)
	val := make([]byte, 8)
	wantErrno(t, "peek", Lookup(fd, nil, val, 0), 0)
	if got := binary.NativeEndian.Uint64(val); got != 5 {
		t.Errorf("peek = %d, want 5", got)
	}
	wantErrno(t, "pop", LookupAndDelete(fd, nil, val, 0), 0)
	wantErrno(t, "pop empty", LookupAndDelete(fd, nil, val, 0), syscall.ENOENT)
}

func TestHashLookupBatch(t *testing.T) {
	Need(t)
	const n = 6
	fd := mustCreate(t, &CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8})
	for i := uint32(0); i < n; i++ {
		if e := Update(fd, u32(i), u64(uint64(i)*100), 0); e != 0 {
			t.Fatalf("update %d: %v", i, e)
		}
	}

	// count 0 returns at once.
	out := make([]byte, 4)
	c, e := Batch(cmdLookupBatch, fd, &BatchAttr{OutBatch: out, Keys: make([]byte, 4*n), Values: make([]byte, 8*n)})
	wantErrno(t, "batch count 0", e, 0)
	if c != 0 {
		t.Errorf("count 0 batch returned %d", c)
	}
	// Non-zero flags.
	_, e = Batch(cmdLookupBatch, fd, &BatchAttr{OutBatch: out, Keys: make([]byte, 4*n), Values: make([]byte, 8*n), Count: n, Flags: 1})
	wantErrno(t, "batch flags", e, syscall.EINVAL)
	// NULL out_batch.
	_, e = Batch(cmdLookupBatch, fd, &BatchAttr{Keys: make([]byte, 4*n), Values: make([]byte, 8*n), Count: n})
	wantErrno(t, "batch NULL out_batch", e, syscall.EFAULT)

	// Page through with room for plenty: all keys, ending in ENOENT with
	// out_batch = n_buckets (8).
	seen := map[uint32]uint64{}
	var in []byte
	for page := 0; page < 20; page++ {
		keys, vals := make([]byte, 4*n), make([]byte, 8*n)
		out := make([]byte, 4)
		c, e := Batch(cmdLookupBatch, fd, &BatchAttr{InBatch: in, OutBatch: out, Keys: keys, Values: vals, Count: n})
		if e != 0 && e != syscall.ENOENT {
			t.Fatalf("batch page %d: %v", page, e)
		}
		if c > n {
			t.Fatalf("batch page %d: count %d > %d", page, c, n)
		}
		for i := uint32(0); i < c; i++ {
			k := binary.NativeEndian.Uint32(keys[4*i:])
			seen[k] = binary.NativeEndian.Uint64(vals[8*i:])
		}
		if e == syscall.ENOENT {
			if ob := binary.NativeEndian.Uint32(out); ob != 8 {
				t.Errorf("final out_batch = %d, want 8 (n_buckets)", ob)
			}
			break
		}
		in = out
	}
	if len(seen) != n {
		t.Fatalf("batch returned %d keys, want %d: %v", len(seen), n, seen)
	}
	for k, v := range seen {
		if v != uint64(k)*100 {
			t.Errorf("batch key %d value %d, want %d", k, v, k*100)
		}
	}

	// Past the end → ENOENT with count 0.
	c, e = Batch(cmdLookupBatch, fd, &BatchAttr{InBatch: u32(8), OutBatch: out, Keys: make([]byte, 4*n), Values: make([]byte, 8*n), Count: n})
	wantErrno(t, "batch past end", e, syscall.ENOENT)
	if c != 0 {
		t.Errorf("batch past end count %d", c)
	}
}

func TestInfo(t *testing.T) {
	Need(t)
	a := &CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 12, MaxEntries: 33, MapFlags: 1 /* NO_PREALLOC */}
	copy(a.MapName[:], "kbpf_info")
	fd := mustCreate(t, a)
	info, e := Info(fd)
	if e != 0 {
		t.Fatalf("Info: %v", e)
	}
	if info.Type != tHash || info.KeySize != 4 || info.ValueSize != 12 || info.MaxEntries != 33 || info.MapFlags != 1 {
		t.Errorf("Info = %+v", info)
	}
	if info.ID == 0 {
		t.Errorf("Info.ID = 0")
	}
	if got := info.NameString(); got != "kbpf_info" {
		t.Errorf("Info name %q", got)
	}
	if info.Len != MapInfoSize {
		t.Errorf("Info.Len = %d, want %d", info.Len, MapInfoSize)
	}
	_, e = Info(1 << 20)
	wantErrno(t, "info closed fd", e, syscall.EBADFD)
}

func TestLoopCost(t *testing.T) {
	Need(t)
	const n = 1024
	for _, typ := range []ebpf.MapType{ebpf.Hash, ebpf.Array} {
		m, err := ebpf.NewMap(&ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 8, MaxEntries: n})
		if err != nil {
			t.Fatalf("NewMap %v: %v", typ, err)
		}
		defer m.Close()
		for k := uint32(0); k < n; k++ {
			if err := m.Put(k, uint64(k)); err != nil {
				t.Fatal(err)
			}
		}
		for _, op := range []Op{OpLookup, OpUpdate} {
			d, err := LoopCost(m, op, n, 1<<16)
			if err != nil {
				t.Fatalf("LoopCost(%v, %v): %v", typ, op, err)
			}
			if d <= 0 || d >= 1e6 {
				t.Errorf("LoopCost(%v, %v) = %v, want in (0, 1ms)", typ, op, d)
			}
			t.Logf("%v %v, %d keys: %.1f ns per op", typ, op, n, d)
		}
	}
	// A lookup of a missing key, a bad nKeys and too many iterations are
	// reported as errors.
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: n})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := LoopCost(m, OpLookup, n, 16); err == nil {
		t.Errorf("LoopCost on an empty hash: no error")
	}
	if _, err := LoopCost(m, OpLookup, 1000, 16); err == nil {
		t.Errorf("LoopCost with nKeys 1000: no error")
	}
	if _, err := LoopCost(m, OpLookup, n, maxLoops+1); err == nil {
		t.Errorf("LoopCost with too many iterations: no error")
	}
}

func TestLoopCostUpdateValues(t *testing.T) {
	Need(t)
	const n, iters = 16, 64
	m, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: n})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := LoopCost(m, OpUpdate, n, iters); err != nil {
		t.Fatal(err)
	}
	want := map[uint32]uint64{}
	for i := uint32(0); i < iters; i++ {
		want[(i*2654435761)&(n-1)] = uint64(i)
	}
	for k, w := range want {
		var v uint64
		if err := m.Lookup(k, &v); err != nil {
			t.Fatal(err)
		}
		if v != w {
			t.Errorf("key %d = %d, want %d", k, v, w)
		}
	}
}

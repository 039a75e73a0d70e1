package bpfmap_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/jhash"
)

const (
	fRdonly   = 1 << 3
	fWronly   = 1 << 4
	fZeroSeed = 1 << 6
	fMmapable = 1 << 10
)

func newMap(t testing.TB, spec *ebpf.MapSpec) *bpfmap.Map {
	t.Helper()
	m, err := bpfmap.NewMapWithOptions(spec, bpfmap.MapOptions{PossibleCPUs: 2})
	if err != nil {
		t.Fatalf("NewMap(%v): %v", spec, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func wantErr(t *testing.T, what string, err error, want ...error) {
	t.Helper()
	if len(want) == 0 {
		if err != nil {
			t.Fatalf("%s: unexpected error %v", what, err)
		}
		return
	}
	for _, w := range want {
		if !errors.Is(err, w) {
			t.Fatalf("%s: got error %v, want one matching %v", what, err, w)
		}
	}
}

func TestErrorsMatchSentinelAndErrno(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1})
	var v uint64
	wantErr(t, "lookup missing", m.Lookup(uint32(1), &v), ebpf.ErrKeyNotExist, syscall.ENOENT)
	wantErr(t, "put", m.Put(uint32(1), uint64(1)))
	wantErr(t, "noexist on existing", m.Update(uint32(1), uint64(2), ebpf.UpdateNoExist), ebpf.ErrKeyExist, syscall.EEXIST)
	wantErr(t, "full", m.Put(uint32(2), uint64(2)), syscall.E2BIG)
	wantErr(t, "exist on missing (even when full)", m.Update(uint32(2), uint64(2), ebpf.UpdateExist), ebpf.ErrKeyNotExist, syscall.ENOENT)
	wantErr(t, "replace when full", m.Put(uint32(1), uint64(3)))
	wantErr(t, "bad flags", m.Update(uint32(1), uint64(3), 3), syscall.EINVAL)
	wantErr(t, "lock flag", m.Update(uint32(1), uint64(3), ebpf.UpdateLock), syscall.EINVAL)
	wantErr(t, "lookup lock flag", m.LookupWithFlags(uint32(1), &v, ebpf.LookupLock), syscall.EINVAL)

	a := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	wantErr(t, "array delete", a.Delete(uint32(0)), syscall.EINVAL)
	wantErr(t, "array lookup and delete", a.LookupAndDelete(uint32(0), &v), ebpf.ErrNotSupported, bpfmap.ENOTSUPP)
	wantErr(t, "array index past end", a.Put(uint32(2), uint64(1)), syscall.E2BIG)
	wantErr(t, "array noexist", a.Update(uint32(1), uint64(1), ebpf.UpdateNoExist), ebpf.ErrKeyExist)
	wantErr(t, "array lookup past end", a.Lookup(uint32(5), &v), ebpf.ErrKeyNotExist)
	_, err := a.BatchLookupAndDelete(new(bpfmap.MapBatchCursor), make([]uint32, 1), make([]uint64, 1), nil)
	wantErr(t, "array lookup-and-delete batch", err, bpfmap.ENOTSUPP, ebpf.ErrNotSupported)

	var e *bpfmap.Error
	if !errors.As(m.Lookup(uint32(9), &v), &e) || e.Errno != syscall.ENOENT || e.Op != "lookup" {
		t.Fatalf("errors.As *Error: %#v", e)
	}
}

func TestCreateValidation(t *testing.T) {
	for _, tc := range []struct {
		spec ebpf.MapSpec
		want error
	}{
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 0, ValueSize: 8, MaxEntries: 1}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 0, MaxEntries: 1}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 0}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4194255 - 8, ValueSize: 8, MaxEntries: 1}, nil},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4194256 - 8, ValueSize: 8, MaxEntries: 1}, syscall.E2BIG},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1 << 27}, nil},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1<<27 + 1}, syscall.E2BIG},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: 1 << 1}, syscall.EINVAL}, // NO_COMMON_LRU
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: fRdonly | fWronly}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: 1<<7 | 1<<8}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: fMmapable}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 32768, MaxEntries: 1}, nil},
		{ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 32769, MaxEntries: 1}, syscall.E2BIG},
		{ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: 1 << 2}, syscall.EINVAL}, // NUMA
		{ebpf.MapSpec{Type: ebpf.Array, KeySize: 8, ValueSize: 8, MaxEntries: 1}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: fMmapable}, nil},
		{ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: fMmapable}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 1, Flags: 1 << 2}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 1, MapExtra: 1}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.MapType(34), KeySize: 4, ValueSize: 8, MaxEntries: 1}, syscall.EINVAL},
		{ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, ValueSize: 4, MaxEntries: 1}, syscall.EINVAL}, // no InnerMap
		{ebpf.MapSpec{Type: ebpf.ArrayOfMaps, KeySize: 4, MaxEntries: 1, InnerMap: &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1}}, nil},
		{ebpf.MapSpec{Type: ebpf.StackTrace, KeySize: 4, ValueSize: 8, MaxEntries: 1}, ebpf.ErrNotSupported},
	} {
		t.Run(fmt.Sprintf("%v/flags=%#x", tc.spec.Type, tc.spec.Flags), func(t *testing.T) {
			m, err := bpfmap.NewMap(&tc.spec)
			if tc.want == nil {
				wantErr(t, "create", err)
				m.Close()
				return
			}
			wantErr(t, "create", err, tc.want)
		})
	}
}

func TestPossibleCPUsOption(t *testing.T) {
	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		bpfmap.MapOptions{PossibleCPUs: 128})
	wantErr(t, "128 CPUs", err)
	per := make([]uint64, 128)
	per[127] = 7
	wantErr(t, "put", m.Put(uint32(1), per))
	var got []uint64
	wantErr(t, "lookup", m.Lookup(uint32(1), &got))
	if len(got) != 128 || got[127] != 7 {
		t.Fatalf("got %d values, last %d", len(got), got[len(got)-1])
	}
	m.Close()
	_, err = bpfmap.NewMapWithOptions(&ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 8, MaxEntries: 1},
		bpfmap.MapOptions{PossibleCPUs: 8193})
	wantErr(t, "more CPUs than NR_CPUS", err, syscall.EINVAL)
}

func TestNameSanitized(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Name: "a-b c.d_e0123456789", Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 1})
	info, err := m.Info()
	wantErr(t, "info", err)
	if info.Name != "abc.d_e01234567" {
		t.Fatalf("name %q", info.Name)
	}
	if id, ok := info.ID(); !ok || id == 0 {
		t.Fatalf("id %v %v", id, ok)
	}
}

func TestAccessModesAndFreeze(t *testing.T) {
	ro := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2, Flags: fRdonly})
	wantErr(t, "update on read-only handle", ro.Put(uint32(1), uint32(1)), syscall.EPERM)
	wantErr(t, "freeze on read-only handle", ro.Freeze(), syscall.EPERM)
	var v uint32
	wantErr(t, "lookup on read-only handle", ro.Lookup(uint32(1), &v), syscall.ENOENT)
	if info, _ := ro.Info(); info.Flags&fRdonly != 0 {
		t.Fatalf("BPF_F_RDONLY stored in map flags: %#x", info.Flags)
	}

	wo := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2, Flags: fWronly})
	wantErr(t, "update on write-only", wo.Put(uint32(1), uint32(1)))
	wantErr(t, "lookup on write-only", wo.Lookup(uint32(1), &v), syscall.EPERM)
	wantErr(t, "lookup-and-delete on write-only", wo.LookupAndDelete(uint32(1), &v), syscall.EPERM)

	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	wantErr(t, "put", m.Put(uint32(1), uint32(7)))
	wantErr(t, "freeze", m.Freeze())
	wantErr(t, "freeze twice", m.Freeze(), syscall.EPERM)
	wantErr(t, "update frozen", m.Put(uint32(1), uint32(8)), syscall.EPERM)
	wantErr(t, "delete frozen", m.Delete(uint32(1)), syscall.EPERM)
	wantErr(t, "lookup-and-delete frozen", m.LookupAndDelete(uint32(1), &v), syscall.EPERM)
	_, err := m.BatchUpdate([]uint32{1}, []uint32{1}, nil)
	wantErr(t, "batch update frozen", err, syscall.EPERM)
	wantErr(t, "lookup frozen", m.Lookup(uint32(1), &v))
	if v != 7 {
		t.Fatalf("value %d", v)
	}
	if info, _ := m.Info(); !info.Frozen() {
		t.Fatal("Info does not report frozen")
	}
}

func TestCloneAndClose(t *testing.T) {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	wantErr(t, "create", err)
	c, err := m.Clone()
	wantErr(t, "clone", err)
	wantErr(t, "put", m.Put(uint32(1), uint32(5)))
	wantErr(t, "close original", m.Close())
	wantErr(t, "close twice", m.Close())
	var v uint32
	wantErr(t, "use after close", m.Lookup(uint32(1), &v), syscall.EBADF)
	wantErr(t, "clone sees the map", c.Lookup(uint32(1), &v))
	if v != 5 {
		t.Fatalf("clone read %d", v)
	}
	wantErr(t, "close clone", c.Close())
	wantErr(t, "use clone after close", c.Put(uint32(1), uint32(1)), syscall.EBADF)
	if _, err := c.Info(); !errors.Is(err, syscall.Errno(77)) {
		t.Fatalf("info after close: %v", err)
	}
	var nilMap *bpfmap.Map
	if c, err := nilMap.Clone(); c != nil || err != nil {
		t.Fatal("nil clone")
	}
	wantErr(t, "nil close", nilMap.Close())
}

func TestPerCPUPaddingRoundTrips(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.PerCPUHash, ebpf.PerCPUArray} {
		m := newMap(t, &ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 5, MaxEntries: 2})
		raw := make([]byte, 16) // 2 CPUs × round_up(5, 8)
		for i := range raw {
			raw[i] = byte(i + 1)
		}
		wantErr(t, "put raw per-CPU layout", m.Put(uint32(1), raw))
		got, err := m.LookupBytes(uint32(1))
		wantErr(t, "lookup bytes", err)
		if !slices.Equal(got, raw) {
			t.Fatalf("%v: padding did not round-trip: %x", typ, got)
		}
		var per [][5]byte
		wantErr(t, "lookup per-CPU slice", m.Lookup(uint32(1), &per))
		if len(per) != 2 || per[1] != [5]byte{9, 10, 11, 12, 13} {
			t.Fatalf("%v: per-CPU slice %v", typ, per)
		}
		wantErr(t, "wrong CPU count", m.Put(uint32(0), [][5]byte{{}, {}, {}}), syscall.EINVAL)
	}
	a := newMap(t, &ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	var per []uint64
	wantErr(t, "never-written slot", a.Lookup(uint32(0), &per))
	if !slices.Equal(per, []uint64{0, 0}) {
		t.Fatalf("never-written per-CPU slots: %v", per)
	}
}

func TestNextKeyRules(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 8, Flags: fZeroSeed})
	// Three keys in one bucket of the 8, with the zero seed.
	var same []uint32
	for k := uint32(0); len(same) < 3; k++ {
		if jhash.Word(k, 0)&7 == 3 {
			same = append(same, k)
		}
	}
	for _, k := range same {
		wantErr(t, "put", m.Put(k, k))
	}
	if got := order(t, m); !slices.Equal(got, []uint32{same[2], same[1], same[0]}) {
		t.Fatalf("chain of %v: %v (want head insertion)", same, got)
	}
	// All three keys hash to one bucket with the zero seed; chains take new
	// keys at the head, and an update moves a key to the head.
	first := order(t, m)
	wantErr(t, "update", m.Put(first[2], uint32(1)))
	if got := order(t, m); !slices.Equal(got, []uint32{first[2], first[0], first[1]}) {
		t.Fatalf("after update %v: %v", first, got)
	}
	var k uint32
	wantErr(t, "missing key restarts", m.NextKey(uint32(99), &k))
	if k != order(t, m)[0] {
		t.Fatalf("restart gave %d", k)
	}
	if b, err := m.NextKeyBytes(order(t, m)[2]); b != nil || err != nil {
		t.Fatalf("NextKeyBytes at end: %v %v", b, err)
	}
	a := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	for _, tc := range []struct {
		key  any
		want uint32
		err  error
	}{{nil, 0, nil}, {uint32(0), 1, nil}, {uint32(1), 2, nil}, {uint32(2), 0, ebpf.ErrKeyNotExist}, {uint32(7), 0, nil}} {
		var next uint32
		err := a.NextKey(tc.key, &next)
		if tc.err != nil {
			wantErr(t, "array next", err, tc.err)
			continue
		}
		if err != nil || next != tc.want {
			t.Fatalf("array NextKey(%v) = %d, %v; want %d", tc.key, next, err, tc.want)
		}
	}
}

func order(t *testing.T, m *bpfmap.Map) []uint32 {
	var out []uint32
	var k uint32
	err := m.NextKey(nil, &k)
	for err == nil {
		out = append(out, k)
		err = m.NextKey(k, &k)
	}
	wantErr(t, "end", err, ebpf.ErrKeyNotExist)
	return out
}

func TestLookupAndDeleteAndBytes(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.PerCPUHash, KeySize: 4, ValueSize: 4, MaxEntries: 2})
	wantErr(t, "put", m.Put(uint32(3), []uint32{1, 2}))
	var per []uint32
	wantErr(t, "lookup and delete", m.LookupAndDelete(uint32(3), &per))
	if !slices.Equal(per, []uint32{1, 2}) {
		t.Fatalf("got %v", per)
	}
	wantErr(t, "gone", m.LookupAndDelete(uint32(3), &per), ebpf.ErrKeyNotExist)
	if b, err := m.LookupBytes(uint32(3)); b != nil || err != nil {
		t.Fatalf("LookupBytes missing: %v %v", b, err)
	}
}

func TestBatchOperations(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 3})
	n, err := m.BatchUpdate([]uint32{1, 2, 3, 4, 5}, []uint64{10, 20, 30, 40, 50}, nil)
	if n != 3 || !errors.Is(err, syscall.E2BIG) {
		t.Fatalf("batch update into max 3: %d, %v", n, err)
	}
	_, err = m.BatchUpdate([]uint32{1}, []uint64{1}, &ebpf.BatchOptions{ElemFlags: uint64(ebpf.UpdateNoExist)})
	wantErr(t, "batch update NOEXIST", err, syscall.EINVAL)
	n, err = m.BatchDelete([]uint32{1, 42, 2}, nil)
	if n != 1 || !errors.Is(err, ebpf.ErrKeyNotExist) {
		t.Fatalf("batch delete: %d, %v", n, err)
	}
	var v uint64
	wantErr(t, "2 still present", m.Lookup(uint32(2), &v))

	h := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 64})
	for i := range uint32(40) {
		wantErr(t, "put", h.Put(i, uint64(i)*3))
	}
	seen := map[uint32]uint64{}
	var c bpfmap.MapBatchCursor
	keys, vals := make([]uint32, 8), make([]uint64, 8)
	for {
		n, err := h.BatchLookupAndDelete(&c, keys, vals, nil)
		for i := range n {
			if _, dup := seen[keys[i]]; dup {
				t.Fatalf("key %d returned twice", keys[i])
			}
			seen[keys[i]] = vals[i]
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			break
		}
		wantErr(t, "batch lookup and delete", err)
	}
	if len(seen) != 40 {
		t.Fatalf("batch returned %d keys", len(seen))
	}
	for k, v := range seen {
		if v != uint64(k)*3 {
			t.Fatalf("key %d value %d", k, v)
		}
	}
	if k, err := h.NextKeyBytes(nil); k != nil || err != nil {
		t.Fatalf("map not empty after lookup-and-delete batch: %x %v", k, err)
	}
	_, err = h.BatchLookup(&c, keys, vals, nil)
	wantErr(t, "batch lookup of the drained map", err, ebpf.ErrKeyNotExist)
	other := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	_, err = other.BatchLookup(&c, keys, vals, nil)
	wantErr(t, "cursor reused across maps", err, syscall.EINVAL)
}

func TestMemoryOfMmapableArray(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 3, Flags: fMmapable})
	mem, err := m.Memory()
	wantErr(t, "memory", err)
	if mem.Size() != 4096 || mem.ReadOnly() {
		t.Fatalf("size %d ro %v", mem.Size(), mem.ReadOnly())
	}
	wantErr(t, "put", m.Put(uint32(2), uint32(0xabcd)))
	var b [4]byte
	_, err = mem.ReadAt(b[:], 16) // element 2 at 2 × round_up(4, 8)
	wantErr(t, "read", err)
	if binary.LittleEndian.Uint32(b[:]) != 0xabcd {
		t.Fatalf("read through memory: %x", b)
	}
	_, err = mem.WriteAt([]byte{1, 0, 0, 0}, 0)
	wantErr(t, "write", err)
	var v uint32
	wantErr(t, "lookup", m.Lookup(uint32(0), &v))
	if v != 1 {
		t.Fatalf("lookup after write through memory: %d", v)
	}
	wantErr(t, "freeze while writable view", m.Freeze(), syscall.EBUSY)
	wantErr(t, "close view", mem.Close())
	wantErr(t, "freeze", m.Freeze())
	ro, err := m.Memory()
	wantErr(t, "memory of frozen map", err)
	if !ro.ReadOnly() {
		t.Fatal("memory of a frozen map is writable")
	}
	_, err = ro.WriteAt([]byte{1}, 0)
	wantErr(t, "write read-only memory", err, ebpf.ErrReadOnly)

	plain := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	_, err = plain.Memory()
	wantErr(t, "memory without BPF_F_MMAPABLE", err, ebpf.ErrNotSupported, syscall.EINVAL)
	h := newMap(t, &ebpf.MapSpec{Type: ebpf.Hash, KeySize: 4, ValueSize: 4, MaxEntries: 3})
	_, err = h.Memory()
	wantErr(t, "memory of a hash", err, ebpf.ErrNotSupported, bpfmap.ENOTSUPP)
}

func TestSpecContents(t *testing.T) {
	m := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 2,
		Contents: []ebpf.MapKV{{Key: uint32(1), Value: uint32(11)}}})
	var v uint32
	wantErr(t, "lookup", m.Lookup(uint32(1), &v))
	if v != 11 {
		t.Fatalf("contents: %d", v)
	}
	_, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 2,
		Contents: []ebpf.MapKV{{Key: uint32(5), Value: uint32(11)}}})
	wantErr(t, "contents out of range", err, syscall.E2BIG)
	_, err = bpfmap.NewMap(nil)
	wantErr(t, "nil spec", err, syscall.EINVAL)
}

func TestPerCPUBatches(t *testing.T) {
	for _, typ := range []ebpf.MapType{ebpf.PerCPUHash, ebpf.PerCPUArray} {
		m := newMap(t, &ebpf.MapSpec{Type: typ, KeySize: 4, ValueSize: 4, MaxEntries: 4})
		// Values: one element per CPU per entry (2 CPUs modelled).
		n, err := m.BatchUpdate([]uint32{0, 1, 2}, []uint32{10, 11, 20, 21, 30, 31}, nil)
		if n != 3 || err != nil {
			t.Fatalf("%v: batch update: %d, %v", typ, n, err)
		}
		keys := make([]uint32, 4)
		vals := make([]uint32, 8)
		var c bpfmap.MapBatchCursor
		got := map[uint32][2]uint32{}
		for {
			n, err := m.BatchLookup(&c, keys, vals, nil)
			for i := range n {
				got[keys[i]] = [2]uint32{vals[2*i], vals[2*i+1]}
			}
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				break
			}
			wantErr(t, "batch lookup", err)
		}
		for k, want := range map[uint32][2]uint32{0: {10, 11}, 1: {20, 21}, 2: {30, 31}} {
			if got[k] != want {
				t.Fatalf("%v: key %d per-CPU values %v, want %v (all: %v)", typ, k, got[k], want, got)
			}
		}
		_, err = m.BatchUpdate([]uint32{0}, []uint32{1, 2, 3}, nil)
		wantErr(t, "wrong per-CPU value count", err, syscall.EINVAL)
	}
}

// TestWordArrayFastPath: u64 arrays looked up through *uint32/*uint64 take
// an inlined path; it must keep every rule of the general one.
func TestWordArrayFastPath(t *testing.T) {
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4})
	wantErr(t, "create", err)
	k, v := uint32(2), uint64(0)
	wantErr(t, "put", m.Put(&k, uint64(77)))
	wantErr(t, "lookup", m.Lookup(&k, &v))
	if v != 77 {
		t.Fatalf("got %d", v)
	}
	past := uint32(4)
	wantErr(t, "index past the end", m.Lookup(&past, &v), ebpf.ErrKeyNotExist)
	wantErr(t, "lookup with BPF_F_LOCK", m.LookupWithFlags(&k, &v, ebpf.LookupLock), syscall.EINVAL)
	wantErr(t, "close", m.Close())
	wantErr(t, "lookup after close", m.Lookup(&k, &v), syscall.EBADF)
	wo := newMap(t, &ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 4, Flags: fWronly})
	wantErr(t, "lookup on a write-only handle", wo.Lookup(&k, &v), syscall.EPERM)
}

package queue

import (
	"testing"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func open(t *testing.T, a *mapops.Attr) mapops.Ops {
	t.Helper()
	ops, r, err := mapops.OpenDetached(Family, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Release() })
	return ops
}

// TestSlotCountWraps pins the kernel's u32 slot count: with max_entries
// 2^32-1 it wraps to 0, and the map is always full (BPF_ANY → E2BIG) and
// always empty (a BPF_EXIST push succeeds, peek and pop → ENOENT). Checked
// against Linux 6.18 (value_size 1; the kernel allocates 4 GiB for it, too
// much for the differential tests).
func TestSlotCountWraps(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeQueue, uapi.MapTypeStack} {
		m := open(t, &mapops.Attr{Type: typ, ValueSize: 1, MaxEntries: 1<<32 - 1})
		v := []byte{7}
		if err := m.Update(nil, v, uapi.Any); err != uapi.E2BIG {
			t.Fatalf("push ANY: %v", err)
		}
		if err := m.Update(nil, v, uapi.Exist); err != nil {
			t.Fatalf("push EXIST: %v", err)
		}
		out := []byte{0xee}
		if err := m.Lookup(nil, out); err != uapi.ENOENT || out[0] != 0xee {
			t.Fatalf("peek: %v %x", err, out)
		}
		if err := m.LookupAndDelete(nil, out); err != uapi.ENOENT {
			t.Fatalf("pop: %v", err)
		}
	}
}

func TestCheck(t *testing.T) {
	for _, c := range []struct {
		a    mapops.Attr
		want error
	}{
		{mapops.Attr{ValueSize: 1, MaxEntries: 1}, nil},
		{mapops.Attr{ValueSize: uapi.KmallocMaxSize, MaxEntries: 1}, nil},
		{mapops.Attr{ValueSize: uapi.KmallocMaxSize + 1, MaxEntries: 1}, uapi.E2BIG},
		{mapops.Attr{KeySize: 4, ValueSize: uapi.KmallocMaxSize + 1, MaxEntries: 1}, uapi.EINVAL},
		{mapops.Attr{ValueSize: 1}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: 1}, uapi.EINVAL},
		{mapops.Attr{ValueSize: 1, MaxEntries: 1, Flags: uapi.FZeroSeed}, uapi.EINVAL},
		{mapops.Attr{ValueSize: 1, MaxEntries: 1, Flags: uapi.FProgAccessMask}, uapi.EINVAL},
	} {
		if got := Family.Check(&c.a); got != c.want {
			t.Errorf("%+v: %v, want %v", c.a, got, c.want)
		}
	}
}

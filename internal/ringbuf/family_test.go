package ringbuf

import (
	"errors"
	"testing"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func TestCheck(t *testing.T) {
	p := uint32(PageSize)
	for _, c := range []struct {
		a    mapops.Attr
		want error
	}{
		{mapops.Attr{MaxEntries: p}, nil},
		{mapops.Attr{MaxEntries: 1 << 31}, nil},
		{mapops.Attr{MaxEntries: p, Flags: uapi.FNumaNode}, nil},
		{mapops.Attr{MaxEntries: p / 2}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: 3 * p}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: 0}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: p, KeySize: 4}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: p, ValueSize: 4}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: p, Flags: uapi.FRdonly}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: p, Flags: uapi.FWronly}, uapi.EINVAL},
		{mapops.Attr{MaxEntries: p, Flags: uapi.FMmapable}, uapi.EINVAL},
	} {
		c.a.Type = uapi.MapTypeRingbuf
		if err := Family.Check(&c.a); err != c.want {
			t.Errorf("%+v: %v, want %v", c.a, err, c.want)
		}
	}
}

func TestLayoutMemlock(t *testing.T) {
	if PageSize != 4096 {
		t.Skip("figures measured with 4 KiB pages")
	}
	// fdinfo memlock of kernel ring buffers on 6.18.
	for s, want := range map[uint32]uint64{4096: 16728, 8192: 20840, 65536: 78408, 1 << 20: 1065288} {
		l, err := Family.Layout(&mapops.Attr{Type: uapi.MapTypeRingbuf, MaxEntries: s})
		if err != nil || l.Memlock != want || l.MaxEntries != s {
			t.Errorf("S=%d: %+v %v, want memlock %d", s, l, err, want)
		}
	}
}

func TestOpenOpsAndRegistry(t *testing.T) {
	a := &mapops.Attr{Type: uapi.MapTypeRingbuf, MaxEntries: uint32(PageSize)}
	l, _ := Family.Layout(a)
	r, err := region.New(region.HeaderSize + l.BodySize)
	if err != nil {
		t.Fatal(err)
	}
	r.Header().MaxEntries = a.MaxEntries
	o, err := Family.Open(r, a, l)
	if err != nil {
		t.Fatal(err)
	}
	if tr := Family.Traits(a); tr != (mapops.Traits{Update: mapops.UpdateNone}) {
		t.Fatalf("traits %+v", tr)
	}
	for name, err := range map[string]error{
		"lookup":            o.Lookup(nil, nil),
		"update":            o.Update(nil, nil, 0),
		"delete":            o.Delete(nil),
		"get_next_key":      o.GetNextKey(nil, nil),
		"lookup_and_delete": o.LookupAndDelete(nil, nil),
	} {
		if err != uapi.ENOTSUPP {
			t.Errorf("%s: %v, want ENOTSUPP", name, err)
		}
	}
	g := Lookup(r)
	if g == nil || g.Size() != int(PageSize) {
		t.Fatal("ring not registered")
	}
	if g.r.Header().MaxEntries != a.MaxEntries {
		t.Fatal("header not copied into the ring's region")
	}
	if err := g.Output([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if Lookup(r) != nil {
		t.Fatal("ring still registered after Close")
	}
	// A released ring reads as empty and refuses nothing dangerous.
	if c, p := g.Positions(); c != 0 || p != 0 {
		t.Fatalf("released ring positions %d %d", c, p)
	}
	if err := g.Output([]byte("late")); err != nil && !errors.Is(err, ErrFull) {
		t.Fatal(err)
	}
}

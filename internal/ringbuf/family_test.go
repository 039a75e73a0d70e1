package ringbuf

import (
	"errors"
	"runtime"
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
	if l.RingData != PageSize || region.HeaderSize+l.BodySize-l.RingData != 3*PageSize {
		t.Fatalf("layout %+v: want a head of 3 pages and RingData S", l)
	}
	o, r, err := mapops.OpenDetached(Family, a)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != int(3*PageSize+2*PageSize) {
		t.Fatalf("region of %d bytes", r.Len())
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
	if g == nil || g.Size() != int(PageSize) || g != o.(*ops).Ring() {
		t.Fatal("ring not registered")
	}
	if g.r != r {
		t.Fatal("the ring is not in the command layer's region")
	}
	if !g.Doubled() && runtime.GOOS == "linux" {
		t.Fatal("ring region not doubled on Linux")
	}
	if err := g.Output([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, p := g.Positions(); p != 16 {
		t.Fatalf("producer_pos %d", p)
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = Lookup(r) }); allocs != 0 {
		t.Fatalf("Lookup allocates %v", allocs)
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

// The portable fallback (no double mapping) is told apart at Open.
func TestOverProbesCopyLayout(t *testing.T) {
	r, err := region.NewRingCopy(PageSize, PageSize, PageSize)
	if err != nil {
		t.Fatal(err)
	}
	defer r.ReleaseRing()
	g, err := Over(r, PageSize, nil)
	if err != nil {
		t.Fatal(err)
	}
	if g.Doubled() {
		t.Fatal("separate copies probed as doubled")
	}
	if d := g.Mapping()[2*PageSize:]; d[0] != 0 || d[PageSize] != 0 {
		t.Fatal("probe left data behind")
	}
	if _, err := Over(r, 2*PageSize, nil); err == nil {
		t.Fatal("Over accepted a size that does not match the region")
	}
}

func BenchmarkLookup(b *testing.B) {
	o, r, err := mapops.OpenDetached(Family, &mapops.Attr{Type: uapi.MapTypeRingbuf, MaxEntries: uint32(PageSize)})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	b.ReportAllocs()
	for b.Loop() {
		if Lookup(r) == nil {
			b.Fatal("no ring")
		}
	}
}

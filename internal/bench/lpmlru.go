package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/gaissmai/bart"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/lpm"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// LPMRoutes is an LPM benchmark table: N random IPv4 routes with prefix
// lengths /8–/32 (host bits cleared; 8-byte keys {u32 prefixlen, address
// bytes}) and N /32 probe addresses (native-endian u32s of the address
// bytes), each inside a random route, so every lookup hits.
type LPMRoutes struct {
	Keys   [][]byte
	Probes []uint32
	// Fresh are N more random /8–/32 routes, none of them in Keys: the
	// routes the insert+delete benchmark adds and removes.
	Fresh [][]byte
}

// NewLPMRoutes builds the table for n (a power of two) routes.
func NewLPMRoutes(n uint32) LPMRoutes {
	r := rand.New(rand.NewPCG(42, uint64(n)))
	seen := make(map[uint64]bool, 2*n)
	route := func() []byte {
		for {
			p := uint32(8 + r.IntN(25))
			a := r.Uint32() &^ (1<<(32-p) - 1)
			if seen[uint64(p)<<32|uint64(a)] {
				continue
			}
			seen[uint64(p)<<32|uint64(a)] = true
			k := make([]byte, 8)
			binary.NativeEndian.PutUint32(k, p)
			binary.BigEndian.PutUint32(k[4:], a)
			return k
		}
	}
	var t LPMRoutes
	for uint32(len(t.Keys)) < n {
		t.Keys = append(t.Keys, route())
	}
	for uint32(len(t.Fresh)) < n {
		t.Fresh = append(t.Fresh, route())
	}
	t.Probes = make([]uint32, n)
	var b [4]byte
	for i := range t.Probes {
		k := t.Keys[r.IntN(len(t.Keys))]
		a := binary.BigEndian.Uint32(k[4:])
		if p := binary.NativeEndian.Uint32(k); p < 32 {
			a |= r.Uint32() & (1<<(32-p) - 1)
		}
		binary.BigEndian.PutUint32(b[:], a)
		t.Probes[i] = binary.NativeEndian.Uint32(b[:])
	}
	return t
}

// lpmSpec is the trie for n routes, with room for one more (the
// insert+delete benchmark's).
func lpmSpec(n uint32) *ebpf.MapSpec {
	return &ebpf.MapSpec{Type: ebpf.LPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: n + 1, Flags: uapi.FNoPrealloc}
}

// measureBpfmapLPM fills a bpfmap trie with t's routes and measures loop
// on it.
func measureBpfmapLPM(t LPMRoutes, loop func(*testing.B, LPMRoutes, *bpfmap.Map)) Result {
	m, err := bpfmap.NewMap(lpmSpec(uint32(len(t.Keys))))
	if err != nil {
		return Result{Err: err}
	}
	defer m.Close()
	for i, k := range t.Keys {
		if err := m.Update(k, uint64(i), ebpf.UpdateAny); err != nil {
			return Result{Err: err}
		}
	}
	return benchResult(func(b *testing.B) { loop(b, t, m) })
}

// LPMLookupLoop runs b.N /32 lookups of t's probes on m, in the kernel
// loop's order.
func LPMLookupLoop(b *testing.B, t LPMRoutes, m *bpfmap.Map) {
	n := uint32(len(t.Probes))
	k := make([]byte, 8)
	binary.NativeEndian.PutUint32(k, 32)
	var v uint64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		binary.NativeEndian.PutUint32(k[4:], t.Probes[key(uint32(i), n)])
		if err := m.Lookup(k, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// MeasureBart returns the lookup cost of gaissmai/bart, the Go ecosystem's
// reference routing table, on t's routes and probes in the same order.
func MeasureBart(t LPMRoutes) Result {
	var tbl bart.Table[uint64]
	for i, k := range t.Keys {
		tbl.Insert(routePrefix(k), uint64(i))
	}
	probes := make([]netip.Addr, len(t.Probes))
	for i, p := range t.Probes {
		var b [4]byte
		binary.NativeEndian.PutUint32(b[:], p)
		probes[i] = netip.AddrFrom4(b)
	}
	n := uint32(len(probes))
	return benchResult(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := tbl.Lookup(probes[key(uint32(i), n)]); !ok {
				b.Fatal("bart: probe without a route")
			}
		}
	})
}

// MeasureLPM returns bpfmap's and the kernel's in-BPF /32 lookup cost on
// t's routes.
func MeasureLPM(t LPMRoutes) (bm, kernel Result) {
	bm = measureBpfmapLPM(t, LPMLookupLoop)
	km, err := newKernelLPM(t)
	if err != nil {
		kernel.Err = err
		return
	}
	defer km.Close()
	d, err := kbpf.LPMLoopCost(km, t.Probes, KernelIters)
	kernel = Result{NsPerOp: d, Err: err}
	return
}

// LPMUpdateDeleteLoop runs b.N pairs of an insert (BPF_NOEXIST) and a
// delete of t's fresh routes on m, in the kernel loop's order.
func LPMUpdateDeleteLoop(b *testing.B, t LPMRoutes, m *bpfmap.Map) {
	n := uint32(len(t.Fresh))
	var v uint64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		k := t.Fresh[key(uint32(i), n)]
		if err := m.Update(k, &v, ebpf.UpdateNoExist); err != nil {
			b.Fatal(err)
		}
		if err := m.Delete(k); err != nil {
			b.Fatal(err)
		}
	}
}

// MeasureLPMUpdateDelete returns the cost of inserting and deleting one of
// t's fresh routes in a trie holding t's routes: bpfmap, the kernel in BPF
// and gaissmai/bart.
func MeasureLPMUpdateDelete(t LPMRoutes) (bm, kernel, bt Result) {
	bm = measureBpfmapLPM(t, LPMUpdateDeleteLoop)
	var tbl bart.Table[uint64]
	for i, k := range t.Keys {
		tbl.Insert(routePrefix(k), uint64(i))
	}
	fresh := make([]netip.Prefix, len(t.Fresh))
	for i, k := range t.Fresh {
		fresh[i] = routePrefix(k)
	}
	bt = benchResult(func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p := fresh[key(uint32(i), uint32(len(fresh)))]
			tbl.Insert(p, 1)
			tbl.Delete(p)
		}
	})
	km, err := newKernelLPM(t)
	if err != nil {
		kernel.Err = err
		return
	}
	defer km.Close()
	d, err := kbpf.LPMUpdateDeleteLoopCost(km, t.Fresh, KernelIters)
	kernel = Result{NsPerOp: d, Err: err}
	return
}

func routePrefix(k []byte) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte(k[4:8])), int(binary.NativeEndian.Uint32(k)))
}

func newKernelLPM(t LPMRoutes) (*ebpf.Map, error) {
	if err := kbpf.Available(); err != nil {
		return nil, err
	}
	km, err := ebpf.NewMap(lpmSpec(uint32(len(t.Keys))))
	if err != nil {
		return nil, err
	}
	for i, k := range t.Keys {
		if err := km.Update(k, uint64(i), ebpf.UpdateAny); err != nil {
			km.Close()
			return nil, err
		}
	}
	return km, nil
}

// LPMBytesPerRoute is bpfmap's memory per route on t: the LPM structure's
// bytes in use (its header and every arena byte handed out, free blocks
// included: the pages the map has touched) divided by the routes. The
// region's address range (MapInfo.Footprint) is reserved, not used, so it
// is not the measure.
func LPMBytesPerRoute(t LPMRoutes) (float64, error) {
	n := uint32(len(t.Keys))
	a := &mapops.Attr{Type: uapi.MapTypeLPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: n, Flags: uapi.FNoPrealloc, PossibleCPUs: 1}
	l, err := lpm.Family.Layout(a)
	if err != nil {
		return 0, err
	}
	r, err := region.New(region.HeaderSize + l.BodySize)
	if err != nil {
		return 0, err
	}
	defer r.Release()
	ops, err := lpm.Family.Open(r, a, l)
	if err != nil {
		return 0, err
	}
	m := ops.(*lpm.Map)
	v := make([]byte, 8)
	for _, k := range t.Keys {
		if err := m.Update(k, v, 0); err != nil {
			return 0, err
		}
	}
	return float64(region.HeaderSize+m.ArenaInUse()) / float64(n), nil
}

// kernelLPMMemlock is the kernel's bytes_memlock per route on t.
func kernelLPMMemlock(t LPMRoutes) (float64, error) {
	km, err := newKernelLPM(t)
	if err != nil {
		return 0, err
	}
	defer km.Close()
	info, err := km.Info()
	if err != nil {
		return 0, err
	}
	ml, ok := info.Memlock()
	if !ok {
		return 0, fmt.Errorf("memlock not reported")
	}
	return float64(ml) / float64(len(t.Keys)), nil
}

// LRU is the LRU_HASH kind of the LRU report's cases.
const LRU Kind = "lru_hash"

// lruSpec sizes an LRU map for n keys with a quarter more room: the
// kernel's LRU (and bpfmap's, which keeps the kernel's surviving keys)
// evicts in batches through per-CPU lists before it is completely full, so
// a map of exactly n entries filled with n keys does not keep them all.
func lruSpec(n uint32) *ebpf.MapSpec {
	return &ebpf.MapSpec{Type: ebpf.LRUHash, KeySize: 4, ValueSize: 8, MaxEntries: n + n/4}
}

// benchResult is fromBench, with a failed benchmark (b.Fatal: a missing
// key or a failed update) as an error rather than NaN.
func benchResult(f func(b *testing.B)) Result {
	r := testing.Benchmark(f)
	if r.N == 0 {
		return Result{Err: fmt.Errorf("benchmark failed (missing key or update error)")}
	}
	return fromBench(r)
}

// MeasureLRU runs c (Kind LRU; keys 0..N-1 stored first in a map of
// N + N/4 entries, so every lookup hits) on bpfmap, the kernel in BPF and a Go map.
func MeasureLRU(c Case) (bm, kernel, goMap Result) {
	fill := func(put func([]uint32, []uint64) (int, error)) error {
		return fillChunks(c.N, func(k []uint32, v []uint64) error {
			_, err := put(k, v)
			return err
		})
	}
	if m, err := bpfmap.NewMap(lruSpec(c.N)); err != nil {
		bm.Err = err
	} else {
		if err := fill(func(k []uint32, v []uint64) (int, error) { return m.BatchUpdate(k, v, nil) }); err != nil {
			bm.Err = err
		} else {
			bm = benchResult(func(b *testing.B) { BPFMapLoop(b, c, m) })
		}
		m.Close()
	}
	goMap = fromBench(testing.Benchmark(func(b *testing.B) { GoMapLoop(b, Case{Hash, c.Op, c.N}) }))
	if err := kbpf.Available(); err != nil {
		kernel.Err = err
		return
	}
	km, err := ebpf.NewMap(lruSpec(c.N))
	if err != nil {
		kernel.Err = err
		return
	}
	defer km.Close()
	if err := fill(func(k []uint32, v []uint64) (int, error) { return km.BatchUpdate(k, v, nil) }); err != nil {
		kernel.Err = err
		return
	}
	op := kbpf.OpLookup
	if c.Op == Update {
		op = kbpf.OpUpdate
	}
	d, err := kbpf.LoopCost(km, op, c.N, KernelIters)
	kernel = Result{NsPerOp: d, Err: err}
	return
}

// LPMLRUReport measures LPM_TRIE lookups (/32 probes on random IPv4 /8–/32
// routes, 1Ki and 1Mi routes) with memory per route, and LRU_HASH lookups
// and updates (1Ki and 1Mi keys present, max_entries a quarter more; 4-byte
// keys, 8-byte values), bpfmap
// against the kernel in BPF and, for LRU, a Go map; each figure the median
// of count runs.
func LPMLRUReport(count int) string {
	count = max(count, 1)
	sizes := []uint32{1 << 10, 1 << 20}
	var sb strings.Builder
	sb.WriteString("| LPM_TRIE lookup (/32 probes, random IPv4 /8–/32 routes) | bpfmap ns/op | bpfmap allocs/op | kernel in-BPF ns/op | bpfmap / kernel | gaissmai/bart ns/op | bpfmap bytes/route | kernel memlock bytes/route |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, n := range sizes {
		t := NewLPMRoutes(n)
		var bms, ks, bs []Result
		for range count {
			bm, kr := MeasureLPM(t)
			bms, ks, bs = append(bms, bm), append(ks, kr), append(bs, MeasureBart(t))
		}
		bm, kr, bt := median(bms), median(ks), median(bs)
		bpr, ml := "n/a", "n/a"
		if v, err := LPMBytesPerRoute(t); err == nil {
			bpr = fmt.Sprintf("%.1f", v)
		}
		if v, err := kernelLPMMemlock(t); err == nil {
			ml = fmt.Sprintf("%.1f", v)
		}
		fmt.Fprintf(&sb, "| %d routes | %s | %d | %s | %s | %s | %s | %s |\n", n, ns(bm), bm.AllocsPerOp, ns(kr), ratio(bm, kr), ns(bt), bpr, ml)
	}
	sb.WriteString("\n| LPM_TRIE insert (BPF_NOEXIST) + delete of a route, per pair | bpfmap ns/op | bpfmap allocs/op | kernel in-BPF ns/op | bpfmap / kernel | gaissmai/bart ns/op |\n|---|---:|---:|---:|---:|---:|\n")
	for _, n := range sizes {
		t := NewLPMRoutes(n)
		var bms, ks, bs []Result
		for range count {
			bm, kr, bt := MeasureLPMUpdateDelete(t)
			bms, ks, bs = append(bms, bm), append(ks, kr), append(bs, bt)
		}
		bm, kr, bt := median(bms), median(ks), median(bs)
		fmt.Fprintf(&sb, "| %d routes | %s | %d | %s | %s | %s |\n", n, ns(bm), bm.AllocsPerOp, ns(kr), ratio(bm, kr), ns(bt))
	}
	sb.WriteString("\n| LRU_HASH (4-byte keys, 8-byte values, all present; max_entries = 1.25 × keys) | keys | bpfmap ns/op | bpfmap allocs/op | kernel in-BPF ns/op | Go map ns/op | bpfmap / kernel | bpfmap / Go map |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, op := range []Op{Lookup, Update} {
		for _, n := range sizes {
			c := Case{LRU, op, n}
			var bms, ks, gs []Result
			for range count {
				bm, kr, g := MeasureLRU(c)
				bms, ks, gs = append(bms, bm), append(ks, kr), append(gs, g)
			}
			bm, kr, g := median(bms), median(ks), median(gs)
			fmt.Fprintf(&sb, "| %s | %d | %s | %d | %s | %s | %s | %s |\n", op, n, ns(bm), bm.AllocsPerOp, ns(kr), ns(g), ratio(bm, kr), ratio(bm, g))
		}
	}
	return sb.String()
}

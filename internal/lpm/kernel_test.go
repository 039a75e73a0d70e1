package lpm

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

const tLPM = uint32(uapi.MapTypeLPMTrie)

// ourCreate is what BPF_MAP_CREATE returns for a through the command
// layer's generic checks that apply to LPM (mirrored here: map_extra,
// RDONLY with WRONLY, NUMA node, the token flag) and the family's Check.
func ourCreate(a kbpf.CreateAttr) syscall.Errno {
	flags := a.MapFlags &^ uapi.FTokenFD
	switch {
	case a.MapExtra != 0, flags&uapi.FAccessMask == uapi.FAccessMask,
		flags&uapi.FNumaNode != 0 && a.NumaNode != 0 && a.NumaNode != mapops.NoNode:
		return uapi.EINVAL
	}
	ma := &mapops.Attr{Type: uapi.MapTypeLPMTrie, KeySize: a.KeySize, ValueSize: a.ValueSize,
		MaxEntries: a.MaxEntries, Flags: flags, NumaNode: a.NumaNode, MapExtra: a.MapExtra, PossibleCPUs: 2}
	if err := Family.Check(ma); err != nil {
		return errno(err)
	}
	if a.MapFlags&uapi.FTokenFD != 0 {
		return uapi.EINVAL // token fd 0 is not a BPF token
	}
	if _, err := Family.Layout(ma); err != nil {
		return errno(err)
	}
	return 0
}

// TestCreateRules compares every creation rule with the kernel.
func TestCreateRules(t *testing.T) {
	kbpf.Need(t)
	base := kbpf.CreateAttr{MapType: tLPM, KeySize: 8, ValueSize: 8, MaxEntries: 16, MapFlags: uint32(uapi.FNoPrealloc)}
	var rows []kbpf.CreateAttr
	add := func(f func(a *kbpf.CreateAttr)) {
		a := base
		f(&a)
		rows = append(rows, a)
	}
	for _, ks := range []uint32{0, 1, 4, 5, 6, 8, 20, 259, 260, 261, 1 << 31} {
		add(func(a *kbpf.CreateAttr) { a.KeySize = ks })
	}
	for _, vs := range []uint32{0, 1, 7, 4194023, 4194024, 4194025, 4 << 20, 1<<32 - 1} {
		add(func(a *kbpf.CreateAttr) { a.ValueSize = vs })
		add(func(a *kbpf.CreateAttr) { a.ValueSize = vs; a.KeySize = 260 })
	}
	for _, me := range []uint32{0, 1, 2, 1 << 20, 1 << 31, 1<<32 - 1} {
		add(func(a *kbpf.CreateAttr) { a.MaxEntries = me })
	}
	for bit := range 21 {
		add(func(a *kbpf.CreateAttr) { a.MapFlags |= 1 << bit })
		add(func(a *kbpf.CreateAttr) { a.MapFlags = 1 << bit })
		add(func(a *kbpf.CreateAttr) { a.MapFlags |= 1 << bit; a.KeySize = 4 })
	}
	for _, f := range []uint32{uapi.FRdonly | uapi.FWronly, uapi.FRdonlyProg | uapi.FWronlyProg,
		uapi.FRdonly | uapi.FRdonlyProg, uapi.FWronly | uapi.FWronlyProg | uapi.FNumaNode} {
		add(func(a *kbpf.CreateAttr) { a.MapFlags |= f })
	}
	for _, node := range []uint32{0, 1, 5, 1<<32 - 1} {
		add(func(a *kbpf.CreateAttr) { a.MapFlags |= uapi.FNumaNode; a.NumaNode = node })
		add(func(a *kbpf.CreateAttr) { a.NumaNode = node }) // ignored without the flag
	}
	for _, x := range []uint64{1, 15, 1 << 40} {
		add(func(a *kbpf.CreateAttr) { a.MapExtra = x })
	}
	add(func(a *kbpf.CreateAttr) { a.MaxEntries = 0; a.KeySize = 1 })
	add(func(a *kbpf.CreateAttr) { a.MapFlags = 0; a.ValueSize = 0 })
	for _, a := range rows {
		fd, ke := kbpf.CreateMap(&a)
		if ke == 0 {
			kbpf.Close(fd)
		}
		if oe := ourCreate(a); oe != ke {
			t.Errorf("create key %d value %d max %d flags %#x numa %d extra %d: kernel %v, bpfmap %v",
				a.KeySize, a.ValueSize, a.MaxEntries, a.MapFlags, a.NumaNode, a.MapExtra, ke, oe)
		}
	}
	t.Logf("%d creation rows", len(rows))
}

// pair is a kernel map and a bpfmap map of the same shape.
type pair struct {
	t      testing.TB
	stats  map[string]int // op/errno → count
	fd     int
	m      *Map
	ks, vs int
}

func newPair(t testing.TB, ks, vs, maxEnt uint32) *pair {
	fd, e := kbpf.CreateMap(&kbpf.CreateAttr{MapType: tLPM, KeySize: ks, ValueSize: vs, MaxEntries: maxEnt, MapFlags: uapi.FNoPrealloc})
	if e != 0 {
		t.Fatalf("kernel create: %v", e)
	}
	t.Cleanup(func() { kbpf.Close(fd) })
	m, err := newOps(ks, vs, maxEnt)
	if err != nil {
		t.Fatal(err)
	}
	return &pair{t: t, fd: fd, m: m, ks: int(ks), vs: int(vs), stats: map[string]int{}}
}

func (p *pair) update(k, v []byte, fl uint64) error {
	ke := kbpf.Update(p.fd, k, v, fl)
	oe := errno(p.m.Update(k, v, fl))
	p.stats[fmt.Sprintf("update/%d %v", fl, ke)]++
	if ke != oe {
		return fmt.Errorf("update %x flags %d: kernel %v, bpfmap %v", k, fl, ke, oe)
	}
	return nil
}

func (p *pair) delete(k []byte) error {
	ke := kbpf.Delete(p.fd, k)
	oe := errno(p.m.Delete(k))
	p.stats["delete "+ke.Error()]++
	if ke != oe {
		return fmt.Errorf("delete %x: kernel %v, bpfmap %v", k, ke, oe)
	}
	return nil
}

func (p *pair) lookup(k []byte) error {
	kv, ov := make([]byte, p.vs), make([]byte, p.vs)
	ke := kbpf.Lookup(p.fd, k, kv, 0)
	oe := errno(p.m.Lookup(k, ov))
	p.stats["lookup "+ke.Error()]++
	if ke != oe || !bytes.Equal(kv, ov) {
		return fmt.Errorf("lookup %x: kernel %v %x, bpfmap %v %x", k, ke, kv, oe, ov)
	}
	return nil
}

func (p *pair) next(k []byte) error {
	kn, on := make([]byte, p.ks), make([]byte, p.ks)
	ke := kbpf.GetNextKey(p.fd, k, kn)
	oe := errno(p.m.GetNextKey(k, on))
	p.stats[fmt.Sprintf("next(nil=%v) %v", k == nil, ke)]++
	if ke != oe || !bytes.Equal(kn, on) {
		return fmt.Errorf("get_next_key %x: kernel %v %x, bpfmap %v %x", k, ke, kn, oe, on)
	}
	return nil
}

// walk compares full GET_NEXT_KEY walks and returns the kernel's keys.
func (p *pair) walk() ([][]byte, error) {
	var keys [][]byte
	var cur []byte
	for i := 0; ; i++ {
		kn, on := make([]byte, p.ks), make([]byte, p.ks)
		ke := kbpf.GetNextKey(p.fd, cur, kn)
		oe := errno(p.m.GetNextKey(cur, on))
		if ke != oe || !bytes.Equal(kn, on) {
			return keys, fmt.Errorf("walk step %d after %x: kernel %v %x, bpfmap %v %x", i, cur, ke, kn, oe, on)
		}
		if ke != 0 {
			return keys, nil
		}
		keys = append(keys, kn)
		cur = kn
		if i > 1<<16 {
			return keys, fmt.Errorf("walk does not end")
		}
	}
}

func v4(p uint32, a, b, c, d byte) []byte { return mkKey(8, p, a, b, c, d) }

// TestWorkedExample is kernel-semantics.md §7's iteration example, checked
// against the kernel and against the expected order.
func TestWorkedExample(t *testing.T) {
	kbpf.Need(t)
	p := newPair(t, 8, 8, 16)
	val := make([]byte, 8)
	for _, k := range [][]byte{v4(16, 192, 168, 0, 0), v4(24, 192, 168, 0, 0), v4(24, 192, 168, 1, 0), v4(24, 192, 168, 128, 0)} {
		if err := p.update(k, val, 0); err != nil {
			t.Fatal(err)
		}
	}
	check := func(want ...[]byte) {
		t.Helper()
		got, err := p.walk()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("walk %x, want %x", got, want)
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("walk %x, want %x", got, want)
			}
		}
	}
	check(v4(24, 192, 168, 0, 0), v4(24, 192, 168, 1, 0), v4(24, 192, 168, 128, 0), v4(16, 192, 168, 0, 0))
	// A /23 re-uses the kernel's internal node above 0.0/24 and 1.0/24;
	// host bits (.1.7) are kept verbatim.
	if err := p.update(v4(23, 192, 168, 1, 7), val, 0); err != nil {
		t.Fatal(err)
	}
	check(v4(24, 192, 168, 0, 0), v4(24, 192, 168, 1, 0), v4(23, 192, 168, 1, 7), v4(24, 192, 168, 128, 0), v4(16, 192, 168, 0, 0))
	if err := p.update(v4(0, 0, 0, 0, 0), val, 0); err != nil {
		t.Fatal(err)
	}
	check(v4(24, 192, 168, 0, 0), v4(24, 192, 168, 1, 0), v4(23, 192, 168, 1, 7), v4(24, 192, 168, 128, 0), v4(16, 192, 168, 0, 0), v4(0, 0, 0, 0, 0))
	// Deleting the /16 by a key with other host bits; LPM with a /8 probe
	// cannot find the /16; lookup-and-delete is ENOTSUPP.
	for _, err := range []error{
		p.lookup(v4(8, 192, 168, 1, 1)), p.lookup(v4(20, 192, 168, 15, 1)), p.lookup(v4(33, 192, 168, 1, 1)),
		p.delete(v4(16, 192, 168, 99, 99)), p.lookup(v4(20, 192, 168, 15, 1)), p.delete(v4(33, 0, 0, 0, 0)),
		p.next(v4(33, 1, 2, 3, 4)), p.next(v4(16, 192, 168, 0, 0)), p.update(v4(33, 0, 0, 0, 0), val, 0),
	} {
		if err != nil {
			t.Error(err)
		}
	}
	ke := kbpf.LookupAndDelete(p.fd, v4(24, 192, 168, 0, 0), val, 0)
	if oe := errno(p.m.LookupAndDelete(v4(24, 192, 168, 0, 0), val)); ke != oe || oe != uapi.ENOTSUPP {
		t.Errorf("lookup_and_delete: kernel %v, bpfmap %v", ke, oe)
	}
}

// keyGen draws keys biased to shared paths: a few base data strings,
// prefix lengths near their byte boundaries or uniform, occasional bit
// flips inside and beyond the prefix, and occasional prefixlen > max.
type keyGen struct {
	r     *rand.Rand
	ks    int
	bases [][]byte
}

func newKeyGen(r *rand.Rand, ks int) *keyGen {
	g := &keyGen{r: r, ks: ks}
	for range 4 {
		b := make([]byte, ks-4)
		for i := range b {
			b[i] = byte(r.IntN(256))
		}
		g.bases = append(g.bases, b)
	}
	return g
}

func (g *keyGen) key() []byte {
	r := g.r
	maxBits := 8 * (g.ks - 4)
	k := mkKey(g.ks, 0, g.bases[r.IntN(len(g.bases))]...)
	if r.IntN(4) == 0 {
		for i := 4; i < g.ks; i++ {
			k[i] = byte(r.IntN(256))
		}
	}
	var p int
	switch r.IntN(10) {
	case 0:
		p = maxBits + 1 + r.IntN(40)
	case 1, 2:
		p = maxBits - r.IntN(min(3, maxBits+1))
	case 3, 4:
		p = r.IntN(min(12, maxBits+1))
	default:
		p = r.IntN(maxBits + 1)
	}
	plenPut(k, uint32(p))
	for range r.IntN(3) {
		b := r.IntN(maxBits)
		if r.IntN(3) == 0 && p > 0 {
			b = r.IntN(min(p, maxBits))
		}
		k[4+b/8] ^= 0x80 >> (b % 8)
	}
	return k
}

// lockstepOps is the number of operations TestLockstep runs (each one on
// the kernel and on bpfmap); BPFMAP_LPM_OPS overrides it.
func lockstepOps() int {
	if s := os.Getenv("BPFMAP_LPM_OPS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil {
			return n
		}
	}
	return 120_000
}

// TestLockstep applies seeded random operations to the kernel and to
// bpfmap and compares errnos and output bytes, with full GET_NEXT_KEY
// walks every few operations.
func TestLockstep(t *testing.T) {
	kbpf.Need(t)
	total := lockstepOps()
	start := time.Now()
	done, walks, ops := 0, 0, 0
	stats := map[string]int{}
	for seed := uint64(1); done < total; seed++ {
		r := rand.New(rand.NewPCG(seed, 0x1b))
		dsz := []int{1, 2, 4, 16, 20, 128}[seed%6] // key sizes 5, 6, 8, 20, 24 and 132
		ks := 4 + dsz
		vs := []int{1, 4, 8, 13}[r.IntN(4)]
		maxEnt := []int{1, 3, 8, 32, 100, 700, jumpMin}[r.IntN(7)]
		p := newPair(t, uint32(ks), uint32(vs), uint32(maxEnt))
		g := newKeyGen(r, ks)
		val := make([]byte, vs)
		nops := 2000
		var known [][]byte // keys updated successfully, for exact hits
		for i := 0; i < nops && done < total; i++ {
			k := g.key()
			if len(known) > 0 && r.IntN(5) < 2 {
				k = bytes.Clone(known[r.IntN(len(known))])
				if pl := int(plen(k)); pl < 8*dsz && r.IntN(2) == 0 {
					b := pl + r.IntN(8*dsz-pl) // a host bit beyond the prefix
					k[4+b/8] ^= 0x80 >> (b % 8)
				}
			}
			var err error
			full := p.m.Count() >= uint32(maxEnt)
			switch op := r.IntN(100); {
			case op < 40 && !(full && op >= 25):
				for j := range val {
					val[j] = byte(r.IntN(256))
				}
				err = p.update(k, val, uint64(r.IntN(3)))
				if err == nil && p.m.hasExact(k) {
					known = append(known, bytes.Clone(k))
				}
			case op < 55 || full && op < 60:
				err = p.delete(k)
			case op < 80:
				err = p.lookup(k)
			case op < 85:
				err = p.next(nil)
			default:
				err = p.next(k)
			}
			done++
			if err == nil && i%16 == 15 {
				if err = p.m.checkJump(); err != nil {
					t.Fatalf("seed %d op %d: %v", seed, i, err)
				}
				var keys [][]byte
				keys, err = p.walk()
				walks++
				ops += len(keys)
				// get_next_key from every present key, and lookups of them
				for _, k := range keys {
					if err == nil {
						err = p.next(k)
					}
					if err == nil {
						err = p.lookup(k)
					}
				}
			}
			if err != nil {
				t.Fatalf("seed %d key %d value %d max %d op %d: %v", seed, ks, vs, maxEnt, i, err)
			}
		}
		for k, v := range p.stats {
			stats[k] += v
		}
		if c := p.m.Count(); c > uint32(maxEnt) {
			t.Fatalf("count %d > max %d", c, maxEnt)
		}
	}
	t.Logf("%d random operations, %d full walks (%d more operations), %v", done, walks, ops, time.Since(start))
	t.Logf("outcomes: %v", stats)
}

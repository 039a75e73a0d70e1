//go:build linux

package difftest

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// defaultOps is the default number of random operations TestLockstep runs
// (over all nine types); BPFMAP_DIFF_OPS overrides it.
const defaultOps = 875_000

var (
	lockKeySizes   = []uint32{1, 3, 4, 8, 13}
	lockValueSizes = []uint32{1, 5, 8, 12}
)

// randomAttr draws a small map of type typ: key and value sizes from the
// lists above, 1..64 entries, and a random mix of the flags the type accepts
// (ZERO_SEED in most hash maps, so that most runs compare exact orders).
func randomAttr(r src, typ uint32) kbpf.CreateAttr {
	if isKeyless(typ) {
		return randomKeylessAttr(r, typ)
	}
	a := kbpf.CreateAttr{MapType: typ, KeySize: 4}
	if isHash(typ) {
		a.KeySize = lockKeySizes[r.intn(len(lockKeySizes))]
	}
	a.ValueSize = lockValueSizes[r.intn(len(lockValueSizes))]
	switch r.intn(4) {
	case 0:
		a.MaxEntries = uint32(1 + r.intn(4))
	case 1:
		a.MaxEntries = []uint32{8, 16, 32, 64}[r.intn(4)]
	default:
		a.MaxEntries = uint32(1 + r.intn(64))
	}
	if isLRU(typ) && r.intn(8) == 0 {
		a.MaxEntries = 1000 // target_free 128 with 2 CPUs: the 1000 → 976 shape
	}
	if isHash(typ) {
		if r.intn(10) < 7 {
			a.MapFlags |= fZeroSeed
		}
		if isLRU(typ) {
			if r.intn(3) == 0 {
				a.MapFlags |= fNoCommonLRU
			}
		} else if r.intn(3) == 0 {
			a.MapFlags |= fNoPrealloc
		}
	}
	if typ == tArray && r.intn(6) == 0 {
		a.MapFlags |= fMmapable
	}
	if (typ == tHash || typ == tArray) && r.intn(10) == 0 {
		a.MapFlags |= fNumaNode // numa_node 0
	}
	switch r.intn(30) {
	case 0:
		a.MapFlags |= fRdonly
	case 1:
		a.MapFlags |= fWronly
	case 2:
		a.MapFlags |= fRdonlyProg
	case 3:
		a.MapFlags |= fWronlyProg
	}
	if r.intn(4) == 0 {
		a.MapName = name16("m_" + strconv.Itoa(r.intn(1000)) + ".x")
	}
	return a
}

// lockstepTotal counts the compared commands of every lockstep run in this
// process (TestLockstep and FuzzLockstep's seed corpus).
var lockstepTotal, lockstepChecks atomic.Int64

// runInstance runs one map instance fully determined by seed.
func runInstance(tb testing.TB, typ uint32, seed uint64, label string) (ops, checks int, failed bool) {
	r := newRandSrc(seed)
	a := randomAttr(r, typ)
	n := 50 + r.intn(1500)
	e := newEngine(tb, a, r, label)
	if e == nil {
		return 0, 0, true
	}
	defer e.close()
	e.run(n)
	lockstepTotal.Add(int64(e.ops))
	lockstepChecks.Add(int64(e.checks))
	return e.ops, e.checks, e.failed && !e.abandoned
}

// TestLockstep applies seeded random operation sequences to kernel maps and
// bpfmap maps of the same attr, one parallel subtest per type.
//
// BPFMAP_DIFF_OPS sets the total number of random operations (default
// 875000, spread evenly over the nine types), BPFMAP_DIFF_SEED the master
// seed, and BPFMAP_DIFF_INSTANCE runs just the one map instance a mismatch
// report names.
func TestLockstep(t *testing.T) {
	kbpf.Need(t)
	total := envInt("BPFMAP_DIFF_OPS", defaultOps)
	master, fromEnv := envSeed("BPFMAP_DIFF_SEED")
	instance, oneInstance := uint64(0), false
	if v := os.Getenv("BPFMAP_DIFF_INSTANCE"); v != "" {
		n, err := strconv.ParseUint(v, 0, 64)
		if err != nil {
			t.Fatalf("BPFMAP_DIFF_INSTANCE=%q: %v", v, err)
		}
		instance, oneInstance = n, true
	}
	t.Logf("master seed %#x (from env: %v); %d operations over %d types; %d possible CPUs", master, fromEnv, total, len(lockTypes), ncpu())
	start := time.Now()
	var ops, checks atomic.Int64
	t.Cleanup(func() {
		t.Logf("TestLockstep: %d random operations + %d state-check operations compared in %v",
			ops.Load(), checks.Load(), time.Since(start).Round(time.Millisecond))
		logStats(t)
	})
	for _, typ := range lockTypes {
		t.Run(typeName(typ), func(t *testing.T) {
			t.Parallel()
			// The kernel's LRU depends on the CPU each command runs on;
			// bpfmap's maps run every operation on CPU 0 (options).
			if isLRU(typ) {
				defer pinCPU(t, 0)()
			}
			label := func(s uint64) string {
				return fmt.Sprintf("instance seed %#x, master seed %#x; reproduce: BPFMAP_DIFF_INSTANCE=%#x go test -run 'TestLockstep/%s$' ./internal/difftest/",
					s, master, s, typeName(typ))
			}
			if oneInstance {
				o, c, _ := runInstance(t, typ, instance, label(instance))
				ops.Add(int64(o))
				checks.Add(int64(c))
				return
			}
			r := rand.New(rand.NewPCG(master, uint64(typ)))
			budget := total / len(lockTypes)
			done, failures, instances := 0, 0, 0
			for done < budget && failures < 3 {
				s := r.Uint64()
				o, c, failed := runInstance(t, typ, s, label(s))
				done += o
				instances++
				ops.Add(int64(o))
				checks.Add(int64(c))
				if failed {
					failures++
				}
			}
			t.Logf("%s: %d operations in %d map instances", typeName(typ), done, instances)
		})
	}
}

// FuzzLockstep decodes the input into a map attr and an operation sequence
// and runs the lockstep comparison on it. The first bytes choose the type,
// sizes and flags (as randomAttr does), every following operation consumes
// a few bytes; the run ends when the input does.
func FuzzLockstep(f *testing.F) {
	kbpf.Need(f)
	// Seeds: for each type, a few inputs decoded from a fixed PRNG, plus
	// short hand-written ones.
	gen := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 2*len(lockTypes); i++ {
		b := make([]byte, 200+gen.IntN(800))
		for j := range b {
			b[j] = byte(gen.Uint32())
		}
		b[0] = byte(i % len(lockTypes))
		f.Add(b)
	}
	f.Add([]byte{0, 3, 2, 8, 0, 0, 0, 0})
	f.Add([]byte{1, 0, 0, 4, 0, 0, 0, 0, 60, 1, 2, 3})
	f.Add([]byte{2, 4, 3, 63, 0, 9, 9, 9, 9, 30, 30, 30, 80, 80, 80})
	f.Add([]byte{3, 1, 1, 1, 1, 1, 1, 1, 1, 90, 90, 90, 90})
	f.Fuzz(func(t *testing.T, data []byte) {
		kbpf.Need(t)
		if len(data) == 0 {
			return
		}
		s := &byteSrc{data: data[1:]}
		typ := lockTypes[int(data[0])%len(lockTypes)]
		if isLRU(typ) {
			defer pinCPU(t, 0)()
		}
		a := randomAttr(s, typ)
		e := newEngine(t, a, s, fmt.Sprintf("fuzz input %s of %d bytes; rerun: go test -run '%s' ./internal/difftest/", t.Name(), len(data), t.Name()))
		if e == nil {
			return
		}
		defer e.close()
		e.run(max(len(data)/8, 16))
		lockstepTotal.Add(int64(e.ops))
		lockstepChecks.Add(int64(e.checks))
		t.Logf("%s: %d operations + %d state-check operations", attrString(&a), e.ops, e.checks)
	})
}

//go:build linux

package difftest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// Facts of QUEUE, STACK and BLOOM_FILTER (kernel-semantics.md §8, §9, §17),
// each checked on both sides against the same expectation.

func b1(v byte) []byte { return []byte{v} }

func TestFactQueueStack(t *testing.T) {
	kbpf.Need(t)
	for _, typ := range []uint32{tQueue, tStack} {
		t.Run(typeName(typ), func(t *testing.T) {
			bothSides(t, kbpf.CreateAttr{MapType: typ, ValueSize: 1, MaxEntries: 3}, func(t *testing.T, m target) {
				out := []byte{0xee}
				want(t, "peek empty", m.lookup(nil, out, 0), syscall.ENOENT)
				want(t, "pop empty", m.lookupAndDelete(nil, out, 0), syscall.ENOENT)
				if out[0] != 0xee {
					t.Errorf("empty peek/pop wrote %x into the buffer", out)
				}
				want(t, "peek empty, NULL value", m.lookup(nil, nil, 0), syscall.ENOENT)
				want(t, "push NULL value", m.update(nil, nil, updAny), syscall.EFAULT)
				want(t, "push NOEXIST", m.update(nil, b1(9), updNoExist), syscall.EINVAL)
				want(t, "push flags=3", m.update(nil, b1(9), 3), syscall.EINVAL)
				want(t, "push F_LOCK", m.update(nil, b1(9), fLock), syscall.EINVAL)
				want(t, "push flags=8", m.update(nil, b1(9), 8), syscall.EINVAL)
				want(t, "push non-NULL key", m.update([]byte{}, b1(9), updAny), syscall.EINVAL)
				for v := byte(1); v <= 3; v++ {
					want(t, "push", m.update(nil, b1(v), updAny), 0)
				}
				want(t, "push into full, ANY", m.update(nil, b1(4), updAny), syscall.E2BIG)
				want(t, "push into full, NOEXIST", m.update(nil, b1(4), updNoExist), syscall.EINVAL)
				want(t, "push into full, EXIST", m.update(nil, b1(4), updExist), 0)
				want(t, "push into full, EXIST", m.update(nil, b1(5), updExist), 0)
				want(t, "peek F_LOCK", m.lookup(nil, out, fLock), syscall.EINVAL)
				want(t, "peek flags=1", m.lookup(nil, out, 1), syscall.EINVAL)
				want(t, "peek non-NULL key", m.lookup([]byte{}, out, 0), syscall.EINVAL)
				want(t, "peek NULL value", m.lookup(nil, nil, 0), syscall.EFAULT)
				want(t, "pop F_LOCK", m.lookupAndDelete(nil, out, fLock), syscall.EINVAL)
				want(t, "pop flags=1", m.lookupAndDelete(nil, out, 1), syscall.EINVAL)
				want(t, "delete", m.del(nil), syscall.EINVAL)
				want(t, "delete non-NULL key", m.del([]byte{}), syscall.EINVAL)
				want(t, "get_next_key", m.next(nil, make([]byte, 4)), syscall.EINVAL)
				want(t, "get_next_key NULL next", m.next(nil, nil), syscall.EINVAL)
				for _, cmd := range []uint32{cmdLookupBatch, cmdLookupAndDeleteBatch, cmdUpdateBatch, cmdDeleteBatch} {
					_, e := m.batch(cmd, &batchArgs{out: make([]byte, 4), keys: []byte{}, values: make([]byte, 4), count: 1})
					want(t, batchName(cmd), e, eNOTSUPP)
				}
				want(t, "peek", m.lookup(nil, out, 0), 0)
				first := map[uint32]byte{tQueue: 3, tStack: 5}[typ]
				if out[0] != first {
					t.Errorf("peek returned %d, want %d", out[0], first)
				}
				// Pop with a NULL value still pops (EFAULT after removal).
				want(t, "pop NULL value", m.lookupAndDelete(nil, nil, 0), syscall.EFAULT)
				rest := map[uint32][]byte{tQueue: {4, 5}, tStack: {4, 3}}[typ]
				for _, w := range rest {
					if want(t, "pop", m.lookupAndDelete(nil, out, 0), 0) && out[0] != w {
						t.Errorf("pop returned %d, want %d", out[0], w)
					}
				}
				want(t, "pop drained", m.lookupAndDelete(nil, out, 0), syscall.ENOENT)
				want(t, "push", m.update(nil, b1(7), updExist), 0)
				want(t, "freeze", m.freeze(), 0)
				want(t, "push after freeze", m.update(nil, b1(8), updAny), syscall.EPERM)
				want(t, "pop after freeze", m.lookupAndDelete(nil, out, 0), syscall.EPERM)
				if want(t, "peek after freeze", m.lookup(nil, out, 0), 0) && out[0] != 7 {
					t.Errorf("peek after freeze returned %d, want 7", out[0])
				}
				_, e := m.batch(cmdLookupBatch, &batchArgs{count: 1})
				want(t, "LOOKUP_BATCH after freeze", e, eNOTSUPP)
				_, e = m.batch(cmdUpdateBatch, &batchArgs{count: 1})
				want(t, "UPDATE_BATCH after freeze", e, syscall.EPERM)
			})
		})
	}
	t.Run("RDONLY and WRONLY fds", func(t *testing.T) {
		bothSides(t, kbpf.CreateAttr{MapType: tQueue, ValueSize: 1, MaxEntries: 2, MapFlags: fRdonly}, func(t *testing.T, m target) {
			want(t, "push", m.update(nil, b1(1), updAny), syscall.EPERM)
			want(t, "peek", m.lookup(nil, b1(0), 0), syscall.ENOENT)
			want(t, "pop", m.lookupAndDelete(nil, b1(0), 0), syscall.EPERM)
		})
		bothSides(t, kbpf.CreateAttr{MapType: tStack, ValueSize: 1, MaxEntries: 2, MapFlags: fWronly}, func(t *testing.T, m target) {
			want(t, "push", m.update(nil, b1(1), updAny), 0)
			want(t, "peek", m.lookup(nil, b1(0), 0), syscall.EPERM)
			want(t, "pop", m.lookupAndDelete(nil, b1(0), 0), syscall.EPERM)
		})
	})
	t.Run("capacity and wrap-around", func(t *testing.T) {
		for _, typ := range []uint32{tQueue, tStack} {
			bothSides(t, kbpf.CreateAttr{MapType: typ, ValueSize: 4, MaxEntries: 5}, func(t *testing.T, m target) {
				// Many laps around the ring, with every fill level.
				var model []uint32
				next := uint32(1)
				r := rand.New(rand.NewPCG(7, 7))
				for i := 0; i < 400; i++ {
					if r.IntN(2) == 0 {
						e := m.update(nil, u32(next), updAny)
						if len(model) == 5 {
							want(t, "push into full map", e, syscall.E2BIG)
							continue
						}
						want(t, "push", e, 0)
						model = append(model, next)
						next++
						continue
					}
					out := make([]byte, 4)
					e := m.lookupAndDelete(nil, out, 0)
					if len(model) == 0 {
						want(t, "pop empty", e, syscall.ENOENT)
						continue
					}
					var w uint32
					if typ == tQueue {
						w, model = model[0], model[1:]
					} else {
						w, model = model[len(model)-1], model[:len(model)-1]
					}
					if want(t, "pop", e, 0) && !bytes.Equal(out, u32(w)) {
						t.Fatalf("pop #%d returned %x, want %d", i, out, w)
					}
				}
			})
		}
	})
}

func TestFactBloom(t *testing.T) {
	kbpf.Need(t)
	bothSides(t, kbpf.CreateAttr{MapType: tBloom, ValueSize: 4, MaxEntries: 100, MapFlags: fZeroSeed, MapExtra: 3}, func(t *testing.T, m target) {
		v := u32(42)
		want(t, "peek empty", m.lookup(nil, bytes.Clone(v), 0), syscall.ENOENT)
		want(t, "peek NULL value", m.lookup(nil, nil, 0), syscall.EFAULT)
		want(t, "peek non-NULL key", m.lookup([]byte{}, bytes.Clone(v), 0), syscall.EINVAL)
		want(t, "peek F_LOCK", m.lookup(nil, bytes.Clone(v), fLock), syscall.EINVAL)
		want(t, "peek flags=1", m.lookup(nil, bytes.Clone(v), 1), syscall.EINVAL)
		for _, f := range []uint64{updNoExist, updExist, 3, fLock, 8} {
			want(t, "push flags="+strconv.Itoa(int(f)), m.update(nil, v, f), syscall.EINVAL)
		}
		want(t, "push NULL value", m.update(nil, nil, updAny), syscall.EFAULT)
		want(t, "push non-NULL key", m.update([]byte{}, v, updAny), syscall.EINVAL)
		want(t, "push", m.update(nil, v, updAny), 0)
		in := bytes.Clone(v)
		if want(t, "peek pushed", m.lookup(nil, in, 0), 0) && !bytes.Equal(in, v) {
			t.Errorf("peek changed its input buffer to %x", in)
		}
		want(t, "delete", m.del(nil), syscall.EOPNOTSUPP)
		want(t, "delete non-NULL key", m.del([]byte{}), syscall.EINVAL)
		want(t, "get_next_key", m.next(nil, make([]byte, 4)), syscall.EOPNOTSUPP)
		want(t, "lookup_and_delete", m.lookupAndDelete(nil, make([]byte, 4), 0), eNOTSUPP)
		want(t, "lookup_and_delete flags=1", m.lookupAndDelete(nil, make([]byte, 4), 1), syscall.EINVAL)
		for _, cmd := range []uint32{cmdLookupBatch, cmdLookupAndDeleteBatch, cmdUpdateBatch, cmdDeleteBatch} {
			_, e := m.batch(cmd, &batchArgs{out: make([]byte, 4), keys: []byte{}, values: make([]byte, 4), count: 1})
			want(t, batchName(cmd), e, eNOTSUPP)
		}
		for i := uint32(0); i < 1000; i++ {
			want(t, "push", m.update(nil, u32(i*7919), updAny), 0) // never "full"
		}
		want(t, "freeze", m.freeze(), 0)
		want(t, "push after freeze", m.update(nil, v, updAny), syscall.EPERM)
		want(t, "peek after freeze", m.lookup(nil, bytes.Clone(v), 0), 0)
	})
}

// TestFactBloomProbes pushes max_entries values into BPF_F_ZERO_SEED bloom
// filters of every k from 1 to 5 and several value sizes (jhash2 for
// multiples of 4, jhash otherwise), then compares thousands of peeks: every
// answer, false positives included, must be the kernel's.
func TestFactBloomProbes(t *testing.T) {
	kbpf.Need(t)
	const probes = 3000
	total, fps := 0, 0
	for _, vs := range []uint32{4, 6, 1, 8, 13, 16} {
		for k := uint64(1); k <= 5; k++ {
			for _, max := range []uint32{10, 200} {
				a := kbpf.CreateAttr{MapType: tBloom, ValueSize: vs, MaxEntries: max, MapFlags: fZeroSeed, MapExtra: k}
				km, bm := mustPair(t, a)
				r := rand.New(rand.NewPCG(uint64(vs), k*1000+uint64(max)))
				pushed := map[string]bool{}
				for i := uint32(0); i < max; i++ {
					v := bloomValue(int(vs), r.Uint64())
					pushed[string(v)] = true
					if ke, be := km.update(nil, v, updAny), bm.update(nil, v, updAny); ke != 0 || be != 0 {
						t.Fatalf("%s push: kernel %s, bpfmap %s", attrString(&a), errName(ke), errName(be))
					}
				}
				for i := 0; i < probes; i++ {
					v := bloomValue(int(vs), r.Uint64())
					ke, be := km.lookup(nil, bytes.Clone(v), 0), bm.lookup(nil, bytes.Clone(v), 0)
					total++
					if ke != be {
						t.Fatalf("%s peek %x (probe %d): kernel %s, bpfmap %s", attrString(&a), v, i, errName(ke), errName(be))
					}
					if ke == 0 && !pushed[string(v)] {
						fps++
					}
				}
				for v := range pushed {
					if ke, be := km.lookup(nil, []byte(v), 0), bm.lookup(nil, []byte(v), 0); ke != 0 || be != 0 {
						t.Fatalf("%s peek of pushed %x: kernel %s, bpfmap %s", attrString(&a), v, errName(ke), errName(be))
					}
				}
			}
		}
	}
	t.Logf("%d probes compared, %d of them false positives on both sides", total, fps)
	if fps == 0 {
		t.Error("no false positive was probed: the comparison did not cover them")
	}
}

// fdinfoMemlock reads the kernel's memlock figure of a map fd.
func fdinfoMemlock(t *testing.T, fd int) uint64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "memlock:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no memlock in fdinfo")
	return 0
}

// TestFactKeylessMemlock compares bpfmap's memlock figure with the kernel's
// fdinfo for queues, stacks and bloom filters (the bitset size shows in it).
func TestFactKeylessMemlock(t *testing.T) {
	kbpf.Need(t)
	for _, a := range []kbpf.CreateAttr{
		{MapType: tQueue, ValueSize: 1, MaxEntries: 1},
		{MapType: tQueue, ValueSize: 8, MaxEntries: 10},
		{MapType: tStack, ValueSize: 13, MaxEntries: 4096},
		{MapType: tBloom, ValueSize: 4, MaxEntries: 1, MapExtra: 1},
		{MapType: tBloom, ValueSize: 4, MaxEntries: 100, MapExtra: 1},
		{MapType: tBloom, ValueSize: 4, MaxEntries: 10, MapExtra: 5},
		{MapType: tBloom, ValueSize: 4, MaxEntries: 46, MapExtra: 5},
		{MapType: tBloom, ValueSize: 4, MaxEntries: 47},
		{MapType: tBloom, ValueSize: 6, MaxEntries: 1000},
		{MapType: tBloom, ValueSize: 6, MaxEntries: 4096, MapExtra: 15},
		{MapType: tBloom, ValueSize: 6, MaxEntries: 1 << 20, MapExtra: 1},
	} {
		fd, e := kbpf.CreateMap(&a)
		if e != 0 {
			t.Fatalf("kernel %s: %s", attrString(&a), errName(e))
		}
		km := fdinfoMemlock(t, fd)
		_ = kbpf.Close(fd)
		b, be, err := createBpfmap(&a)
		if be != 0 {
			t.Fatalf("bpfmap %s: %v", attrString(&a), err)
		}
		info, _ := b.(*bpfmapTarget).h.Info()
		b.close()
		if info.Memlock != km {
			t.Errorf("%s: memlock kernel %d, bpfmap %d", attrString(&a), km, info.Memlock)
		}
	}
}

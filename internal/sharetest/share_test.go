package sharetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

func init() {
	roles["writer"] = writerRole
	roles["reader"] = readerRole
	roles["producer"] = producerRole
	roles["consumer"] = consumerRole
}

// writerResult is what a writer child acknowledges: the final stamp of
// each key it wrote (0: deleted).
type writerResult struct {
	Final map[uint32]uint64
	Acked int
}

// writerRole updates (and, where the type allows, deletes) keys of its
// range [Lo, Hi), Ops times, and reports each key's last acknowledged state.
func writerRole(a childArgs) (any, error) {
	k := kinds[a.Kind]
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(a.Seed, uint64(a.Worker)))
	res := writerResult{Final: map[uint32]uint64{}}
	if !waitFile(a.Go) {
		return nil, errors.New("never told to start")
	}
	v := make([]byte, k.fullSize())
	for i := range a.Ops {
		n := a.Lo + rng.Uint32N(a.Hi-a.Lo)
		if k.deletes && rng.IntN(4) == 0 {
			if err := m.Delete(k.key(n)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
				return nil, fmt.Errorf("delete %d: %w", n, err)
			}
			res.Final[n] = 0
		} else {
			s := stampOf(a.Serial, uint64(i+1))
			k.put(v, n, s)
			if err := m.Put(k.key(n), v); err != nil {
				return nil, fmt.Errorf("update %d: %w", n, err)
			}
			res.Final[n] = s
		}
		res.Acked++
	}
	return res, nil
}

// readerResult counts what a reader child did.
type readerResult struct {
	Lookups, Hits, Walks, Iterates int
}

// readerRole looks keys of [Lo, Hi) up and walks the map until the stop
// file appears, failing on a torn value or a key yielded twice by All.
func readerRole(a childArgs) (any, error) {
	k := kinds[a.Kind]
	m, err := bpfmap.LoadPinnedMap(a.Pin, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	rng := rand.New(rand.NewPCG(a.Seed, uint64(a.Worker)))
	var res readerResult
	v := make([]byte, k.fullSize())
	for round := 0; ; round++ {
		if round == 1 {
			if err := os.WriteFile(fmt.Sprintf("%s.%d", a.Go, a.Worker), nil, 0o600); err != nil {
				return nil, err
			}
		}
		// Stop only after a full round that began after the writers ended.
		last := stopped(a.Stop)
		for range 64 {
			n := a.Lo + rng.Uint32N(a.Hi-a.Lo)
			err := m.Lookup(k.key(n), v)
			res.Lookups++
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("lookup %d: %w", n, err)
			}
			if _, err := k.check(v, n); err != nil {
				return nil, fmt.Errorf("lookup: %w", err)
			}
			res.Hits++
		}
		if _, err := k.walk(m, !k.concurrentDupsOK()); err != nil {
			return nil, fmt.Errorf("All: %w", err)
		}
		res.Walks++
		if round%4 == 0 {
			if _, err := k.iterate(m); err != nil {
				return nil, fmt.Errorf("Iterate: %w", err)
			}
			res.Iterates++
		}
		if last {
			return res, nil
		}
	}
}

// testWritersReaders runs writers on disjoint key ranges and readers over
// all keys of one pinned map at once, then checks that the map holds
// exactly every key's last acknowledged value.
func testWritersReaders(t *testing.T, k kind, maxEntries uint32, writers, readers, keysPer, ops int) {
	m, root, pin := newPinned(t, k.spec(maxEntries))
	dir := t.TempDir()
	stop, goFile := filepath.Join(dir, "stop"), filepath.Join(dir, "go")
	var ws, rs []*child
	for w := range writers {
		ws = append(ws, start(t, "writer", childArgs{Root: root, Pin: pin, Kind: k.name, Worker: w, Serial: w + 1,
			Lo: uint32(w * keysPer), Hi: uint32((w + 1) * keysPer), Ops: ops, Go: goFile, Seed: uint64(time.Now().UnixNano())}))
	}
	for r := range readers {
		rs = append(rs, start(t, "reader", childArgs{Root: root, Pin: pin, Kind: k.name, Worker: 100 + r,
			Lo: 0, Hi: uint32(writers * keysPer), Stop: stop, Go: goFile, Seed: uint64(time.Now().UnixNano())}))
	}
	// The writers start when every reader is running.
	for r := range readers {
		if !waitFile(fmt.Sprintf("%s.%d", goFile, 100+r)) {
			rs[r].cmd.Process.Kill()
			rs[r].cmd.Wait()
			t.Fatalf("reader %d did not start in 30 s\nstderr:\n%s", r, rs[r].errb.String())
		}
	}
	if err := os.WriteFile(goFile, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	want := map[uint32]uint64{}
	acked := 0
	for _, c := range ws {
		var res writerResult
		c.wait(t, 90*time.Second, &res)
		acked += res.Acked
		for n, s := range res.Final {
			if s != 0 {
				want[n] = s
			}
		}
	}
	if acked != writers*ops {
		t.Fatalf("writers acknowledged %d operations, want %d", acked, writers*ops)
	}
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range rs {
		var res readerResult
		c.wait(t, 60*time.Second, &res)
		if res.Hits == 0 || res.Walks < 4 {
			t.Errorf("reader did too little to test anything: %+v", res)
		}
		t.Logf("reader: %+v", res)
	}
	got, err := k.contents(m)
	if err != nil {
		t.Fatal(err)
	}
	if k.typ == ebpf.Array {
		for n := range maxEntries {
			if got[n] != want[n] {
				t.Errorf("index %d: stamp %#x, want %#x", n, got[n], want[n])
			}
		}
		return
	}
	for n, s := range want {
		if got[n] != s {
			t.Errorf("key %d: stamp %#x, want the last acknowledged %#x", n, got[n], s)
		}
	}
	if len(got) != len(want) {
		t.Errorf("map holds %d keys, the writers left %d", len(got), len(want))
	}
}

func TestSharedHashWritersReaders(t *testing.T) {
	testWritersReaders(t, kinds["hash"], 512, 3, 2, 128, 100000)
}

func TestSharedPerCPUHashWritersReaders(t *testing.T) {
	testWritersReaders(t, kinds["percpu"], 256, 2, 2, 100, 50000)
}

func TestSharedArrayWritersReaders(t *testing.T) {
	testWritersReaders(t, kinds["array"], 384, 3, 2, 128, 100000)
}

// LRU maps are sized far above the key count, so that nothing is evicted
// (each CPU's local free list holds at most 128 nodes) and the final
// contents are exact.
func TestSharedLRUHashWritersReaders(t *testing.T) {
	testWritersReaders(t, kinds["lru"], 4096, 3, 2, 128, 100000)
}

func TestSharedLPMWritersReaders(t *testing.T) {
	testWritersReaders(t, kinds["lpm"], 512, 3, 2, 128, 50000)
}

// producerRole pushes Ops values tagged (serial, seq) onto a queue,
// retrying while it is full.
func producerRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	v := make([]byte, 16)
	pushed := 0
	for i := range a.Ops {
		putQueueValue(v, stampOf(a.Serial, uint64(i+1)))
		for {
			err := m.Push(v)
			if err == nil {
				break
			}
			if !errors.Is(err, errE2BIG) {
				return nil, fmt.Errorf("push: %w", err)
			}
			time.Sleep(50 * time.Microsecond)
		}
		pushed++
	}
	return pushed, nil
}

// consumerRole pops until the stop file exists and the map is empty,
// checking every value and, for a queue (Payload 0), that each producer's
// values come out in the order they went in; it reports the stamps popped.
func consumerRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	v := make([]byte, 16)
	var popped []uint64
	last := map[uint64]uint64{}
	for {
		err := m.Pop(v)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			if stopped(a.Stop) {
				// The producers were done before the stop file
				// appeared: empty now means empty for good.
				if err := m.Pop(v); errors.Is(err, ebpf.ErrKeyNotExist) {
					return popped, nil
				}
				continue
			}
			time.Sleep(20 * time.Microsecond)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("pop: %w", err)
		}
		s, err := checkQueueValue(v)
		if err != nil {
			return nil, err
		}
		if prev, ok := last[s>>32]; ok && s <= prev && a.Payload == 0 {
			return nil, fmt.Errorf("producer %d's value %d popped after its value %d", s>>32, s&0xffffffff, prev&0xffffffff)
		}
		last[s>>32] = s
		popped = append(popped, s)
	}
}

func TestSharedQueueProducersConsumers(t *testing.T) { testProducersConsumers(t, ebpf.Queue) }

func TestSharedStackProducersConsumers(t *testing.T) { testProducersConsumers(t, ebpf.Stack) }

// testProducersConsumers runs producers and consumers of one queue or
// stack at once and checks that every value pushed was popped exactly once.
func testProducersConsumers(t *testing.T, typ ebpf.MapType) {
	const producers, consumers, ops = 3, 3, 3000
	_, root, pin := newPinned(t, &ebpf.MapSpec{Name: "share_keyless", Type: typ, ValueSize: 16, MaxEntries: 64})
	lifo := uint64(0)
	if typ == ebpf.Stack {
		lifo = 1
	}
	stop := filepath.Join(t.TempDir(), "stop")
	var ps, cs []*child
	for p := range producers {
		ps = append(ps, start(t, "producer", childArgs{Root: root, Pin: pin, Worker: p, Serial: p + 1, Ops: ops}))
	}
	for c := range consumers {
		cs = append(cs, start(t, "consumer", childArgs{Root: root, Pin: pin, Worker: 100 + c, Stop: stop, Payload: lifo}))
	}
	for _, c := range ps {
		var n int
		c.wait(t, 90*time.Second, &n)
		if n != ops {
			t.Fatalf("producer pushed %d, want %d", n, ops)
		}
	}
	if err := os.WriteFile(stop, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	seen := map[uint64]int{}
	for _, c := range cs {
		var popped []uint64
		c.wait(t, 60*time.Second, &popped)
		t.Logf("consumer popped %d", len(popped))
		for _, s := range popped {
			seen[s]++
		}
	}
	for p := range producers {
		for i := range ops {
			s := stampOf(p+1, uint64(i+1))
			if seen[s] != 1 {
				t.Errorf("value %d of producer %d popped %d times, want once", i+1, p+1, seen[s])
			}
			delete(seen, s)
		}
	}
	if len(seen) != 0 {
		t.Errorf("%d values popped that no producer pushed", len(seen))
	}
}

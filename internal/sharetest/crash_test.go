package sharetest

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

func init() {
	roles["crashwriter"] = crashWriterRole
	roles["crashcheck"] = crashCheckRole
	roles["crashproducer"] = crashProducerRole
	roles["crashconsumer"] = crashConsumerRole
	roles["drain"] = drainRole
}

// A crash child runs batches of 1 to 64 operations and logs each batch
// twice in its worker's O_APPEND log: the operations it is about to run,
// before it starts them, and their results, after the last one returned,
// each with one write(2). A child killed between the two leaves a batch in
// flight, of which any prefix may have taken effect. (Batches make most
// kills land inside map operations rather than inside the log writes.) A
// group that the kill cut short is dropped: if it is an intent, no
// operation of it had begun.
const recSize = 16

// Record phases and operations. A group is a header record (op opBatch,
// key = number of records that follow) and its records.
const (
	phIntent = 1
	phAck    = 2

	opBatch    = 0
	opUpdate   = 1
	opDelete   = 2
	opPush     = 3
	opPop      = 4
	opPushFull = 5 // result of a push that found the queue full
	opPopEmpty = 6 // result of a pop that found the queue empty
)

type rec struct {
	phase, op byte
	key       uint32
	stamp     uint64
}

// opLog appends groups of records to a worker's log, one write(2) each.
type opLog struct {
	f   *os.File
	buf []byte
}

func openLog(path string) (*opLog, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	return &opLog{f: f}, err
}

func appendRec(b []byte, r rec) []byte {
	b = append(b, r.phase, r.op, 0, 0)
	b = binary.LittleEndian.AppendUint32(b, r.key)
	return binary.LittleEndian.AppendUint64(b, r.stamp)
}

// put writes a group: a header of the given phase and rs.
func (l *opLog) put(phase byte, rs []rec) error {
	l.buf = appendRec(l.buf[:0], rec{phase: phase, op: opBatch, key: uint32(len(rs))})
	for _, r := range rs {
		r.phase = phase
		l.buf = appendRec(l.buf, r)
	}
	_, err := l.f.Write(l.buf)
	return err
}

// group is one logged group: its phase and records.
type group struct {
	phase byte
	rs    []rec
}

// readLog reads a worker's groups; a group cut short by a kill is dropped.
func readLog(path string) ([]group, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	get := func(b []byte) rec {
		return rec{b[0], b[1], binary.LittleEndian.Uint32(b[4:]), binary.LittleEndian.Uint64(b[8:])}
	}
	var gs []group
	for len(b) >= recSize {
		h := get(b)
		if h.op != opBatch || h.phase != phIntent && h.phase != phAck {
			return nil, fmt.Errorf("%s: bad group header %+v", path, h)
		}
		n := int(h.key)
		if len(b) < (n+1)*recSize {
			break
		}
		g := group{phase: h.phase}
		for i := range n {
			g.rs = append(g.rs, get(b[(i+1)*recSize:]))
		}
		gs = append(gs, g)
		b = b[(n+1)*recSize:]
	}
	return gs, nil
}

// readLogs reads the logs of one slot's children, in order.
func readLogs(paths []string) ([]group, error) {
	var gs []group
	for _, p := range paths {
		g, err := readLog(p)
		if err != nil {
			return nil, err
		}
		gs = append(gs, g...)
	}
	return gs, nil
}

// crashWriterRole updates and deletes keys of [Lo, Hi) in logged batches
// until killed; it writes one line on stdout after its first acknowledged
// batch.
func crashWriterRole(a childArgs) (any, error) {
	k := kinds[a.Kind]
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	l, err := openLog(a.Log)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(a.Seed, uint64(a.Serial)))
	v := make([]byte, k.fullSize())
	var batch []rec
	i := uint64(0)
	for b := 0; ; b++ {
		batch = batch[:0]
		for range 1 + rng.IntN(64) {
			i++
			r := rec{op: opUpdate, key: a.Lo + rng.Uint32N(a.Hi-a.Lo), stamp: stampOf(a.Serial, i)}
			if k.deletes && rng.IntN(4) == 0 {
				r.op, r.stamp = opDelete, 0
			}
			batch = append(batch, r)
		}
		if err := l.put(phIntent, batch); err != nil {
			return nil, err
		}
		for _, r := range batch {
			if r.op == opDelete {
				err = m.Delete(k.key(r.key))
				if errors.Is(err, ebpf.ErrKeyNotExist) {
					err = nil
				}
			} else {
				k.put(v, r.key, r.stamp)
				err = m.Put(k.key(r.key), v)
			}
			if err != nil {
				return nil, fmt.Errorf("op %d on key %d: %w", r.op, r.key, err)
			}
		}
		if err := l.put(phAck, batch); err != nil {
			return nil, err
		}
		if b == 0 {
			signalProgress()
		}
	}
}

// crashCheckRole opens the map after the kills (attaching runs the repair
// of the dead processes' damage) and reports its contents, read with All
// (no key twice, every value intact); Iterate must agree.
func crashCheckRole(a childArgs) (any, error) {
	k := kinds[a.Kind]
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	res := checkResult{Stamps: map[uint32]uint64{}, Torn: map[uint32][]byte{}}
	if k.tornAfterKill() {
		for kb, vb := range m.All() {
			n, _ := k.num(kb)
			if s, err := k.check(vb, n); err == nil {
				res.Stamps[n] = s
			} else {
				res.Torn[n] = slices.Clone(vb)
			}
		}
		return res, nil
	}
	if res.Stamps, err = k.contents(m); err != nil {
		return nil, err
	}
	n, err := k.iterate(m)
	if err != nil {
		return nil, fmt.Errorf("Iterate: %w", err)
	}
	if n != len(res.Stamps) {
		return nil, fmt.Errorf("Iterate yielded %d entries, All %d", n, len(res.Stamps))
	}
	return res, nil
}

// model is what the logs say each key may hold: the set of possible
// stamps (0: absent, or for arrays the zero value).
type model struct {
	cand             map[uint32][]uint64
	acks, inFlight   int
	pops, popsLost   int
	pushed, inFlPush map[uint64]bool
	popped           []uint64
}

func addCand(s []uint64, v uint64) []uint64 {
	if slices.Contains(s, v) {
		return s
	}
	return append(s, v)
}

// replay builds the model of keyed maps from the workers' logs.
func replay(logs [][]string, keys uint32) (*model, error) {
	md := &model{cand: map[uint32][]uint64{}}
	for n := range keys {
		md.cand[n] = []uint64{0}
	}
	result := func(r rec) uint64 {
		if r.op == opDelete {
			return 0
		}
		return r.stamp
	}
	for _, slot := range logs {
		gs, err := readLogs(slot)
		if err != nil {
			return nil, err
		}
		path := slot[0]
		var pending []rec
		flight := func() {
			for _, r := range pending { // any prefix of the batch ran
				md.cand[r.key] = addCand(md.cand[r.key], result(r))
			}
			if pending != nil {
				md.inFlight++
			}
		}
		for i, g := range gs {
			if g.phase == phIntent {
				flight()
				pending = g.rs
				continue
			}
			if !slices.EqualFunc(pending, g.rs, func(a, b rec) bool { return a.op == b.op && a.key == b.key && a.stamp == b.stamp }) {
				return nil, fmt.Errorf("%s: group %d acknowledges operations that were not begun", path, i)
			}
			for _, r := range g.rs {
				md.cand[r.key] = []uint64{result(r)}
				md.acks++
			}
			pending = nil
		}
		flight()
	}
	return md, nil
}

// crashConfig is one crash test.
type crashConfig struct {
	kind       kind
	maxEntries uint32
	slots      int // concurrent children
	keysPer    uint32
	kills      int
	queue      bool // slots alternate producer and consumer
	ring       bool // slots are ring buffer producers
}

// killsPerType is how many children each crash test kills.
func killsPerType() int {
	if testing.Short() {
		return 30
	}
	return 150
}

// crashRun runs cfg.slots children at a time on a pinned map, kills each
// at a random moment and starts a new one in its place, until cfg.kills
// kills; meanwhile this process reads the map as a survivor. Every child
// must make progress within 10 s of its start and the survivor must never
// stop making progress for 10 s. It returns the logs of each worker slot,
// in the order its children ran. (Each child has its own log: a kill can
// cut a write short.)
func crashRun(t *testing.T, cfg crashConfig, m *bpfmap.Map, root, pin string, survivor func(*rand.Rand) error) [][]string {
	dir := t.TempDir()
	logs := make([][]string, cfg.slots)
	var (
		kills    atomic.Int64
		serial   atomic.Int64
		failed   atomic.Bool
		progress atomic.Int64 // survivor operations
		wg       sync.WaitGroup
		errMu    sync.Mutex
		errs     []error
	)
	fail := func(err error) {
		errMu.Lock()
		errs = append(errs, err)
		errMu.Unlock()
		failed.Store(true)
	}
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	for s := range cfg.slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(s)))
			role := "crashwriter"
			if cfg.queue {
				role = []string{"crashproducer", "crashconsumer"}[s%2]
			}
			if cfg.ring {
				role = "ringproducer"
			}
			for !failed.Load() && kills.Load() < int64(cfg.kills) {
				a := childArgs{Root: root, Pin: pin, Kind: cfg.kind.name, Worker: s, Serial: int(serial.Add(1)),
					Lo: uint32(s) * cfg.keysPer, Hi: uint32(s+1) * cfg.keysPer, Seed: seed}
				a.Log = filepath.Join(dir, fmt.Sprintf("child%d.log", a.Serial))
				logs[s] = append(logs[s], a.Log)
				c, err := startCrash(role, a)
				if err != nil {
					fail(err)
					return
				}
				if rng.IntN(5) == 0 {
					// Anywhere: starting, opening (and repairing), running.
					time.Sleep(time.Duration(rng.IntN(15000)) * time.Microsecond)
				} else {
					select {
					case <-c.ready:
						time.Sleep(time.Duration(rng.IntN(3000)) * time.Microsecond)
					case <-time.After(10 * time.Second):
						_ = c.cmd.Process.Signal(syscall.SIGQUIT) // its goroutines, on stderr
						time.Sleep(time.Second)
						_ = c.kill()
						fail(fmt.Errorf("child %d (%s) made no progress in 10 s: hung on a dead process's lock?\n%s", a.Serial, role, ourGoroutines(c.errb.String())))
						return
					}
				}
				if err := c.kill(); err != nil {
					fail(err)
					return
				}
				kills.Add(1)
			}
		}()
	}
	stop := make(chan struct{})
	survDone := make(chan struct{})
	go func() {
		defer close(survDone)
		rng := rand.New(rand.NewPCG(seed, 999))
		for {
			select {
			case <-stop:
				return
			default:
			}
			if err := survivor(rng); err != nil {
				fail(fmt.Errorf("survivor: %w", err))
				return
			}
			progress.Add(1)
			runtime.Gosched()
		}
	}()
	// The watchdog: the survivor must progress (10 s), and so must the
	// kills (20 s; a child's own hang is reported by its slot after 10 s).
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		last, lastKills := progress.Load(), kills.Load()
		since, killsSince := time.Now(), time.Now()
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
			if p := progress.Load(); p != last || failed.Load() {
				last, since = p, time.Now()
			}
			if k := kills.Load(); k != lastKills || failed.Load() {
				lastKills, killsSince = k, time.Now()
			}
			if time.Since(since) > 10*time.Second || time.Since(killsSince) > 20*time.Second {
				buf := make([]byte, 1<<20)
				buf = buf[:runtime.Stack(buf, true)]
				panic(fmt.Sprintf("watchdog: no progress (survivor operations %d, for %v; kills %d, for %v)\n%s",
					last, time.Since(since).Round(time.Second), lastKills, time.Since(killsSince).Round(time.Second), buf))
			}
		}
	}()
	start := time.Now()
	wg.Wait()
	close(stop)
	<-survDone
	<-watchDone
	for _, err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("%d kills in %v, %d survivor operations", kills.Load(), time.Since(start).Round(time.Millisecond), progress.Load())
	return logs
}

// keyedSurvivor is the parent's work during a crash test of a keyed map:
// lookups of random keys and walks of the whole map, checking values.
// Array elements that a writer was killed in the middle of copying are torn
// (see tornAfterKill); torn counts what the survivor saw of them.
func keyedSurvivor(k kind, m *bpfmap.Map, keys uint32, torn *atomic.Int64) func(*rand.Rand) error {
	v := make([]byte, k.fullSize())
	return func(rng *rand.Rand) error {
		for range 32 {
			n := rng.Uint32N(keys)
			err := m.Lookup(k.key(n), v)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("lookup %d: %w", n, err)
			}
			if _, err := k.check(v, n); err != nil {
				if !k.tornAfterKill() {
					return err
				}
				torn.Add(1)
			}
		}
		if k.tornAfterKill() {
			n := 0
			for range m.All() {
				n++
			}
			if n != int(m.MaxEntries()) {
				return fmt.Errorf("array walk yielded %d of %d elements", n, m.MaxEntries())
			}
			return nil
		}
		_, err := k.walk(m, !k.concurrentDupsOK())
		return err
	}
}

// checkResult is what the checker child reports: each key's stamp, and the
// raw bytes of elements that fail their checksum (arrays only).
type checkResult struct {
	Stamps map[uint32]uint64
	Torn   map[uint32][]byte
}

// mixOf reports whether every byte of b is the byte, at its position, of
// one of the values the stamps in cand stand for: what a copy cut short
// by a kill leaves.
func mixOf(b []byte, n uint32, cand []uint64) bool {
	if len(cand) < 2 {
		return false // no update of it was in flight at a kill
	}
	vals := make([][]byte, len(cand))
	for i, s := range cand {
		vals[i] = make([]byte, len(b))
		if s != 0 {
			putValue(vals[i], n, s)
		}
	}
	for p := range b {
		if !slices.ContainsFunc(vals, func(v []byte) bool { return v[p] == b[p] }) {
			return false
		}
	}
	return true
}

// testCrashKeyed is the crash test of a keyed map type.
func testCrashKeyed(t *testing.T, cfg crashConfig) {
	k := cfg.kind
	m, root, pin := newPinned(t, k.spec(cfg.maxEntries))
	keys := uint32(cfg.slots) * cfg.keysPer
	var tornReads atomic.Int64
	logs := crashRun(t, cfg, m, root, pin, keyedSurvivor(k, m, keys, &tornReads))
	md, err := replay(logs, keys)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d acknowledged operations, %d batches in flight at a kill", md.acks, md.inFlight)
	if md.acks < cfg.kills {
		t.Errorf("only %d operations acknowledged in %d children's lives: the test tested little", md.acks, cfg.kills)
	}
	var res checkResult
	start(t, "crashcheck", childArgs{Root: root, Pin: pin, Kind: k.name}).wait(t, 30*time.Second, &res)
	got := res.Stamps
	for n, b := range res.Torn {
		if !mixOf(b, n, md.cand[n]) {
			t.Errorf("element %d is torn (%x) and not what a copy of one of the values %#x cut short by a kill leaves", n, b, md.cand[n])
		}
	}
	if len(res.Torn) > 0 || tornReads.Load() > 0 {
		t.Logf("torn by a kill in the middle of a copy (array.go: Crash safety): %d elements at the end; %d survivor reads", len(res.Torn), tornReads.Load())
	}
	for n := range keys {
		if _, torn := res.Torn[n]; !torn && !slices.Contains(md.cand[n], got[n]) {
			t.Errorf("key %d holds stamp %#x (0: absent); the logs allow only %#x", n, got[n], md.cand[n])
		}
	}
	for n := range got {
		if n >= keys && k.typ != ebpf.Array {
			t.Errorf("key %d was never written", n)
		}
	}
	if k.typ == ebpf.Array {
		if len(got)+len(res.Torn) != int(cfg.maxEntries) {
			t.Errorf("array iteration yielded %d indexes, want %d", len(got), cfg.maxEntries)
		}
	} else {
		checkCapacity(t, k, m)
	}
	checkFreed(t, m, root)
}

// checkFreed unpins and closes m, the last handle of the map anywhere (its
// other holders were killed), and checks that the map is gone: no id, no
// file in the namespace.
func checkFreed(t *testing.T, m *bpfmap.Map, root string) {
	t.Helper()
	if err := m.Unpin(); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if id, err := bpfmap.MapGetNextIDWithOptions(0, bpfmap.MapOptions{Namespace: root}); !errors.Is(err, errENOENT) {
		t.Errorf("MapGetNextID after the last holder closed the map: %d, %v; want ENOENT", id, err)
	}
	if got := objects(t, root); len(got) != 0 {
		t.Errorf("map files left behind by killed processes: %v", got)
	}
}

// checkCapacity deletes every key and fills the map to max_entries: a
// process killed in the middle of an operation must not have leaked an
// element.
func checkCapacity(t *testing.T, k kind, m *bpfmap.Map) {
	t.Helper()
	got, err := k.contents(m)
	if err != nil {
		t.Fatal(err)
	}
	for n := range got {
		if err := m.Delete(k.key(n)); err != nil {
			t.Fatalf("delete %d: %v", n, err)
		}
	}
	if got, err := k.contents(m); err != nil || len(got) != 0 {
		t.Fatalf("after deleting every key: %d keys, %v", len(got), err)
	}
	v := make([]byte, k.fullSize())
	max := m.MaxEntries()
	if k.typ == ebpf.LRUHash {
		// An LRU map evicts instead of failing; at least max_entries
		// minus what per-CPU free lists may hold must fit.
		for n := range 2 * max {
			k.put(v, n, stampOf(1<<20, uint64(n)+1))
			if err := m.Update(k.key(n), v, ebpf.UpdateNoExist); err != nil {
				t.Fatalf("LRU update %d: %v", n, err)
			}
		}
		got, err := k.contents(m)
		if err != nil {
			t.Fatal(err)
		}
		if cpus, _ := ebpf.PossibleCPU(); len(got) > int(max) || len(got) < int(max)-128*cpus {
			t.Errorf("a full LRU map holds %d keys of max_entries %d", len(got), max)
		}
		return
	}
	for n := range max {
		k.put(v, n, stampOf(1<<20, uint64(n)+1))
		if err := m.Update(k.key(n), v, ebpf.UpdateNoExist); err != nil {
			t.Fatalf("capacity leaked: insert %d of max_entries %d after deleting everything: %v", n+1, max, err)
		}
	}
	k.put(v, max, 1)
	full := error(errE2BIG)
	if k.typ == ebpf.LPMTrie {
		full = errENOSPC // the trie's own errno for a full map
	}
	if err := m.Update(k.key(max), v, ebpf.UpdateNoExist); !errors.Is(err, full) {
		t.Errorf("insert beyond max_entries %d: %v, want %v", max, err, full)
	}
	if got, err := k.contents(m); err != nil || len(got) != int(max) {
		t.Errorf("a full map iterates %d keys (%v), want %d", len(got), err, max)
	}
}

func TestCrashHash(t *testing.T) {
	testCrashKeyed(t, crashConfig{kind: kinds["hash"], maxEntries: 128, slots: 3, keysPer: 32, kills: killsPerType()})
}

func TestCrashPerCPUHash(t *testing.T) {
	testCrashKeyed(t, crashConfig{kind: kinds["percpu"], maxEntries: 128, slots: 3, keysPer: 32, kills: killsPerType()})
}

func TestCrashArray(t *testing.T) {
	testCrashKeyed(t, crashConfig{kind: kinds["array"], maxEntries: 96, slots: 3, keysPer: 32, kills: killsPerType()})
}

func TestCrashLRUHash(t *testing.T) {
	testCrashKeyed(t, crashConfig{kind: kinds["lru"], maxEntries: 1024, slots: 3, keysPer: 32, kills: killsPerType()})
}

func TestCrashLPM(t *testing.T) {
	testCrashKeyed(t, crashConfig{kind: kinds["lpm"], maxEntries: 128, slots: 3, keysPer: 32, kills: killsPerType()})
}

// crashProducerRole pushes tagged values in logged batches until killed.
func crashProducerRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	l, err := openLog(a.Log)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(a.Seed, uint64(a.Serial)))
	v := make([]byte, 16)
	var batch []rec
	i := uint64(0)
	for b := 0; ; b++ {
		batch = batch[:0]
		for range 1 + rng.IntN(32) {
			i++
			batch = append(batch, rec{op: opPush, stamp: stampOf(a.Serial, i)})
		}
		if err := l.put(phIntent, batch); err != nil {
			return nil, err
		}
		full := false
		for j := range batch {
			putQueueValue(v, batch[j].stamp)
			err := m.Push(v)
			if errors.Is(err, errE2BIG) {
				batch[j].op, full = opPushFull, true
			} else if err != nil {
				return nil, fmt.Errorf("push: %w", err)
			}
		}
		if err := l.put(phAck, batch); err != nil {
			return nil, err
		}
		if full {
			time.Sleep(50 * time.Microsecond)
		}
		if b == 0 {
			signalProgress()
		}
	}
}

// crashConsumerRole pops values in logged batches until killed.
func crashConsumerRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	l, err := openLog(a.Log)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(a.Seed, uint64(a.Serial)))
	v := make([]byte, 16)
	var batch []rec
	for b := 0; ; b++ {
		batch = batch[:0]
		for range 1 + rng.IntN(32) {
			batch = append(batch, rec{op: opPop})
		}
		if err := l.put(phIntent, batch); err != nil {
			return nil, err
		}
		empty := false
		for j := range batch {
			err := m.Pop(v)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				batch[j].op, empty = opPopEmpty, true
			} else if err != nil {
				return nil, fmt.Errorf("pop: %w", err)
			} else if batch[j].stamp, err = checkQueueValue(v); err != nil {
				return nil, err
			}
		}
		if err := l.put(phAck, batch); err != nil {
			return nil, err
		}
		if empty {
			time.Sleep(50 * time.Microsecond)
		}
		if b == 0 {
			signalProgress()
		}
	}
}

// drainRole opens the queue after the kills and pops it empty.
func drainRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	v := make([]byte, 16)
	var out []uint64
	for {
		err := m.Pop(v)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		s, err := checkQueueValue(v)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
		if len(out) > int(m.MaxEntries()) {
			return nil, fmt.Errorf("popped %d values from a queue of max_entries %d", len(out), m.MaxEntries())
		}
	}
}

// replayQueue builds the model of a queue or stack from the workers' logs.
func replayQueue(logs [][]string) (*model, error) {
	md := &model{pushed: map[uint64]bool{}, inFlPush: map[uint64]bool{}}
	for _, slot := range logs {
		gs, err := readLogs(slot)
		if err != nil {
			return nil, err
		}
		path := slot[0]
		var pending []rec
		flight := func() {
			for _, r := range pending {
				if r.op == opPush {
					md.inFlPush[r.stamp] = true
				} else {
					md.popsLost++ // its value may be gone with the child
				}
			}
			if pending != nil {
				md.inFlight++
			}
		}
		for i, g := range gs {
			if g.phase == phIntent {
				flight()
				pending = g.rs
				continue
			}
			if len(pending) != len(g.rs) {
				return nil, fmt.Errorf("%s: group %d acknowledges operations that were not begun", path, i)
			}
			for j, r := range g.rs {
				if (pending[j].op == opPush) != (r.op == opPush || r.op == opPushFull) || r.op == opPushFull && r.stamp != pending[j].stamp {
					return nil, fmt.Errorf("%s: group %d acknowledges operations that were not begun", path, i)
				}
				switch r.op {
				case opPush:
					md.pushed[r.stamp] = true
				case opPop:
					md.popped = append(md.popped, r.stamp)
					md.pops++
				}
				md.acks++
			}
			pending = nil
		}
		flight()
	}
	return md, nil
}

func TestCrashQueue(t *testing.T) { testCrashKeyless(t, ebpf.Queue) }

func TestCrashStack(t *testing.T) { testCrashKeyless(t, ebpf.Stack) }

// testCrashKeyless is the crash test of a queue or stack: producers and
// consumers killed at random moments.
func testCrashKeyless(t *testing.T, typ ebpf.MapType) {
	cfg := crashConfig{kind: kind{name: "keyless"}, maxEntries: 64, slots: 4, kills: killsPerType(), queue: true}
	m, root, pin := newPinned(t, &ebpf.MapSpec{Name: "crash_keyless", Type: typ, ValueSize: 16, MaxEntries: cfg.maxEntries})
	v := make([]byte, 16)
	logs := crashRun(t, cfg, m, root, pin, func(*rand.Rand) error {
		for range 32 {
			err := m.Peek(v)
			if errors.Is(err, ebpf.ErrKeyNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("peek: %w", err)
			}
			if _, err := checkQueueValue(v); err != nil {
				return fmt.Errorf("peek: %w", err)
			}
		}
		return nil
	})
	md, err := replayQueue(logs)
	if err != nil {
		t.Fatal(err)
	}
	var drained []uint64
	start(t, "drain", childArgs{Root: root, Pin: pin}).wait(t, 30*time.Second, &drained)
	t.Logf("%d pushes and %d pops acknowledged, %d batches in flight at a kill (%d pops), %d left in the map",
		len(md.pushed), md.pops, md.inFlight, md.popsLost, len(drained))
	if len(md.pushed) < cfg.kills || md.pops < cfg.kills/2 {
		t.Errorf("too few operations acknowledged to test anything")
	}
	seen := map[uint64]bool{}
	for _, s := range append(slices.Clone(md.popped), drained...) {
		if seen[s] {
			t.Errorf("value %#x popped twice", s)
		}
		seen[s] = true
		if !md.pushed[s] && !md.inFlPush[s] {
			t.Errorf("value %#x popped but never pushed", s)
		}
	}
	// What is left comes out in each producer's order (a queue) or in
	// the reverse order (a stack).
	last := map[uint64]uint64{}
	for _, s := range drained {
		if l, ok := last[s>>32]; ok && (typ == ebpf.Queue) != (s > l) {
			t.Errorf("%v: producer %d's value %d left after its value %d", typ, s>>32, s&0xffffffff, l&0xffffffff)
		}
		last[s>>32] = s
	}
	lost := 0
	for s := range md.pushed {
		if !seen[s] {
			lost++
		}
	}
	if lost > md.popsLost {
		t.Errorf("%d acknowledged pushes never popped; only %d pops were in flight at a kill", lost, md.popsLost)
	}
	// Capacity: the map takes exactly max_entries again, in order.
	for i := range cfg.maxEntries {
		putQueueValue(v, uint64(i)+1)
		if err := m.Push(v); err != nil {
			t.Fatalf("capacity leaked: push %d of max_entries %d into the drained map: %v", i+1, cfg.maxEntries, err)
		}
	}
	if err := m.Push(v); !errors.Is(err, errE2BIG) {
		t.Errorf("push into a full map: %v, want E2BIG", err)
	}
	for i := range cfg.maxEntries {
		if err := m.Pop(v); err != nil {
			t.Fatalf("pop %d: %v", i, err)
		}
		want := uint64(i) + 1
		if typ == ebpf.Stack {
			want = uint64(cfg.maxEntries - i)
		}
		if s, err := checkQueueValue(v); err != nil || s != want {
			t.Fatalf("pop %d: %#x, %v; want %#x", i, s, err, want)
		}
	}
	checkFreed(t, m, root)
}

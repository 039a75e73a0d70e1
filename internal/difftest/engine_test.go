//go:build linux

package difftest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// histLen is how many previous operations a mismatch report shows.
const histLen = 12

// engine applies the same random operations to a kernel map and a bpfmap
// map of the same attr and compares every result.
//
// In exact mode (arrays and BPF_F_ZERO_SEED hash maps) everything is compared
// byte for byte, including iteration order and batch pages. Hash maps with a
// random seed iterate in a seed-dependent order, so only order-independent
// results are compared there: errnos that cannot depend on the order, the
// sets of keys and values seen by complete walks and drains, and lookups.
type engine struct {
	tb     testing.TB
	a      kbpf.CreateAttr
	k, b   target
	r      src
	ks     int    // key size
	sys    int    // value bytes per element command
	hash   bool   // hash family (bucket batch cursors)
	exact  bool   // order-dependent results are comparable
	nb     uint32 // hash buckets
	label  string // how to reproduce
	ops    int    // compared commands of the random sequence
	checks int    // compared commands of state checks (walks and lookups)
	hist   [histLen]func() string
	nhist  int
	failed bool // a mismatch was reported (or the run was abandoned): stop
	// abandoned: stopped because of a kernel-side transient failure.
	abandoned bool
	cursor    []byte // the kernel's last out_batch, a candidate in_batch
	op        string // name of the current operation

	// Keyless types (QUEUE, STACK, BLOOM_FILTER; see keyless_test.go).
	keyless bool
	bloom   bool
	frozen  bool            // a FREEZE succeeded
	pushed  map[string]bool // bloom: values pushed (they must peek present)
}

// reportedSoft holds the classes of output-only mismatches already reported
// by each top-level test of this process (see engine.check).
var reportedSoft sync.Map

// ignoreFaultOutput (BPFMAP_DIFF_IGNORE_EFAULT_OUTPUT=1) logs instead of
// failing on those output-only differences, so that a developer can hunt
// for other mismatches (for instance with -fuzz) before they are fixed.
var ignoreFaultOutput = os.Getenv("BPFMAP_DIFF_IGNORE_EFAULT_OUTPUT") == "1"

// With BPFMAP_DIFF_STATS=1 the tests log how often each operation ended
// with each errno (kernel side), to judge the coverage of the random mix.
var (
	statsOn = os.Getenv("BPFMAP_DIFF_STATS") == "1"
	stats   sync.Map // "OP ERRNO" → *atomic.Int64
)

// logStats logs the collected statistics.
func logStats(tb testing.TB) {
	if !statsOn {
		return
	}
	var lines []string
	stats.Range(func(k, v any) bool {
		lines = append(lines, fmt.Sprintf("%10d %s", v.(*atomic.Int64).Load(), k))
		return true
	})
	slices.Sort(lines)
	tb.Logf("operation results (kernel errno):\n%s", strings.Join(lines, "\n"))
}

// newEngine creates both maps; it returns nil (after reporting) when bpfmap
// disagrees about the creation itself.
func newEngine(tb testing.TB, a kbpf.CreateAttr, r src, label string) *engine {
	tb.Helper()
	k, ke := createKernel(&a)
	b, be, err := createBpfmap(&a)
	if ke != be {
		tb.Errorf("MISMATCH %s\n\tBPF_MAP_CREATE %s: kernel %s, bpfmap %s (%v)", label, attrString(&a), errName(ke), errName(be), err)
	}
	if ke != 0 || be != 0 {
		if ke == 0 {
			k.close()
		}
		if be == 0 {
			b.close()
		}
		if ke == be {
			tb.Fatalf("BPF_MAP_CREATE %s failed on both sides: %s (test bug)", attrString(&a), errName(ke))
		}
		return nil
	}
	e := &engine{
		tb: tb, a: a, k: k, b: b, r: r, label: label,
		ks: int(a.KeySize), sys: sysValueSize(&a), hash: isHash(a.MapType),
	}
	e.exact = !e.hash || a.MapFlags&fZeroSeed != 0
	if isKeyless(a.MapType) {
		e.keyless, e.bloom = true, a.MapType == tBloom
		e.exact = !e.bloom || a.MapFlags&fZeroSeed != 0
		e.pushed = map[string]bool{}
	}
	if e.hash {
		e.nb = 1
		for e.nb < effectiveMax(&a) {
			e.nb <<= 1
		}
	}
	return e
}

// effectiveMax is max_entries after BPF_F_NO_COMMON_LRU's rounding up to a
// multiple of the possible CPUs.
func effectiveMax(a *kbpf.CreateAttr) uint32 {
	if !isLRU(a.MapType) || a.MapFlags&fNoCommonLRU == 0 {
		return a.MaxEntries
	}
	n := uint64(ncpu())
	return uint32((uint64(a.MaxEntries) + n - 1) / n * n)
}

func (e *engine) close() {
	e.k.close()
	e.b.close()
}

// run executes n random operations (fewer if the fuzz input ends), freezing
// the map at a random point in a quarter of the runs and comparing the whole
// state every few operations.
func (e *engine) run(n int) {
	freezeAt := -1
	if e.r.intn(4) == 0 {
		freezeAt = n/2 + e.r.intn(n/2+1)
	}
	nextCheck := 4 + e.r.intn(24)
	for i := 0; i < n && !e.failed && !e.r.done(); i++ {
		if i == freezeAt {
			e.opFreeze()
		}
		if e.keyless {
			e.stepKeyless()
		} else {
			e.step()
		}
		if e.exact && i >= nextCheck && !e.failed {
			e.compareState()
			nextCheck = i + 4 + e.r.intn(24)
		}
	}
	if !e.failed {
		e.compareState()
	}
}

func (e *engine) step() {
	switch w := e.r.intn(100); {
	case w < 17:
		e.opLookup()
	case w < 42:
		e.opUpdate()
	case w < 52:
		e.opDelete()
	case w < 64:
		e.opNext()
	case w < 72:
		e.opLookupAndDelete()
	case w < 79:
		e.opLookupBatch(cmdLookupBatch)
	case w < 84:
		e.opLookupBatch(cmdLookupAndDeleteBatch)
	case w < 92:
		e.opUpdateBatch()
	case w < 98:
		e.opDeleteBatch()
	default:
		e.compareState()
	}
}

// ---- reporting ----

type cmpBuf struct {
	name string
	k, b []byte
}

// record notes an executed operation for the report of a later mismatch.
func (e *engine) record(op string, desc func() string) {
	e.hist[e.nhist%histLen] = desc
	e.op = op
	e.nhist++
	e.ops++
}

func (e *engine) fail(format string, args ...any) {
	if e.failed {
		return
	}
	e.failed = true
	e.tb.Error(e.report(format, args...))
}

// report renders a mismatch with the map, the operation and its history.
func (e *engine) report(format string, args ...any) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "MISMATCH (%s)\n\tmap: %s (%d possible CPUs, %d value bytes per command)\n", e.label, attrString(&e.a), ncpu(), e.sys)
	if e.nhist > 0 {
		fmt.Fprintf(&sb, "\top #%d: %s\n", e.nhist, e.hist[(e.nhist-1)%histLen]())
	}
	fmt.Fprintf(&sb, "\t"+format+"\n", args...)
	if e.nhist > 1 {
		sb.WriteString("\tprevious operations (oldest first; output buffers show the kernel's):\n")
		first := max(0, e.nhist-histLen)
		for i := first; i < e.nhist-1; i++ {
			fmt.Fprintf(&sb, "\t\t#%d: %s\n", i+1, e.hist[i%histLen]())
		}
	}
	return sb.String()
}

// kernelTransient ends the run without a failure when the kernel failed
// with ENOMEM: under heavy map churn (fuzzing) the kernel's BPF memory
// allocator can transiently fail a NO_PREALLOC element allocation. bpfmap
// has no such failure, and the two maps differ from then on.
func (e *engine) kernelTransient(ke syscall.Errno) bool {
	if ke != syscall.ENOMEM {
		return false
	}
	e.failed, e.abandoned = true, true
	e.tb.Logf("kernel returned ENOMEM (transient allocation failure) in op #%d of %s; run abandoned (%s)", e.nhist, attrString(&e.a), e.label)
	return true
}

// check compares errnos, then the named buffers.
func (e *engine) check(ke, be syscall.Errno, bufs ...cmpBuf) bool {
	if e.failed {
		return false
	}
	if statsOn {
		v, _ := stats.LoadOrStore(e.op+" "+errName(ke), new(atomic.Int64))
		v.(*atomic.Int64).Add(1)
	}
	if ke != be {
		if e.kernelTransient(ke) {
			return false
		}
		e.fail("result: kernel %s, bpfmap %s", errName(ke), errName(be))
		return false
	}
	for _, c := range bufs {
		if d := diffBytes(c.k, c.b); d != "" {
			if ke == syscall.EFAULT {
				// Both failed, and both maps are still alike; only what was
				// written to user memory before the fault differs. Report
				// each such class once and go on, so that it does not hide
				// other mismatches.
				top, _, _ := strings.Cut(e.tb.Name(), "/")
				class := top + ": " + e.op + " " + c.name
				if _, dup := reportedSoft.LoadOrStore(class, true); !dup {
					msg := e.report("both returned EFAULT but %s differs (reported once per test and operation: the run continues): %s", c.name, d)
					if ignoreFaultOutput {
						e.tb.Log("ignored (BPFMAP_DIFF_IGNORE_EFAULT_OUTPUT=1): " + msg)
					} else {
						e.tb.Error(msg)
					}
				}
				continue
			}
			e.fail("both returned %s but %s differs: %s", errName(ke), c.name, d)
			return false
		}
	}
	return true
}

func bufLen(b []byte) string {
	if b == nil {
		return "NULL"
	}
	return fmt.Sprintf("[%d]", len(b))
}

// ---- argument choices ----

// key returns a key from a small pool (so that keys repeat), sometimes a
// random one. Array keys are mostly in range, sometimes just past it.
func (e *engine) key() []byte {
	k := make([]byte, e.ks)
	if e.ks == 0 {
		return k // a non-NULL pointer to nothing
	}
	if !e.hash {
		var idx uint32
		switch e.r.intn(24) {
		case 0:
			idx = uint32(e.r.u64())
		case 1:
			idx = 0xffffffff
		case 2:
			idx = e.a.MaxEntries
		default:
			idx = uint32(e.r.intn(int(e.a.MaxEntries)))
		}
		binary.NativeEndian.PutUint32(k, idx)
		return k
	}
	if e.r.intn(16) == 0 {
		e.r.fill(k)
		return k
	}
	id := e.r.intn(int(e.a.MaxEntries)*2 + 3)
	for i := range k {
		k[i] = byte(i*37 + 1)
	}
	for i := 0; i < len(k) && i < 4; i++ {
		k[i] = byte(id >> (8 * i))
	}
	return k
}

// keyArg is a key, or (rarely) NULL.
func (e *engine) keyArg() []byte {
	if e.keyless {
		return e.keylessKey()
	}
	if e.r.intn(50) == 0 {
		return nil
	}
	return e.key()
}

// valueArg is a random value, or (rarely) NULL.
func (e *engine) valueArg() []byte {
	if e.r.intn(50) == 0 {
		return nil
	}
	v := make([]byte, e.sys)
	e.r.fill(v)
	return v
}

// outBufs returns two identical pre-filled output buffers of n bytes, or two
// NULLs with probability 1/nilOdds.
func (e *engine) outBufs(n int, nilOdds int) (k, b []byte) {
	if nilOdds > 0 && e.r.intn(nilOdds) == 0 {
		return nil, nil
	}
	k = make([]byte, n)
	for i := range k {
		k[i] = 0xe0 | byte(i&15)
	}
	return k, bytes.Clone(k)
}

// pick returns common[...] most of the time, else rare[...].
func (e *engine) pick(rareOdds int, common, rare []uint64) uint64 {
	if len(rare) > 0 && e.r.intn(rareOdds) == 0 {
		return rare[e.r.intn(len(rare))]
	}
	return common[e.r.intn(len(common))]
}

var (
	lookupFlagsRare = []uint64{fLock, 1, 8}
	updateFlags     = []uint64{updAny, updAny, updAny, updNoExist, updNoExist, updExist, updExist}
	updateFlagsRare = []uint64{3, fLock, fLock | updNoExist, fLock | updExist, 8, 16, 1 << 32}
	ladFlagsRare    = []uint64{fLock, 1}
	elemFlagsRare   = []uint64{1, 2, fLock}
	batchFlagsRare  = []uint64{1, 2}
	zero            = []uint64{0}
)

// count picks a batch count: 0, 1, small, about max_entries, or huge (huge
// counts are only used with NULL keys and values, so that no real buffer
// can be overrun).
func (e *engine) count() (n uint32, huge bool) {
	switch w := e.r.intn(40); {
	case w == 0:
		return 0, false
	case w < 8:
		return 1, false
	case w < 22:
		return uint32(2 + e.r.intn(7)), false
	case w < 39:
		return e.a.MaxEntries + uint32(e.r.intn(9)), false
	default:
		if e.r.intn(2) == 0 {
			return 1 << 20, true
		}
		return 0xffffffff, true
	}
}

// cursorArg picks an in_batch: NULL, the last out_batch, out of range, or a
// random position.
func (e *engine) cursorArg() []byte {
	switch w := e.r.intn(10); {
	case w < 4:
		return nil
	case w < 8:
		if e.cursor != nil {
			return bytes.Clone(e.cursor)
		}
		return nil
	case w < 9:
		if e.r.intn(3) == 0 {
			return u32(0xffffffff)
		}
		if e.hash {
			return u32(e.nb + uint32(e.r.intn(3)))
		}
		return u32(e.a.MaxEntries + uint32(e.r.intn(3)))
	default:
		if e.hash {
			return u32(uint32(e.r.intn(int(e.nb))))
		}
		return e.key()
	}
}

// ---- element operations ----

// aliased returns, for each side, one buffer that holds key at its start,
// and a key and a value slice that both begin at that buffer: the kernel
// reads the key before it writes the value, so the key must not be
// clobbered by the value.
func (e *engine) aliased(key []byte) (kkey, kval, kbuf, bkey, bval, bbuf []byte) {
	kbuf, bbuf = e.outBufs(max(e.ks, e.sys), 0)
	copy(kbuf, key)
	copy(bbuf, key)
	return kbuf[:e.ks], kbuf[:e.sys], kbuf, bbuf[:e.ks], bbuf[:e.sys], bbuf
}

func (e *engine) opLookup() {
	key := e.keyArg()
	flags := e.pick(12, zero, lookupFlagsRare)
	if key != nil && e.r.intn(10) == 0 {
		kkey, kval, kbuf, bkey, bval, bbuf := e.aliased(key)
		e.record("LOOKUP", func() string {
			return fmt.Sprintf("LOOKUP key=%s value=[%d] at the same address as key, flags=%#x", hx(key), len(kval), flags)
		})
		e.check(e.k.lookup(kkey, kval, flags), e.b.lookup(bkey, bval, flags), cmpBuf{"key/value buffer", kbuf, bbuf})
		return
	}
	kv, bv := e.outBufs(e.sys, 40)
	e.record("LOOKUP", func() string {
		return fmt.Sprintf("LOOKUP key=%s value=%s flags=%#x", hx(key), bufLen(kv), flags)
	})
	e.check(e.k.lookup(key, kv, flags), e.b.lookup(key, bv, flags), cmpBuf{"value", kv, bv})
}

func (e *engine) opUpdate() {
	key := e.keyArg()
	val := e.valueArg()
	flags := e.pick(12, updateFlags, updateFlagsRare)
	kval, bval := bytes.Clone(val), bytes.Clone(val)
	e.record("UPDATE", func() string {
		return fmt.Sprintf("UPDATE key=%s value=%s flags=%#x", hx(key), hx(val), flags)
	})
	e.check(e.k.update(key, kval, flags), e.b.update(key, bval, flags), cmpBuf{"value (input)", kval, bval})
}

func (e *engine) opDelete() {
	key := e.keyArg()
	e.record("DELETE", func() string { return fmt.Sprintf("DELETE key=%s", hx(key)) })
	e.check(e.k.del(key), e.b.del(key))
}

func (e *engine) opLookupAndDelete() {
	key := e.keyArg()
	flags := e.pick(12, zero, ladFlagsRare)
	if key != nil && e.r.intn(10) == 0 {
		kkey, kval, kbuf, bkey, bval, bbuf := e.aliased(key)
		e.record("LOOKUP_AND_DELETE", func() string {
			return fmt.Sprintf("LOOKUP_AND_DELETE key=%s value=[%d] at the same address as key, flags=%#x", hx(key), len(kval), flags)
		})
		e.check(e.k.lookupAndDelete(kkey, kval, flags), e.b.lookupAndDelete(bkey, bval, flags), cmpBuf{"key/value buffer", kbuf, bbuf})
		return
	}
	kv, bv := e.outBufs(e.sys, 30)
	e.record("LOOKUP_AND_DELETE", func() string {
		return fmt.Sprintf("LOOKUP_AND_DELETE key=%s value=%s flags=%#x", hx(key), bufLen(kv), flags)
	})
	e.check(e.k.lookupAndDelete(key, kv, flags), e.b.lookupAndDelete(key, bv, flags), cmpBuf{"value", kv, bv})
}

func (e *engine) opFreeze() {
	e.record("FREEZE", func() string { return "FREEZE" })
	ke, be := e.k.freeze(), e.b.freeze()
	if !e.check(ke, be) {
		return
	}
	e.frozen = e.frozen || ke == 0
	if e.r.intn(3) == 0 {
		e.record("FREEZE", func() string { return "FREEZE (again)" })
		e.check(e.k.freeze(), e.b.freeze())
	}
}

func (e *engine) opNext() {
	var key []byte
	switch w := e.r.intn(8); {
	case w < 2:
	case w < 3:
		key = make([]byte, e.ks)
		e.r.fill(key)
	default:
		key = e.key()
	}
	// Random seed: only "absent or NULL key → first key" has an
	// order-independent errno, so find out first whether key is present.
	present := false
	if key != nil && !e.exact {
		kv, bv := make([]byte, e.sys), make([]byte, e.sys)
		kl, bl := e.k.lookup(key, kv, 0), e.b.lookup(key, bv, 0)
		e.record("LOOKUP", func() string { return fmt.Sprintf("LOOKUP key=%s (is the next GET_NEXT_KEY's key present?)", hx(key)) })
		if !e.check(kl, bl, cmpBuf{"value", kv, bv}) {
			return
		}
		present = kl == 0
	}
	if e.exact && key != nil && e.r.intn(8) == 0 {
		// In place: next_key is the key's own buffer.
		kn, bn := bytes.Clone(key), bytes.Clone(key)
		ke, be := e.k.next(kn, kn), e.b.next(bn, bn)
		e.record("GET_NEXT_KEY", func() string {
			return fmt.Sprintf("GET_NEXT_KEY key=%s next_key=the key's own buffer → kernel %s", hx(key), hx(kn))
		})
		e.check(ke, be, cmpBuf{"key/next_key buffer", kn, bn})
		return
	}
	kn, bn := e.outBufs(e.ks, 40)
	ke, be := e.k.next(key, kn), e.b.next(key, bn)
	e.record("GET_NEXT_KEY", func() string {
		return fmt.Sprintf("GET_NEXT_KEY key=%s next_key=%s → kernel %s", hx(key), bufLen(kn), hx(kn))
	})
	if e.exact {
		e.check(ke, be, cmpBuf{"next_key", kn, bn})
		return
	}
	// For a present key, whether it is the last one depends on the seed:
	// "there is a next key" (0, or EFAULT with a NULL next_key) and ENOENT
	// are both acceptable on either side. Any key returned must be in the
	// map.
	hasNext := syscall.Errno(0)
	if kn == nil {
		hasNext = syscall.EFAULT
	}
	okOrEnd := func(x syscall.Errno) bool { return x == hasNext || x == syscall.ENOENT }
	if !present || !okOrEnd(ke) || !okOrEnd(be) {
		if !e.check(ke, be) {
			return
		}
	}
	if be == 0 && bn != nil {
		v := make([]byte, e.sys)
		if l := e.b.lookup(bn, v, 0); l != 0 {
			e.fail("bpfmap GET_NEXT_KEY returned key %s, which its own LOOKUP does not find (%s)", hx(bn), errName(l))
		}
	}
}

// ---- batch operations ----

func (e *engine) cursorLen() int {
	if e.hash {
		return 4
	}
	return e.ks
}

func (e *engine) opLookupBatch(cmd uint32) {
	if !e.exact && !e.keyless {
		e.opLookupBatchUnordered(cmd)
		return
	}
	count, huge := e.count()
	in := e.cursorArg()
	elemFlags := e.pick(10, zero, elemFlagsRare)
	flags := e.pick(10, zero, batchFlagsRare)
	e.lookupBatchExact(cmd, in, count, huge, elemFlags, flags)
}

// lookupBatchExact runs one (lookup or lookup-and-delete) batch call on
// both sides and compares the errno, count and every output byte.
func (e *engine) lookupBatchExact(cmd uint32, in []byte, count uint32, huge bool, elemFlags, flags uint64) {
	kout, bout := e.outBufs(e.cursorLen(), 30)
	var kk, bk, kv, bv []byte
	if !huge {
		kk, bk = e.outBufs(int(count)*e.ks, 30)
		kv, bv = e.outBufs(int(count)*e.sys, 30)
	}
	ka := &batchArgs{in: bytes.Clone(in), out: kout, keys: kk, values: kv, count: count, elemFlags: elemFlags, flags: flags}
	ba := &batchArgs{in: bytes.Clone(in), out: bout, keys: bk, values: bv, count: count, elemFlags: elemFlags, flags: flags}
	if in != nil && len(in) == e.cursorLen() && e.r.intn(6) == 0 {
		// One cursor buffer for in_batch and out_batch, as loops do.
		ka.out, ba.out = ka.in, ba.in
		kout, bout = ka.in, ba.in
	}
	kc, ke := e.k.batch(cmd, ka)
	bc, be := e.b.batch(cmd, ba)
	e.record(batchName(cmd), func() string {
		return fmt.Sprintf("%s in_batch=%s out_batch=%s keys=%s values=%s count=%d elem_flags=%#x flags=%#x → kernel %s count=%d out_batch=%s keys=%s",
			batchName(cmd), hx(in), bufLen(kout), bufLen(kk), bufLen(kv), count, elemFlags, flags, errName(ke), kc, hx(kout), hx(kk))
	})
	if ke != be || kc != bc {
		if !e.kernelTransient(ke) {
			e.fail("result: kernel %s count=%d, bpfmap %s count=%d", errName(ke), kc, errName(be), bc)
		}
		return
	}
	if !e.check(ke, be, cmpBuf{"out_batch", kout, bout}, cmpBuf{"in_batch (input)", ka.in, ba.in},
		cmpBuf{"keys", kk, bk}, cmpBuf{"values", kv, bv}) {
		return
	}
	if (ke == 0 || ke == syscall.ENOENT) && kout != nil && (e.hash || kc > 0) {
		e.cursor = bytes.Clone(kout)
	}
}

// opLookupBatchUnordered is the random-seed variant: calls whose result
// cannot depend on the order are compared exactly; otherwise a complete
// paged walk (lookup) or a complete drain (lookup-and-delete) is compared as
// a set of (key, value) pairs.
func (e *engine) opLookupBatchUnordered(cmd uint32) {
	if e.r.intn(6) == 0 {
		// Order-independent failures and no-ops.
		count := uint32(e.r.intn(int(e.a.MaxEntries) + 2))
		var in []byte
		var elemFlags, flags uint64
		switch e.r.intn(4) {
		case 0:
			count = 0
		case 1:
			elemFlags = elemFlagsRare[e.r.intn(len(elemFlagsRare))]
		case 2:
			flags = batchFlagsRare[e.r.intn(len(batchFlagsRare))]
		default:
			in = u32(e.nb + uint32(e.r.intn(3)))
		}
		e.lookupBatchExact(cmd, in, count, false, elemFlags, flags)
		return
	}
	if cmd == cmdLookupBatch {
		page := uint32(1 + e.r.intn(8))
		if e.r.intn(3) == 0 {
			page = e.a.MaxEntries
		}
		kset, ke, kn := e.pagedWalk(e.k, page)
		bset, be, _ := e.pagedWalk(e.b, page)
		e.record("LOOKUP_BATCH", func() string {
			return fmt.Sprintf("LOOKUP_BATCH paged walk from NULL, count=%d per page (doubled on ENOSPC) → kernel %s after %d calls, %d elements",
				page, errName(ke), kn, len(kset))
		})
		if !e.check(ke, be) {
			return
		}
		e.comparePairSets("LOOKUP_BATCH walk", kset, bset)
		return
	}
	// A drain: count ≥ max_entries returns (and deletes) every element.
	count := e.a.MaxEntries + uint32(e.r.intn(9))
	kout, bout := e.outBufs(4, 10)
	kk, bk := e.outBufs(int(count)*e.ks, 0)
	kv, bv := e.outBufs(int(count)*e.sys, 0)
	kc, ke := e.k.batch(cmd, &batchArgs{out: kout, keys: kk, values: kv, count: count})
	bc, be := e.b.batch(cmd, &batchArgs{out: bout, keys: bk, values: bv, count: count})
	e.record("LOOKUP_AND_DELETE_BATCH", func() string {
		return fmt.Sprintf("LOOKUP_AND_DELETE_BATCH in_batch=NULL out_batch=%s count=%d (drain) → kernel %s count=%d",
			bufLen(kout), count, errName(ke), kc)
	})
	if ke != be || kc != bc {
		if !e.kernelTransient(ke) {
			e.fail("result: kernel %s count=%d, bpfmap %s count=%d", errName(ke), kc, errName(be), bc)
		}
		return
	}
	if !e.check(ke, be, cmpBuf{"out_batch", kout, bout}) {
		return
	}
	if ke == 0 || ke == syscall.ENOENT {
		e.comparePairSets("LOOKUP_AND_DELETE_BATCH drain", e.pairs(kk, kv, kc), e.pairs(bk, bv, bc))
	}
}

// pagedWalk reads the whole map with LOOKUP_BATCH pages on one side.
func (e *engine) pagedWalk(t target, page uint32) (set []string, final syscall.Errno, calls int) {
	var in []byte
	for calls = 1; calls <= 4*int(e.nb)+8; calls++ {
		keys := make([]byte, int(page)*e.ks)
		vals := make([]byte, int(page)*e.sys)
		out := make([]byte, 4)
		c, err := t.batch(cmdLookupBatch, &batchArgs{in: in, out: out, keys: keys, values: vals, count: page})
		set = append(set, e.pairs(keys, vals, c)...)
		if err == syscall.ENOSPC {
			page *= 2
			continue
		}
		if err != 0 {
			return set, err, calls
		}
		in = out
	}
	return set, syscall.Errno(0xdead), calls
}

// pairs renders count (key, value) pairs as sortable strings.
func (e *engine) pairs(keys, vals []byte, count uint32) []string {
	var s []string
	for i := 0; i < int(count); i++ {
		if (i+1)*e.ks > len(keys) || (i+1)*e.sys > len(vals) {
			s = append(s, "count exceeds buffers")
			break
		}
		s = append(s, hx(keys[i*e.ks:(i+1)*e.ks])+"="+hex8(vals[i*e.sys:(i+1)*e.sys]))
	}
	return s
}

func hex8(b []byte) string { return fmt.Sprintf("%x", b) }

func (e *engine) comparePairSets(what string, k, b []string) {
	k, b = slices.Clone(k), slices.Clone(b)
	slices.Sort(k)
	slices.Sort(b)
	if slices.Equal(k, b) {
		return
	}
	var onlyK, onlyB []string
	for _, x := range k {
		if _, ok := slices.BinarySearch(b, x); !ok {
			onlyK = append(onlyK, x)
		}
	}
	for _, x := range b {
		if _, ok := slices.BinarySearch(k, x); !ok {
			onlyB = append(onlyB, x)
		}
	}
	e.fail("%s: kernel returned %d pairs, bpfmap %d (as sets, key=value)\n\t\tonly kernel: %v\n\t\tonly bpfmap: %v",
		what, len(k), len(b), onlyK, onlyB)
}

func (e *engine) opUpdateBatch() {
	count, huge := e.count()
	var keys, vals []byte
	if !huge {
		for i := uint32(0); i < count; i++ {
			keys = append(keys, e.key()...)
		}
		vals = make([]byte, int(count)*e.sys)
		e.r.fill(vals)
		if keys == nil {
			keys = []byte{}
		}
		if e.r.intn(30) == 0 {
			keys = nil
		}
		if e.r.intn(30) == 0 {
			vals = nil
		}
	}
	elemFlags := e.pick(8, zero, elemFlagsRare)
	flags := e.pick(8, zero, batchFlagsRare)
	ka := &batchArgs{keys: bytes.Clone(keys), values: bytes.Clone(vals), count: count, elemFlags: elemFlags, flags: flags}
	ba := &batchArgs{keys: bytes.Clone(keys), values: bytes.Clone(vals), count: count, elemFlags: elemFlags, flags: flags}
	kc, ke := e.k.batch(cmdUpdateBatch, ka)
	bc, be := e.b.batch(cmdUpdateBatch, ba)
	e.record("UPDATE_BATCH", func() string {
		return fmt.Sprintf("UPDATE_BATCH keys=%s values=%s count=%d elem_flags=%#x flags=%#x", hx(keys), hx(vals), count, elemFlags, flags)
	})
	if ke != be || kc != bc {
		if !e.kernelTransient(ke) {
			e.fail("result: kernel %s count=%d, bpfmap %s count=%d", errName(ke), kc, errName(be), bc)
		}
		return
	}
	e.check(ke, be, cmpBuf{"keys (input)", ka.keys, ba.keys}, cmpBuf{"values (input)", ka.values, ba.values})
}

func (e *engine) opDeleteBatch() {
	count, huge := e.count()
	var keys []byte
	if !huge {
		keys = []byte{}
		for i := uint32(0); i < count; i++ {
			keys = append(keys, e.key()...)
		}
		if e.r.intn(30) == 0 {
			keys = nil
		}
	}
	elemFlags := e.pick(8, zero, elemFlagsRare)
	flags := e.pick(8, zero, batchFlagsRare)
	kc, ke := e.k.batch(cmdDeleteBatch, &batchArgs{keys: bytes.Clone(keys), count: count, elemFlags: elemFlags, flags: flags})
	bc, be := e.b.batch(cmdDeleteBatch, &batchArgs{keys: bytes.Clone(keys), count: count, elemFlags: elemFlags, flags: flags})
	e.record("DELETE_BATCH", func() string {
		return fmt.Sprintf("DELETE_BATCH keys=%s count=%d elem_flags=%#x flags=%#x", hx(keys), count, elemFlags, flags)
	})
	if ke != be || kc != bc {
		if !e.kernelTransient(ke) {
			e.fail("result: kernel %s count=%d, bpfmap %s count=%d", errName(ke), kc, errName(be), bc)
		}
		return
	}
	e.check(ke, be)
}

// ---- whole-state comparison ----

// walk lists the keys GET_NEXT_KEY visits from NULL on one side.
func (e *engine) walk(t target) (keys [][]byte, final syscall.Errno) {
	var prev []byte
	limit := int(e.a.MaxEntries) + 8
	for len(keys) <= limit {
		next := make([]byte, e.ks)
		if err := t.next(prev, next); err != 0 {
			return keys, err
		}
		keys = append(keys, next)
		prev = next
	}
	return keys, syscall.Errno(0xdead) // did not terminate
}

// compareState compares the complete GET_NEXT_KEY walk from NULL (in exact
// mode step by step, else as a set) and the value of every key.
func (e *engine) compareState() {
	if e.failed {
		return
	}
	if e.keyless {
		e.compareKeyless()
		return
	}
	kk, ke := e.walk(e.k)
	bk, be := e.walk(e.b)
	e.checks += max(len(kk), len(bk)) + 1
	e.record("state check", func() string {
		return fmt.Sprintf("state check: GET_NEXT_KEY walk from NULL → kernel %d keys then %s", len(kk), errName(ke))
	})
	e.ops-- // state checks are counted in e.checks
	if be == 0xdead {
		e.fail("bpfmap's GET_NEXT_KEY walk did not end after %d keys (cycle?): %s", len(bk), keyList(bk))
		return
	}
	if ke != be {
		e.fail("walk ended with kernel %s after %d keys, bpfmap %s after %d keys\n\t\tkernel %s\n\t\tbpfmap %s",
			errName(ke), len(kk), errName(be), len(bk), keyList(kk), keyList(bk))
		return
	}
	if e.exact {
		if !slices.EqualFunc(kk, bk, bytes.Equal) {
			e.fail("GET_NEXT_KEY walk order differs:\n\t\tkernel %s\n\t\tbpfmap %s", keyList(kk), keyList(bk))
			return
		}
	} else {
		ks, bs := make([]string, len(kk)), make([]string, len(bk))
		for i := range kk {
			ks[i] = hx(kk[i])
		}
		for i := range bk {
			bs[i] = hx(bk[i])
		}
		slices.Sort(ks)
		slices.Sort(bs)
		if !slices.Equal(ks, bs) {
			e.fail("GET_NEXT_KEY walk visits different key sets:\n\t\tkernel %v\n\t\tbpfmap %v", ks, bs)
			return
		}
	}
	for _, key := range kk {
		kv, bv := make([]byte, e.sys), make([]byte, e.sys)
		kr, br := e.k.lookup(key, kv, 0), e.b.lookup(key, bv, 0)
		e.checks++
		if kr != br || !bytes.Equal(kv, bv) {
			e.fail("state check LOOKUP key=%s: kernel %s %s, bpfmap %s %s", hx(key), errName(kr), hx(kv), errName(br), hx(bv))
			return
		}
	}
}

func keyList(keys [][]byte) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = hx(k)
	}
	return "[" + strings.Join(s, " ") + "]"
}

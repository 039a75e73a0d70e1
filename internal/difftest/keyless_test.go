//go:build linux

package difftest

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// The lockstep engine's part for the keyless types: QUEUE and STACK (push,
// peek, pop) and BLOOM_FILTER (push, peek with the value as input). Every
// command a keyed map takes is also thrown at them (keys, deletes,
// GET_NEXT_KEY, all four batches, NULL and non-NULL pointers, every flag), so
// their errnos are compared too. The state check drains a queue or stack on
// both sides, comparing every popped value, and pushes the values back; for a
// bloom filter it probes the whole value pool (BPF_F_ZERO_SEED: every answer,
// false positives included, must be the kernel's; random seed: every pushed
// value must be present on both sides).

// keylessValueSizes adds 4 and 6 to the value sizes: jhash2 and jhash.
var keylessValueSizes = []uint32{1, 4, 5, 6, 8, 12}

// randomKeylessAttr draws a small keyless map of type typ.
func randomKeylessAttr(r src, typ uint32) kbpf.CreateAttr {
	a := kbpf.CreateAttr{MapType: typ}
	a.ValueSize = keylessValueSizes[r.intn(len(keylessValueSizes))]
	switch r.intn(4) {
	case 0:
		a.MaxEntries = uint32(1 + r.intn(4))
	case 1:
		a.MaxEntries = []uint32{8, 16, 32, 64}[r.intn(4)]
	default:
		a.MaxEntries = uint32(1 + r.intn(64))
	}
	if typ == tBloom {
		if r.intn(10) < 8 {
			a.MapFlags |= fZeroSeed
		}
		a.MapExtra = uint64(r.intn(16))
	}
	if r.intn(10) == 0 {
		a.MapFlags |= fNumaNode
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
		a.MapName = name16("q_" + strconv.Itoa(r.intn(1000)))
	}
	return a
}

// stepKeyless is step for the keyless types.
func (e *engine) stepKeyless() {
	switch w := e.r.intn(100); {
	case w < 22:
		e.opPeek()
	case w < 55:
		e.opPush()
	case w < 72:
		e.opLookupAndDelete()
	case w < 76:
		e.opDelete()
	case w < 80:
		e.opNextKeyless()
	case w < 83:
		e.opLookupBatch(cmdLookupBatch)
	case w < 86:
		e.opLookupBatch(cmdLookupAndDeleteBatch)
	case w < 89:
		e.opUpdateBatch()
	case w < 92:
		e.opDeleteBatch()
	default:
		e.compareState()
	}
}

// keylessKey is NULL (as it must be) most of the time, else a non-NULL
// pointer.
func (e *engine) keylessKey() []byte {
	if e.r.intn(12) == 0 {
		return []byte{}
	}
	return nil
}

// poolValue returns value number id of a small pool, so that bloom probes
// hit pushed values often; queue values are random.
func (e *engine) poolValue(id int) []byte {
	v := make([]byte, e.sys)
	for i := range v {
		v[i] = byte(i*29 + 7)
	}
	for i := 0; i < len(v) && i < 4; i++ {
		v[i] ^= byte(id >> (8 * i))
	}
	return v
}

func (e *engine) poolSize() int { return int(e.a.MaxEntries)*2 + 3 }

// pushValue is a value to push or probe, or (rarely) NULL.
func (e *engine) pushValue() []byte {
	if e.r.intn(50) == 0 {
		return nil
	}
	if e.bloom && e.r.intn(8) != 0 {
		return e.poolValue(e.r.intn(e.poolSize()))
	}
	v := make([]byte, e.sys)
	e.r.fill(v)
	return v
}

var pushFlagsRare = []uint64{updNoExist, 3, fLock, fLock | updExist, 8, 16, 1 << 32}

func (e *engine) opPush() {
	key := e.keylessKey()
	val := e.pushValue()
	flags := e.pick(10, []uint64{updAny, updAny, updExist}, pushFlagsRare)
	kval, bval := bytes.Clone(val), bytes.Clone(val)
	ke, be := e.k.update(key, kval, flags), e.b.update(key, bval, flags)
	e.record("UPDATE", func() string {
		return fmt.Sprintf("UPDATE (push) key=%s value=%s flags=%#x", hx(key), hx(val), flags)
	})
	if e.check(ke, be, cmpBuf{"value (input)", kval, bval}) && e.bloom && ke == 0 {
		e.pushed[string(val)] = true
	}
}

// opPeek is LOOKUP: an output buffer for queues and stacks, the probe for a
// bloom filter.
func (e *engine) opPeek() {
	key := e.keylessKey()
	flags := e.pick(12, zero, lookupFlagsRare)
	var kv, bv []byte
	if e.bloom {
		v := e.pushValue()
		kv, bv = bytes.Clone(v), bytes.Clone(v)
	} else {
		kv, bv = e.outBufs(e.sys, 40)
	}
	in := bytes.Clone(kv)
	e.record("LOOKUP", func() string {
		if e.bloom {
			return fmt.Sprintf("LOOKUP (peek) key=%s value=%s (input) flags=%#x", hx(key), hx(in), flags)
		}
		return fmt.Sprintf("LOOKUP (peek) key=%s value=%s flags=%#x", hx(key), bufLen(kv), flags)
	})
	ke, be := e.k.lookup(key, kv, flags), e.b.lookup(key, bv, flags)
	if e.bloom && !e.exact && (ke == 0 || ke == syscall.ENOENT) && (be == 0 || be == syscall.ENOENT) {
		// Random seeds: a value never pushed may be a false positive on
		// either side; a pushed one must be present on both.
		if e.pushed[string(in)] && (ke != 0 || be != 0) {
			e.fail("pushed value %s: kernel peek %s, bpfmap %s", hx(in), errName(ke), errName(be))
		}
		e.check(0, 0, cmpBuf{"value (input)", kv, bv})
		return
	}
	e.check(ke, be, cmpBuf{"value", kv, bv})
}

func (e *engine) opNextKeyless() {
	key, next := e.keylessKey(), e.keylessKey()
	if e.r.intn(3) == 0 {
		next = make([]byte, 8) // room a zero-size key does not use
	}
	e.record("GET_NEXT_KEY", func() string {
		return fmt.Sprintf("GET_NEXT_KEY key=%s next_key=%s", hx(key), bufLen(next))
	})
	kn, bn := bytes.Clone(next), bytes.Clone(next)
	e.check(e.k.next(key, kn), e.b.next(key, bn), cmpBuf{"next_key", kn, bn})
}

// compareKeyless compares the whole state of a keyless map.
func (e *engine) compareKeyless() {
	kn, bn := make([]byte, 4), make([]byte, 4)
	ke, be := e.k.next(nil, kn), e.b.next(nil, bn)
	e.checks++
	if ke != be {
		e.fail("state check GET_NEXT_KEY(NULL): kernel %s, bpfmap %s", errName(ke), errName(be))
		return
	}
	if e.bloom {
		e.compareBloom()
		return
	}
	canPop := e.a.MapFlags&(fRdonly|fWronly) == 0 && !e.frozen
	if !canPop {
		kv, bv := make([]byte, e.sys), make([]byte, e.sys)
		ke, be := e.k.lookup(nil, kv, 0), e.b.lookup(nil, bv, 0)
		e.checks++
		if ke != be || !bytes.Equal(kv, bv) {
			e.fail("state check peek: kernel %s %s, bpfmap %s %s", errName(ke), hx(kv), errName(be), hx(bv))
		}
		return
	}
	// Drain both sides, comparing every pop, then push everything back in
	// the order that restores the same sequence.
	var vals [][]byte
	for i := 0; i <= int(e.a.MaxEntries)+1; i++ {
		kv, bv := make([]byte, e.sys), make([]byte, e.sys)
		ke, be := e.k.lookupAndDelete(nil, kv, 0), e.b.lookupAndDelete(nil, bv, 0)
		e.checks++
		if ke != be || !bytes.Equal(kv, bv) {
			e.fail("state check pop #%d: kernel %s %s, bpfmap %s %s (popped before: %s)",
				i+1, errName(ke), hx(kv), errName(be), hx(bv), keyList(vals))
			return
		}
		if ke == syscall.ENOENT {
			break
		}
		if ke != 0 {
			e.fail("state check pop #%d: both %s", i+1, errName(ke))
			return
		}
		vals = append(vals, kv)
	}
	if len(vals) > int(e.a.MaxEntries) {
		e.fail("state check: %d elements popped from a map of max_entries %d", len(vals), e.a.MaxEntries)
		return
	}
	e.record("state check", func() string {
		return fmt.Sprintf("state check: drained %d elements %s and pushed them back", len(vals), keyList(vals))
	})
	e.ops--
	for i := range vals {
		v := vals[i]
		if e.a.MapType == tStack {
			v = vals[len(vals)-1-i]
		}
		ke, be := e.k.update(nil, v, updAny), e.b.update(nil, v, updAny)
		e.checks++
		if ke != 0 || be != 0 {
			e.fail("state check: pushing back %s: kernel %s, bpfmap %s", hx(v), errName(ke), errName(be))
			return
		}
	}
}

// compareBloom probes the whole value pool (and every pushed value).
func (e *engine) compareBloom() {
	if e.a.MapFlags&fWronly != 0 {
		return
	}
	probe := func(v []byte) bool {
		ke, be := e.k.lookup(nil, bytes.Clone(v), 0), e.b.lookup(nil, bytes.Clone(v), 0)
		e.checks++
		if e.exact && ke != be {
			e.fail("state check peek %s: kernel %s, bpfmap %s", hx(v), errName(ke), errName(be))
			return false
		}
		if e.pushed[string(v)] && (ke != 0 || be != 0) {
			e.fail("state check peek of pushed value %s: kernel %s, bpfmap %s", hx(v), errName(ke), errName(be))
			return false
		}
		return true
	}
	for id := 0; id < e.poolSize(); id++ {
		if !probe(e.poolValue(id)) {
			return
		}
	}
	for v := range e.pushed {
		if !probe([]byte(v)) {
			return
		}
	}
}

// bloomValue is a value of size bytes derived from x.
func bloomValue(size int, x uint64) []byte {
	v := make([]byte, size)
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], x)
	for i := range v {
		v[i] = w[i%8] ^ byte(i/8*131)
	}
	return v
}

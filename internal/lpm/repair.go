package lpm

import (
	"runtime"
	"slices"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
)

var _ mapops.Repairer = (*Map)(nil)

// Repair makes the map consistent after a process died in the middle of an
// update or delete (mapops.Repairer). Writers publish every change with one
// store (see Crash safety in the package doc), so the structure reachable
// from the root is always whole; Repair recounts its entries, rebuilds the
// free lists from the arena space it does not use and the jump table from
// the structure, then makes the sequence even and unlocks.
func (m *Map) Repair() {
	defer runtime.KeepAlive(m.r)
	ver := m.locks.Seize(m.lockW)
	if atomic.LoadUint32(m.seq)&1 == 0 {
		atomic.AddUint32(m.seq, 1) // readers retry until the end
	}
	blocks, count := m.reachable()
	m.rebuildFree(blocks)
	m.rebuildJump()
	atomic.StoreUint32(m.count, count)
	region.StoreRelease32(m.seq, atomic.LoadUint32(m.seq)+1)
	m.unlock(ver)
}

// rebuildJump makes the jump table (if any) that of the structure reachable
// from the root: a writer may have died between publishing a change and
// updating the table.
func (m *Map) rebuildJump() {
	if m.jumpOff == 0 {
		return
	}
	for x := uint32(0); x < 256; x++ {
		row := m.mem.Words(m.jumpOff+4*256*uint64(x), 256)
		for y := range row {
			region.StoreRelease32(&row[y], 0)
		}
		if n := m.depth1Now(x); n != 0 && m.class(n) < nodeClasses {
			m.fillRow(row, n)
		}
	}
}

// block is an arena block in use: its ref and its size in 8-byte units.
type block struct{ ref, units uint32 }

// reachable walks the structure from the root and returns the blocks it
// uses and the number of entries. Refs are checked against the arena and
// depth against the key's length, so even a damaged structure is walked
// without faults or loops.
func (m *Map) reachable() ([]block, uint32) {
	var blocks []block
	var count uint32
	entry := uint32(m.g.entrySize / 8)
	type visit struct {
		ref   uint32
		depth uint64
	}
	root := *m.mem.Uint32(m.rootOff)
	if root == 0 {
		return nil, 0
	}
	stack := []visit{{root, 0}}
	for len(stack) > 0 {
		v := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n := v.ref
		if !m.valid(n) || v.depth >= m.g.dataSize || m.class(n) >= nodeClasses {
			continue
		}
		nc, np := m.counts(n)
		if nc+np > uint64(classCap(m.class(n))) {
			continue
		}
		blocks = append(blocks, block{n, uint32(m.classSize(m.class(n)) / 8)})
		for i := uint64(0); i < nc+np; i++ {
			r := *m.refAt(n, i)
			if i < nc && r&leafBit == 0 {
				stack = append(stack, visit{r, v.depth + 1})
				continue
			}
			if e := r &^ leafBit; m.valid(e) {
				blocks = append(blocks, block{e, entry})
				count++
			}
		}
	}
	return blocks, count
}

// rebuildFree empties every free list and fills them again with the arena
// space between the blocks in use, up to the bump pointer.
func (m *Map) rebuildFree(used []block) {
	for c := uint32(0); c < numClasses; c++ {
		*m.freeHead(c) = 0
	}
	slices.SortFunc(used, func(a, b block) int { return int(int64(a.ref) - int64(b.ref)) })
	at := uint32(1) // ref 1: the first byte handed out
	for _, b := range used {
		if b.ref > at {
			m.tile(at, b.ref-at)
		}
		at = max(at, b.ref+b.units)
	}
	if end := uint32((8 + *m.bump) / 8); end > at {
		m.tile(at, end-at)
	}
}

// frob exceeds the Frobenius number of the two smallest node classes (3
// and 4 units, whose Frobenius number is 5): every length of at least frob
// units is a sum of 3s and 4s.
const frob = 6

// tile cuts the free space of units 8-byte units at ref into blocks of the
// class sizes and puts them on their free lists. The space is a run of
// blocks the allocator once cut (every block of a class has the class's
// size), so an exact cut exists: large runs are cut greedily while what is
// left stays at least frob (always cuttable), and the rest (under frob+3
// units) exactly by a small dynamic program over all class sizes.
func (m *Map) tile(ref, units uint32) {
	var size [numClasses]uint32
	for c := uint32(0); c < numClasses; c++ {
		size[c] = uint32(m.classSize(c) / 8)
	}
	for units >= frob+size[0] {
		best := -1
		for c := range size {
			if units-frob >= size[c] && (best < 0 || size[c] > size[best]) {
				best = c
			}
		}
		m.free(uint32(best), ref)
		ref += size[best]
		units -= size[best]
	}
	// from[u] is the class of the last block of an exact cut of u units,
	// -1 if u has none.
	from := make([]int8, units+1)
	for u := uint32(1); u <= units; u++ {
		from[u] = -1
		for c := range size {
			if s := size[c]; s <= u && (u == s || from[u-s] >= 0) {
				from[u] = int8(c)
				break
			}
		}
	}
	if from[units] < 0 {
		return // not a run of whole blocks: cannot happen; leave it unused
	}
	for units > 0 {
		c := uint32(from[units])
		units -= size[c]
		m.free(c, ref+units)
	}
}

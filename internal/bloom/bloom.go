// Package bloom implements BPF_MAP_TYPE_BLOOM_FILTER over a flat region: a
// bitset sized as the kernel sizes it, with k hash functions that are the
// kernel's (jhash2 over u32 words when value_size is a multiple of 4, jhash
// over bytes otherwise, seeded with the map's seed + i), so that with
// BPF_F_ZERO_SEED every peek answers exactly as the kernel's filter does,
// false positives included.
//
// UPDATE pushes a value (sets its k bits; never fails when "full"), LOOKUP
// peeks: the value buffer is an input (the command layer copies it in, see
// mapops.Traits.LookupValueIn) and the answer is 0 when all k bits are set,
// ENOENT otherwise. There is no delete, pop or iteration.
//
// # Sizing
//
// bits = max_entries × k (u32, overflow-checked), then (bits / 5) × 7 (an
// approximation of 1/ln 2, integer division first, overflow-checked); at
// most 64 → 64, else roundup_pow_of_two; an overflow or more than 2^31
// bits → 2^32 bits. The mask is bits − 1.
//
// # Concurrency
//
// Pushes set bits with atomic OR on 32-bit words (skipping words whose bit
// is already set, so that hot bits stay shared in caches); peeks use atomic
// loads. Bits are never cleared, so a value whose push has returned peeks
// present from every goroutine that observes the push.
//
// There is no lock word, count or link in the region, so a process killed
// in the middle of a push (a shared map) can only leave some of the value's
// k bits set: the push is then absent (peek answers ENOENT, unless the set
// bits and others make a false positive) and nothing needs repair; the
// filter has no Repair.
//
// # Layout
//
//	header (region.HeaderSize) | bitset words (u32, bit b in word b/32)
//
// All-zero bytes are the valid empty filter. The seed is the region
// header's; k and the mask are derived from map_extra and max_entries.
package bloom

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/jhash"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Family creates BLOOM_FILTER maps.
var Family mapops.Family = family{}

type family struct{}

// createMask is the set of map_flags a bloom filter accepts.
const createMask = uapi.FNumaNode | uapi.FZeroSeed | uapi.FAllAccessFlags

const (
	// defaultHashes is k when map_extra's low 4 bits are 0.
	defaultHashes = 5
	// kernelBloomSize is sizeof(struct bpf_bloom_filter) on 6.18 x86-64,
	// as its memlock figure shows (bitset bytes + 312).
	kernelBloomSize = 312

	bitsOff = region.HeaderSize
)

// Check is the kernel's bloom_map_alloc_check: only the value size limit
// is checked before the generic privilege and offload checks.
func (family) Check(a *mapops.Attr) error {
	if a.ValueSize > uapi.KmallocMaxSize {
		return uapi.E2BIG
	}
	return nil
}

// params validates a as the kernel's bloom_map_alloc does and derives the
// number of hash functions and the bitset's size in bits (up to 2^32).
func params(a *mapops.Attr) (k uint32, bits uint64, err error) {
	if a.KeySize != 0 || a.ValueSize == 0 || a.MaxEntries == 0 ||
		a.Flags&^createMask != 0 || mapops.CheckProgAccess(a.Flags) != nil ||
		a.MapExtra&^0xf != 0 {
		return 0, 0, uapi.EINVAL
	}
	k = uint32(a.MapExtra)
	if k == 0 {
		k = defaultHashes
	}
	n := uint64(a.MaxEntries) * uint64(k)
	if n > 1<<32-1 {
		return k, 1 << 32, nil
	}
	n = n / 5 * 7
	if n > 1<<31 {
		// Covers the u32 overflow of the multiplication by 7 too.
		return k, 1 << 32, nil
	}
	if n <= 64 {
		return k, 64, nil
	}
	return k, mapops.RoundUpPow2(uint32(n)), nil
}

// Layout sizes the bitset; memlock is the kernel's bloom_map_mem_usage.
func (family) Layout(a *mapops.Attr) (mapops.Layout, error) {
	_, bits, err := params(a)
	if err != nil {
		return mapops.Layout{}, err
	}
	bytes := (bits/8 + 7) &^ 7
	return mapops.Layout{
		BodySize:   bytes,
		MaxEntries: a.MaxEntries,
		Memlock:    kernelBloomSize + bytes,
	}, nil
}

// Traits: peek takes its value as input, push takes BPF_ANY only, and no
// batch operation exists.
func (family) Traits(*mapops.Attr) mapops.Traits {
	return mapops.Traits{Update: mapops.UpdateAnyOnly, LookupValueIn: true}
}

// Open returns the operations over a bloom filter region.
func (family) Open(r *region.Region, a *mapops.Attr, _ mapops.Layout) (mapops.Ops, error) {
	k, bits, err := params(a)
	if err != nil {
		return nil, err
	}
	return &Map{r: r, mem: r.Mem(), k: k, mask: uint32(bits - 1), seed: r.Header().Seed}, nil
}

// Map is one bloom filter's operations over its region.
type Map struct {
	r    *region.Region
	mem  region.Mem
	k    uint32
	mask uint32
	seed uint32
}

// word returns the bitset word holding bit h and h's bit in it.
func (m *Map) word(h uint32) (*uint32, uint32) {
	return m.mem.Uint32(bitsOff + uint64(h>>5)*4), 1 << (h & 31)
}

// Lookup is peek: value is the probe. 0 when every bit of value is set
// (present, or a false positive), ENOENT when value was never pushed.
func (m *Map) Lookup(_, value []byte) error {
	if len(value) == 4 {
		// The common 4-byte element: jhash2 of one word, inlined.
		v := binary.LittleEndian.Uint32(value)
		for i := uint32(0); i < m.k; i++ {
			w, bit := m.word(jhash.Word(v, m.seed+i) & m.mask)
			if atomic.LoadUint32(w)&bit == 0 {
				return uapi.ENOENT
			}
		}
		return nil
	}
	for i := uint32(0); i < m.k; i++ {
		w, bit := m.word(jhash.Key(value, m.seed+i) & m.mask)
		if atomic.LoadUint32(w)&bit == 0 {
			return uapi.ENOENT
		}
	}
	return nil
}

// Update is push: it sets value's k bits. The command layer has checked
// that flags is BPF_ANY.
func (m *Map) Update(_, value []byte, _ uint64) error {
	defer runtime.KeepAlive(m.r)
	for i := uint32(0); i < m.k; i++ {
		w, bit := m.word(jhash.Key(value, m.seed+i) & m.mask)
		if atomic.LoadUint32(w)&bit == 0 {
			atomic.OrUint32(w, bit)
		}
	}
	return nil
}

// Delete is EOPNOTSUPP: bits cannot be cleared.
func (m *Map) Delete([]byte) error { return uapi.EOPNOTSUPP }

// GetNextKey is EOPNOTSUPP: a filter has no keys.
func (m *Map) GetNextKey(_, _ []byte) error { return uapi.EOPNOTSUPP }

// LookupAndDelete is ENOTSUPP, as the syscall answers for types without a
// pop.
func (m *Map) LookupAndDelete(_, _ []byte) error { return uapi.ENOTSUPP }

// Close releases nothing beyond the region, which the command layer owns.
func (m *Map) Close() error { return nil }

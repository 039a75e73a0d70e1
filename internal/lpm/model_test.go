package lpm

import (
	"bytes"
	"encoding/binary"
	"slices"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// model is the reference LPM trie of the tests: a slice of entries with a
// linear longest-prefix search and the kernel's post-order as a sort.
type model struct {
	ks      int
	maxBits uint32
	max     int
	ents    []mEnt
}

type mEnt struct{ key, val []byte }

func newModel(keySize, maxEntries int) *model {
	return &model{ks: keySize, maxBits: uint32(8 * (keySize - 4)), max: maxEntries}
}

func plen(k []byte) uint32 { return binary.NativeEndian.Uint32(k) }

func bitAt(data []byte, i uint32) byte { return data[i>>3] >> (7 - i&7) & 1 }

// commonBits is the number of leading bits a and b share, up to n.
func commonBits(a, b []byte, n uint32) uint32 {
	for i := uint32(0); i < n; i++ {
		if bitAt(a, i) != bitAt(b, i) {
			return i
		}
	}
	return n
}

func (m *model) exact(key []byte) int {
	p := plen(key)
	for i, e := range m.ents {
		if plen(e.key) == p && commonBits(e.key[4:], key[4:], p) == p {
			return i
		}
	}
	return -1
}

func (m *model) lookup(key []byte) ([]byte, syscall.Errno) {
	p := plen(key)
	if p > m.maxBits {
		return nil, uapi.ENOENT
	}
	best := -1
	for i, e := range m.ents {
		ep := plen(e.key)
		if ep <= p && commonBits(e.key[4:], key[4:], ep) == ep && (best < 0 || ep > plen(m.ents[best].key)) {
			best = i
		}
	}
	if best < 0 {
		return nil, uapi.ENOENT
	}
	return m.ents[best].val, 0
}

func (m *model) update(key, val []byte, flags uint64) syscall.Errno {
	if plen(key) > m.maxBits {
		return uapi.EINVAL
	}
	i := m.exact(key)
	switch {
	case i >= 0 && flags == uapi.NoExist:
		return uapi.EEXIST
	case i >= 0:
		m.ents[i] = mEnt{bytes.Clone(key), bytes.Clone(val)}
		return 0
	case flags == uapi.Exist:
		return uapi.ENOENT
	case len(m.ents) >= m.max:
		return uapi.ENOSPC
	}
	m.ents = append(m.ents, mEnt{bytes.Clone(key), bytes.Clone(val)})
	return 0
}

func (m *model) delete(key []byte) syscall.Errno {
	if plen(key) > m.maxBits {
		return uapi.EINVAL
	}
	i := m.exact(key)
	if i < 0 {
		return uapi.ENOENT
	}
	m.ents = slices.Delete(m.ents, i, i+1)
	return 0
}

// postCmp orders entries as the kernel's post-order walk does: a prefix of
// another comes after it; otherwise the one with bit 0 at the first
// difference comes first.
func postCmp(a, b []byte) int {
	pa, pb := plen(a), plen(b)
	n := min(pa, pb)
	c := commonBits(a[4:], b[4:], n)
	if c == n {
		switch {
		case pa > pb:
			return -1
		case pa < pb:
			return 1
		}
		return 0
	}
	if bitAt(a[4:], c) == 0 {
		return -1
	}
	return 1
}

func (m *model) order() [][]byte {
	keys := make([][]byte, len(m.ents))
	for i, e := range m.ents {
		keys[i] = e.key
	}
	slices.SortFunc(keys, postCmp)
	return keys
}

func (m *model) nextKey(key []byte) ([]byte, syscall.Errno) {
	o := m.order()
	if len(o) == 0 {
		return nil, uapi.ENOENT
	}
	if key == nil || plen(key) > m.maxBits || m.exact(key) < 0 {
		return o[0], 0
	}
	for i, k := range o {
		if postCmp(k, key) == 0 {
			if i+1 == len(o) {
				return nil, uapi.ENOENT
			}
			return o[i+1], 0
		}
	}
	panic("unreachable")
}

// newOps creates an LPM map of the given shape through the family, as the
// command layer would.
func newOps(keySize, valueSize, maxEntries uint32) (*Map, error) {
	a := &mapops.Attr{Type: uapi.MapTypeLPMTrie, KeySize: keySize, ValueSize: valueSize,
		MaxEntries: maxEntries, Flags: uapi.FNoPrealloc, PossibleCPUs: 2}
	ops, _, err := mapops.OpenDetached(Family, a)
	if err != nil {
		return nil, err
	}
	return ops.(*Map), nil
}

// errno turns an Ops error into an errno (0 for nil).
func errno(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	return err.(syscall.Errno)
}

// mkKey builds a key of keySize bytes: prefixlen p and data.
func mkKey(keySize int, p uint32, data ...byte) []byte {
	k := make([]byte, keySize)
	binary.NativeEndian.PutUint32(k, p)
	copy(k[4:], data)
	return k
}

// hasExact reports whether key's exact prefix is stored (test helper).
func (m *Map) hasExact(key []byte) bool {
	p := plen(key)
	if p > m.maxBits {
		return false
	}
	stack := make([]uint32, p/8+1)
	_, _, found, _ := m.exact(key, p, stack)
	return found
}

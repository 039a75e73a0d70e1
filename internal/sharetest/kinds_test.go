package sharetest

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// kind is a keyed map type under test: how to build its spec and keys and
// how to read its values.
type kind struct {
	name    string
	typ     ebpf.MapType
	keySize uint32
	perCPU  bool
	deletes bool // elements can be deleted (not arrays)
	flags   uint32
}

var kinds = map[string]kind{
	"hash":   {name: "hash", typ: ebpf.Hash, keySize: 4, deletes: true},
	"percpu": {name: "percpu", typ: ebpf.PerCPUHash, keySize: 4, perCPU: true, deletes: true},
	"array":  {name: "array", typ: ebpf.Array, keySize: 4},
	"lru":    {name: "lru", typ: ebpf.LRUHash, keySize: 4, deletes: true},
	"lpm":    {name: "lpm", typ: ebpf.LPMTrie, keySize: 8, deletes: true, flags: uapi.FNoPrealloc},
}

func (k kind) spec(maxEntries uint32) *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: "share_" + k.name, Type: k.typ, KeySize: k.keySize, ValueSize: valueSize, MaxEntries: maxEntries, Flags: k.flags}
}

// key encodes key number n. LPM keys are IPv4 prefixes: /24 for even n,
// /32 for odd n (host part 1), so that no key's exact lookup can match
// another key.
func (k kind) key(n uint32) []byte {
	if k.typ != ebpf.LPMTrie {
		return binary.NativeEndian.AppendUint32(nil, n)
	}
	b := make([]byte, 8)
	data := n << 8
	plen := uint32(24)
	if n%2 == 1 {
		data |= 1
		plen = 32
	}
	binary.NativeEndian.PutUint32(b, plen)
	binary.BigEndian.PutUint32(b[4:], data)
	return b
}

// num decodes a key made by key.
func (k kind) num(b []byte) (uint32, error) {
	if k.typ != ebpf.LPMTrie {
		return binary.NativeEndian.Uint32(b), nil
	}
	plen := binary.NativeEndian.Uint32(b)
	data := binary.BigEndian.Uint32(b[4:])
	n := data >> 8
	if plen == 24 && data&0xff == 0 && n%2 == 0 || plen == 32 && data&0xff == 1 && n%2 == 1 {
		return n, nil
	}
	return 0, fmt.Errorf("key %x was never written", b)
}

// fullSize is the size of a value in element commands.
func (k kind) fullSize() int {
	if !k.perCPU {
		return valueSize
	}
	n, err := ebpf.PossibleCPU()
	if err != nil {
		panic(err)
	}
	return n * valueSize
}

func (k kind) put(b []byte, n uint32, stamp uint64) {
	if k.perCPU {
		putPerCPU(b, n, stamp)
	} else {
		putValue(b, n, stamp)
	}
}

func (k kind) check(b []byte, n uint32) (uint64, error) {
	if len(b) != k.fullSize() {
		return 0, fmt.Errorf("value of %d bytes, want %d", len(b), k.fullSize())
	}
	if k.perCPU {
		return checkPerCPU(b, n)
	}
	return checkValue(b, n)
}

// contents reads every entry of m with All, checking values, and fails on
// a duplicated key. The result maps key number to stamp.
func (k kind) contents(m *bpfmap.Map) (map[uint32]uint64, error) {
	return k.walk(m, true)
}

// walk is contents; with strict false a key may be yielded twice (LPM
// tries under concurrent deletes: the kernel's get-next-key of a deleted
// key restarts at the first key), but the walk must still end.
func (k kind) walk(m *bpfmap.Map, strict bool) (map[uint32]uint64, error) {
	got := map[uint32]uint64{}
	yielded := 0
	for kb, vb := range m.All() {
		n, err := k.num(kb)
		if err != nil {
			return nil, err
		}
		if yielded++; yielded > 64*int(m.MaxEntries()) {
			return nil, fmt.Errorf("iteration yielded %d keys of a map of %d entries and did not end", yielded, m.MaxEntries())
		}
		if _, dup := got[n]; dup && strict {
			return nil, fmt.Errorf("key %d yielded twice by one iteration", n)
		}
		s, err := k.check(vb, n)
		if err != nil {
			return nil, err
		}
		got[n] = s
	}
	if uint32(len(got)) > m.MaxEntries() {
		return nil, fmt.Errorf("iteration yielded %d keys, more than max_entries %d", len(got), m.MaxEntries())
	}
	return got, nil
}

// iterate reads every entry with Iterate (NextKey + Lookup), checking
// values; keys may repeat (a concurrent delete restarts the walk).
func (k kind) iterate(m *bpfmap.Map) (int, error) {
	kb := make([]byte, k.keySize)
	vb := make([]byte, k.fullSize())
	it := m.Iterate()
	n := 0
	for it.Next(&kb, &vb) { // ErrIterationAborted is the kernel's rule under churn
		num, err := k.num(kb)
		if err != nil {
			return n, err
		}
		if _, err := k.check(vb, num); err != nil {
			return n, err
		}
		n++
	}
	if errors.Is(it.Err(), ebpf.ErrIterationAborted) {
		return n, nil
	}
	return n, it.Err()
}

// concurrentDupsOK reports whether a walk under concurrent deletes may
// yield a key twice.
func (k kind) concurrentDupsOK() bool { return k.typ == ebpf.LPMTrie }

// tornAfterKill reports whether an element whose update was cut short by a
// kill may be left torn. No map type may: arrays, which update values of
// more than 8 bytes in place, undo a copy cut short from an undo record
// (internal/array, "Crash safety"). The tolerant checks stay for a type
// that would need them.
func (k kind) tornAfterKill() bool { return false }

package bpfmap

import (
	"runtime"

	"github.com/bpfmap/bpfmap/internal/marshal"
)

// LookupAndTouch is Lookup as a BPF program's bpf_map_lookup_elem performs
// it: on LRU_HASH and LRU_PERCPU_HASH maps the key found is also marked
// referenced, so the LRU keeps it over keys nobody looked at when it must
// evict. This is the lookup for maps used as caches, where a hit should
// refresh the entry's recency.
//
// Lookup, like the kernel's syscall lookup, never marks a key; updating an
// existing key always does. On every other map type LookupAndTouch is
// Lookup. Arguments and errors are Lookup's.
func (m *Map) LookupAndTouch(key, valueOut any) error {
	k, ok := fastKey(key, m.keySize)
	if !ok {
		k, ok = fastBytesKey(key, m.keySize)
	}
	v, ok2 := fastValue(valueOut, m.fullValue)
	if !ok || !ok2 {
		k, v, ok = marshal.Fast2(key, int(m.keySize), valueOut, m.fullValue)
	}
	if ok && !m.perCPU {
		err := m.h.LookupTouch(k, v)
		runtime.KeepAlive(m)
		if err != nil {
			return wrap(opLookup, err)
		}
		return nil
	}
	k, err := m.key(opLookup, key)
	if err != nil {
		return err
	}
	defer runtime.KeepAlive(m)
	buf := make([]byte, m.fullValue)
	if err := m.h.LookupTouch(k, buf); err != nil {
		return wrap(opLookup, err)
	}
	if m.perCPU {
		return m.unmarshalPerCPU(opLookup, valueOut, buf)
	}
	return m.unmarshal(opLookup, valueOut, buf)
}

package bpfmap

import (
	"errors"
	"runtime"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/marshal"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Queues, stacks and bloom filters have no keys (key_size 0). With
// cilium/ebpf's methods they take a nil key, as on kernel maps:
//
//	m.Update(nil, v, ebpf.UpdateAny)  // push (UpdateExist: drop the oldest if full)
//	m.Lookup(nil, &v)                 // queue/stack: peek; bloom filter: test v
//	m.LookupAndDelete(nil, &v)        // queue/stack: pop
//
// Push, Pop, Peek and Contains below are the same calls under clearer names.

// Push adds value to a queue, stack or bloom filter: Update(nil, value,
// ebpf.UpdateAny). A full queue or stack is E2BIG (an error matching
// unix.E2BIG); Update(nil, value, ebpf.UpdateExist) makes room by dropping
// the oldest element instead, for queues and stacks alike. A bloom filter is
// never full.
func (m *Map) Push(value any) error {
	return m.Update(nil, value, ebpf.UpdateAny)
}

// Pop removes the next element of a queue (the oldest) or a stack (the
// newest) and copies it into valueOut: LookupAndDelete(nil, valueOut). An
// empty map returns an error matching ebpf.ErrKeyNotExist and leaves
// valueOut alone.
func (m *Map) Pop(valueOut any) error {
	return m.LookupAndDelete(nil, valueOut)
}

// Peek copies the element Pop would remove into valueOut, without removing
// it: Lookup(nil, valueOut). An empty map returns an error matching
// ebpf.ErrKeyNotExist. For a bloom filter use Contains: its lookup reads the
// value instead of writing it.
func (m *Map) Peek(valueOut any) error {
	if m.typ == ebpf.BloomFilter {
		return argError(opLookup, "Peek of a bloom filter (use Contains)", uapi.EINVAL)
	}
	return m.Lookup(nil, valueOut)
}

// Contains tests a bloom filter for value: false means value was never
// pushed; true means it probably was (bloom filters have false positives,
// and answer exactly as the kernel's filter of the same shape and seed).
// It is Lookup(nil, &value), which returns nil for true and an error
// matching ebpf.ErrKeyNotExist for false. value is marshalled like an
// Update value.
func (m *Map) Contains(value any) (bool, error) {
	if m.typ != ebpf.BloomFilter {
		return false, argError(opLookup, "Contains needs a bloom filter", uapi.EINVAL)
	}
	err := m.Lookup(nil, value)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return false, nil
	}
	return err == nil, err
}

// lookupProbe is the lookup of a bloom filter, whose value buffer is an
// input: the bytes of value are the probe. Like cilium/ebpf, a pointer's
// memory is passed as is; other values are marshalled as for Update.
func (m *Map) lookupProbe(k []byte, value any, flags ebpf.MapLookupFlags) error {
	defer runtime.KeepAlive(m)
	var v []byte
	if value != nil {
		var ok bool
		if v, ok = marshal.Fast(value, m.fullValue); !ok {
			if v, ok = marshal.View(value, m.fullValue); !ok {
				var err error
				if v, err = marshal.Bytes(value, m.fullValue, nil); err != nil {
					return argError(opLookup, "can't marshal value", err)
				}
			}
		}
	}
	return wrap(opLookup, m.h.Lookup(k, v, uint64(flags)))
}

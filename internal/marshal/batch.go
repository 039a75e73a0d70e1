package marshal

import "reflect"

// BatchLen returns the number of elements in a batch argument (the keys,
// values, keysOut or valuesOut of BatchLookup, BatchUpdate and BatchDelete).
// Like cilium/ebpf it must be a slice (not a pointer to one) and counts
// len(v) elements; as a bpfmap extension a []byte whose length is a multiple
// of elemSize counts len(v)/elemSize elements (the raw layout; cilium/ebpf
// only accepts []byte with one-byte elements, where both rules agree).
func BatchLen(v any, elemSize int) (int, error) {
	if b, ok := v.([]byte); ok {
		if elemSize <= 0 || len(b)%elemSize != 0 {
			return 0, errorf("[]byte batch of %d bytes is not a multiple of the element size %d", len(b), elemSize)
		}
		return len(b) / elemSize, nil
	}
	if v == nil {
		return 0, errorf("batch argument is nil")
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return 0, errorf("batch argument %v is not a slice", rv.Type())
	}
	return rv.Len(), nil
}

// BatchBytes returns the flat bytes of a batch input (keys or values of
// BatchUpdate/BatchDelete) and its element count: count = BatchLen(v,
// elemSize) and the bytes are Bytes(v, count*elemSize, scratch), so they are
// a zero-copy view when the element type has no padding and an
// encoding/binary encoding otherwise. Element types' MarshalBinary methods
// are not used, as in cilium/ebpf.
func BatchBytes(v any, elemSize int, scratch []byte) ([]byte, int, error) {
	n, err := BatchLen(v, elemSize)
	if err != nil {
		return nil, 0, err
	}
	b, err := Bytes(v, n*elemSize, scratch)
	if err != nil {
		return nil, 0, err
	}
	return b, n, nil
}

// UnmarshalBatch writes the flat bytes of a batch lookup (count*elemSize
// bytes, count = BatchLen(out, elemSize)) into the keysOut/valuesOut slice
// out with the rules of [Unmarshal]: a plain copy when the element type has
// no padding, an encoding/binary decode otherwise. The slice is never
// resized.
func UnmarshalBatch(out any, buf []byte, elemSize int) error {
	n, err := BatchLen(out, elemSize)
	if err != nil {
		return err
	}
	if n*elemSize != len(buf) {
		return errorf("batch %v holds %d elements of %d bytes, buffer has %d bytes", reflect.TypeOf(out), n, elemSize, len(buf))
	}
	return Unmarshal(out, buf)
}

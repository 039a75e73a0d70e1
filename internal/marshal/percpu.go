package marshal

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"unsafe"
)

// Stride returns the number of bytes each CPU's slot occupies in a per-CPU
// value of elemSize bytes: elemSize rounded up to a multiple of 8, as the
// kernel lays out per-CPU map values.
func Stride(elemSize int) int {
	return (elemSize + 7) &^ 7
}

// checkPerCPU validates the geometry of a per-CPU buffer of n bytes holding
// count values and returns the stride.
func checkPerCPU(elemSize, ncpu, count, n int) (int, error) {
	if elemSize <= 0 || ncpu <= 0 || count < 0 {
		return 0, errorf("invalid per-CPU geometry: element size %d, %d CPUs, %d values", elemSize, ncpu, count)
	}
	stride := Stride(elemSize)
	if want := count * ncpu * stride; n != want {
		return 0, errorf("per-CPU buffer has %d bytes, need %d (%d values * %d CPUs * stride %d)", n, want, count, ncpu, stride)
	}
	return stride, nil
}

// PerCPUBytes marshals a per-CPU input into dst, which must be exactly
// ncpu*stride bytes long, stride = Stride(elemSize). Accepted forms of v:
//
//   - a slice with at most ncpu elements (cilium/ebpf's rule; slots of
//     missing CPUs are zeroed). Element i is marshalled into
//     dst[i*stride:][:elemSize] with the rules of [Bytes] for the element
//     value (BinaryMarshaler, fixed-size values, pointers to them, []byte,
//     string, ...); its padding bytes dst[i*stride+elemSize:(i+1)*stride] are
//     zeroed. Elements must encode to exactly elemSize bytes.
//   - a pointer to such a slice (bpfmap extension; cilium/ebpf requires a
//     slice).
//   - a []byte of exactly ncpu*stride bytes: the raw per-CPU layout, copied
//     verbatim including padding (bpfmap extension). A []byte of any other
//     length is a slice of one-byte elements as in cilium/ebpf.
func PerCPUBytes(v any, elemSize, ncpu int, dst []byte) error {
	stride, err := checkPerCPU(elemSize, ncpu, 1, len(dst))
	if err != nil {
		return err
	}
	if v == nil {
		return errorf("can't marshal a nil per-CPU value")
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() == reflect.Pointer && rv.Type().Elem().Kind() == reflect.Slice {
		if rv.IsNil() {
			return errorf("nil %v", rv.Type())
		}
		rv = rv.Elem()
	}
	if rv.Kind() != reflect.Slice {
		return errorf("per-CPU value requires a slice, got %v", reflect.TypeOf(v))
	}
	if rv.Type() == reflect.TypeFor[[]byte]() && rv.Len() == len(dst) {
		// Sound: rv is a non-empty []byte of len(dst) bytes.
		copy(dst, unsafe.Slice((*byte)(rv.UnsafePointer()), len(dst)))
		return nil
	}
	n := rv.Len()
	if n > ncpu {
		return errorf("per-CPU value %v has %d elements, more than the %d possible CPUs", reflect.TypeOf(v), n, ncpu)
	}
	if err := encodePerCPU(rv, elemSize, stride, dst[:n*stride]); err != nil {
		return err
	}
	clear(dst[n*stride:])
	return nil
}

// PerCPUBatchBytes marshals the per-CPU values of a batch update: v is a flat
// slice of count*ncpu elements (cilium/ebpf's BatchUpdate rule: CPU c of
// entry i is element i*ncpu+c), or a []byte holding the raw layout of
// count*ncpu*stride bytes (bpfmap extension). dst must be count*ncpu*stride
// bytes long; element rules and padding are as for [PerCPUBytes].
func PerCPUBatchBytes(v any, count, elemSize, ncpu int, dst []byte) error {
	stride, err := checkPerCPU(elemSize, ncpu, count, len(dst))
	if err != nil {
		return err
	}
	if raw, ok := v.([]byte); ok && len(raw) == len(dst) {
		copy(dst, raw)
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Slice {
		return errorf("batch per-CPU values require a slice, got %v", reflect.TypeOf(v))
	}
	if rv.Len() != count*ncpu {
		return errorf("per-CPU slice %v has %d elements, need %d (%d values * %d CPUs)", rv.Type(), rv.Len(), count*ncpu, count, ncpu)
	}
	return encodePerCPU(rv, elemSize, stride, dst)
}

// encodePerCPU encodes each element of the slice sv into its own stride-sized
// slot of dst (len(dst) == sv.Len()*stride), zeroing the padding.
func encodePerCPU(sv reflect.Value, elemSize, stride int, dst []byte) error {
	et := sv.Type().Elem()
	ti := infoOf(et)
	n := sv.Len()
	if !ti.marshaler && ti.binSize >= 0 {
		// Fixed-size elements: encode straight from the backing array.
		if ti.binSize != elemSize {
			return sizeError(et, ti.binSize, elemSize)
		}
		if n == 0 {
			return nil
		}
		p := sv.UnsafePointer()
		for i := range n {
			slot := dst[i*stride : (i+1)*stride]
			// Sound: i < len, so the element is inside the backing array.
			encodeMem(ti, unsafe.Add(p, uintptr(i)*ti.memSize), slot)
			clear(slot[elemSize:])
		}
		return nil
	}
	for i := range n {
		ev := sv.Index(i)
		slot := dst[i*stride : (i+1)*stride]
		var (
			b   []byte
			err error
		)
		switch {
		case et.Kind() == reflect.Interface:
			// cilium/ebpf marshals the dynamic value of an interface element.
			// Interface would make sv escape; Bytes itself does not retain
			// its argument, so hiding the flow is sound (see hide).
			b, err = Bytes((*hide(&ev)).Interface(), elemSize, slot)
		case ti.marshaler:
			b, err = marshalBinary((*hide(&ev)).Interface().(encoding.BinaryMarshaler), elemSize)
		default:
			b, err = bytesReflect(ev, elemSize, slot)
		}
		if err != nil {
			return fmt.Errorf("cpu %d: %w", i, err)
		}
		copy(slot, b) // a no-op when b was encoded into slot
		clear(slot[elemSize:])
	}
	return nil
}

// UnmarshalPerCPU writes the ncpu slots of buf (len ncpu*stride, stride =
// Stride(elemSize)) into out, as cilium/ebpf does for per-CPU lookups:
//
//   - a slice must have exactly ncpu elements; element i receives
//     buf[i*stride:][:elemSize] with the rules of [Unmarshal] applied to a
//     pointer to the element. Pointer elements must be non-nil and are
//     written through.
//   - a pointer to a slice always receives a newly allocated slice of ncpu
//     elements (pointer elements point at new zero values), which is then
//     filled as above; results of earlier calls are never overwritten.
//   - a []byte of exactly ncpu*stride bytes receives the raw layout (bpfmap
//     extension); a *[]byte receives a new copy of the raw layout when
//     elemSize != 1 (bpfmap extension; with elemSize == 1 both follow
//     cilium/ebpf's rule of one byte per CPU).
func UnmarshalPerCPU(out any, buf []byte, elemSize, ncpu int) error {
	stride, err := checkPerCPU(elemSize, ncpu, 1, len(buf))
	if err != nil {
		return err
	}
	switch x := out.(type) {
	case nil:
		return errorf("can't unmarshal a per-CPU value into a nil value")
	case []byte:
		if len(x) == len(buf) {
			copy(x, buf)
			return nil
		}
	case *[]byte:
		if x == nil {
			return errorf("nil *[]byte")
		}
		if elemSize != 1 {
			*x = slices.Clone(buf)
			return nil
		}
	}
	rv := reflect.ValueOf(out)
	switch rv.Kind() {
	case reflect.Slice:
		if rv.Len() != ncpu {
			return errorf("per-CPU slice %v has %d elements, need %d", rv.Type(), rv.Len(), ncpu)
		}
	case reflect.Pointer:
		if rv.IsNil() {
			return errorf("nil %v", rv.Type())
		}
		st := rv.Type().Elem()
		if st.Kind() != reflect.Slice {
			return errorf("per-CPU value requires a slice or a pointer to a slice, got %v", rv.Type())
		}
		s := reflect.MakeSlice(st, ncpu, ncpu)
		if et := st.Elem(); et.Kind() == reflect.Pointer {
			for i := range ncpu {
				s.Index(i).Set(reflect.New(et.Elem()))
			}
		}
		// Set would make out escape, although it only stores the new slice
		// (heap memory) into *out; hiding the flow is sound (see hide).
		(*hide(&rv)).Elem().Set(s)
		rv = s
	default:
		return errorf("per-CPU value requires a slice or a pointer to a slice, got %v", rv.Type())
	}
	return decodePerCPU(rv, elemSize, stride, buf)
}

// UnmarshalPerCPUBatch writes the per-CPU values of a batch lookup (buf:
// count*ncpu*stride bytes) into out, as cilium/ebpf's BatchLookup does:
//
//   - if out's memory is exactly len(buf) bytes of fixed-size data without
//     padding ([]byte, []uint64, *[]T or a pointer to an array, ...), buf is
//     copied into it verbatim (cilium/ebpf lets the kernel write there).
//   - otherwise out must be a slice of exactly count*ncpu elements; CPU c of
//     entry i goes to element i*ncpu+c with the element rules of
//     [UnmarshalPerCPU] (no allocation, pointer elements must be non-nil).
func UnmarshalPerCPUBatch(out any, buf []byte, count, elemSize, ncpu int) error {
	stride, err := checkPerCPU(elemSize, ncpu, count, len(buf))
	if err != nil {
		return err
	}
	if out == nil {
		return errorf("can't unmarshal per-CPU values into a nil value")
	}
	rv := reflect.ValueOf(out)
	if mem, ok := copyRegion(rv); ok && len(mem) == len(buf) {
		copy(mem, buf)
		return nil
	}
	if rv.Kind() != reflect.Slice {
		return errorf("batch per-CPU values require a slice, got %v", rv.Type())
	}
	if rv.Len() != count*ncpu {
		return errorf("per-CPU slice %v has %d elements, need %d (%d values * %d CPUs)", rv.Type(), rv.Len(), count*ncpu, count, ncpu)
	}
	return decodePerCPU(rv, elemSize, stride, buf)
}

// copyRegion returns the memory behind rv if buf bytes can be copied into it
// verbatim: a non-nil pointer to a copyIn type, or a slice (or non-nil
// pointer to a slice) of copyIn elements.
func copyRegion(rv reflect.Value) ([]byte, bool) {
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil, false
		}
		et := rv.Type().Elem()
		if et.Kind() == reflect.Slice {
			return copyRegion(rv.Elem())
		}
		ti := infoOf(et)
		if !ti.copyIn {
			return nil, false
		}
		// Sound: a live, pointer-free value of memSize bytes.
		return unsafe.Slice((*byte)(rv.UnsafePointer()), ti.memSize), true
	case reflect.Slice:
		ti := infoOf(rv.Type().Elem())
		if !ti.copyIn {
			return nil, false
		}
		n := rv.Len() * int(ti.memSize)
		if n == 0 {
			return []byte{}, true
		}
		// Sound: the backing array holds Len pointer-free elements
		// contiguously.
		return unsafe.Slice((*byte)(rv.UnsafePointer()), n), true
	}
	return nil, false
}

// decodePerCPU decodes the stride-sized slots of buf (len(buf) ==
// sv.Len()*stride) into the elements of the slice sv.
func decodePerCPU(sv reflect.Value, elemSize, stride int, buf []byte) error {
	et := sv.Type().Elem()
	ti := infoOf(et)
	n := sv.Len()
	if !ti.ptrUnmarshaler && ti.binSize >= 0 {
		// Fixed-size elements: decode straight into the backing array.
		if !ti.decodable {
			return errorf("can't unmarshal into %v: fields must be exported", et)
		}
		if ti.binSize != elemSize {
			return sizeError(et, ti.binSize, elemSize)
		}
		if n == 0 {
			return nil
		}
		p := sv.UnsafePointer()
		for i := range n {
			// Sound: i < len, so the element is inside the backing array.
			decodeMem(ti, unsafe.Add(p, uintptr(i)*ti.memSize), buf[i*stride:])
		}
		return nil
	}
	isPtr := et.Kind() == reflect.Pointer
	var top *topInfo
	if isPtr {
		top = topOf(et)
	} else {
		top = topOf(reflect.PointerTo(et))
	}
	for i := range n {
		ev := sv.Index(i)
		chunk := buf[i*stride : i*stride+elemSize]
		var err error
		switch {
		case !isPtr:
			err = unmarshalPtr(ev.Addr(), top, chunk)
		case ev.IsNil():
			err = errorf("per-CPU slice %v: elements cannot be nil", sv.Type())
		default:
			err = unmarshalPtr(ev, top, chunk)
		}
		if err != nil {
			return fmt.Errorf("cpu %d: %w", i, err)
		}
	}
	return nil
}

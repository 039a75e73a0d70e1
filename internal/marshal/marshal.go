package marshal

import (
	"encoding"
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"syscall"
	"unsafe"
)

// errorf returns an error wrapping syscall.EINVAL. Callers describe values
// through reflect.TypeOf only: formatting a value itself would make it
// escape to the heap.
func errorf(format string, args ...any) error {
	return fmt.Errorf("marshal: "+format+": %w", append(args, syscall.EINVAL)...)
}

// sizeError reports that a value of type t has n bytes where want are needed.
func sizeError(t reflect.Type, n, want int) error {
	return errorf("%v encodes to %d bytes, map expects %d", t, n, want)
}

// methodError wraps an error returned by a user (Un)MarshalBinary method so
// that it matches both the original error and syscall.EINVAL.
func methodError(t reflect.Type, method string, err error) error {
	return fmt.Errorf("marshal: %v.%s: %w: %w", t, method, err, syscall.EINVAL)
}

// hide returns p unchanged while hiding from escape analysis that the result
// is derived from p.
//
// It is used only to call MarshalBinary/UnmarshalBinary through an interface
// built from the caller's argument: an interface method call makes the
// compiler assume the receiver escapes, which would force every key and
// value passed to the public map API onto the heap. This is sound as long as
// the method does not retain its receiver after returning (documented
// package contract): the caller keeps the original value alive and in place
// for the whole call, and the result is held in a pointer-typed variable, so
// the garbage collector and stack copying still see and adjust it.
func hide[T any](p *T) *T {
	x := uintptr(unsafe.Pointer(p))
	// Reinterpreting the uintptr variable's memory as a pointer breaks the
	// data flow that escape analysis follows; no arithmetic is involved.
	return *(**T)(unsafe.Pointer(&x))
}

// ptrBytes returns the n bytes at p as a slice.
//
// Sound when p points at a live object of at least n bytes containing no
// pointers (callers only pass pointers to pointer-free fixed-size types whose
// size they checked): byte has alignment 1 and the GC keeps the object alive
// through the returned slice.
func ptrBytes[T any](p *T, n int) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), n)
}

// hideBytes returns b's bytes as a slice that escape analysis does not
// connect to b (see hide): views of the caller's keys and values go into
// map commands through interfaces, which would otherwise move every key and
// value argument to the heap. The map layer only reads or writes such views
// during the call that received them.
func hideBytes(b []byte) []byte {
	if len(b) == 0 {
		return []byte{}
	}
	return unsafe.Slice(hide(&b[0]), len(b))
}

// scratchBuf returns scratch[:size] if it is large enough, else a new slice.
func scratchBuf(scratch []byte, size int) []byte {
	if cap(scratch) >= size {
		return scratch[:size]
	}
	return make([]byte, size)
}

// encodeScalar encodes the scalar x into a size-byte buffer taken from scratch.
func encodeScalar[T uint8 | uint16 | uint32 | uint64](x T, size int, scratch []byte) ([]byte, error) {
	n := int(unsafe.Sizeof(x))
	if size != n {
		return nil, sizeError(reflect.TypeFor[T](), n, size)
	}
	buf := scratchBuf(scratch, size)
	switch n {
	case 1:
		buf[0] = byte(x)
	case 2:
		binary.NativeEndian.PutUint16(buf, uint16(x))
	case 4:
		binary.NativeEndian.PutUint32(buf, uint32(x))
	default:
		binary.NativeEndian.PutUint64(buf, uint64(x))
	}
	return buf, nil
}

// viewPtr returns the memory of the fixed-size pointee of p (of type T) if
// it is exactly size bytes long.
func viewPtr[T any](p *T, size int) ([]byte, error) {
	if p == nil {
		return nil, errorf("nil %v", reflect.TypeFor[*T]())
	}
	if n := int(unsafe.Sizeof(*p)); n != size {
		return nil, sizeError(reflect.TypeFor[*T](), n, size)
	}
	return ptrBytes(hide(p), size), nil
}

// Bytes returns the bytes of v, exactly size long, following cilium/ebpf's
// rules for map keys and values:
//
//   - []byte: returned as is; its length must equal size.
//   - unsafe.Pointer: trusted to point at size readable bytes; a view of
//     them is returned. nil is rejected.
//   - string: a view of its bytes (must not be written to).
//   - encoding.BinaryMarshaler: the result of MarshalBinary, which must be
//     size bytes long.
//   - a pointer to a fixed-size value (encoding/binary's definition) or a
//     slice / pointer to a slice of fixed-size values: a view of the
//     caller's memory when the type has no padding (and bool fields hold
//     0/1), else its encoding/binary encoding in native byte order.
//   - a fixed-size value passed by value: its encoding.
//
// For []byte, unsafe.Pointer and pointers to fixed-size values without
// padding it returns a view of the caller's memory (no copy, no allocation);
// otherwise it encodes into scratch when cap(scratch) >= size (else
// allocates). The returned slice must not be written to and is only valid
// until v changes. v does not escape. A nil v, a nil pointer, a wrong size or
// an unsupported type returns an error that wraps syscall.EINVAL and names
// the Go type and the sizes.
func Bytes(v any, size int, scratch []byte) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return nil, errorf("can't marshal a nil value")
	case []byte:
		if len(x) != size {
			return nil, sizeError(reflect.TypeFor[[]byte](), len(x), size)
		}
		return hideBytes(x), nil
	case unsafe.Pointer:
		if x == nil {
			return nil, errorf("can't marshal a nil unsafe.Pointer")
		}
		if size < 0 {
			return nil, errorf("invalid size %d", size)
		}
		// Sound by contract: the caller guarantees x points at size bytes.
		return hideBytes(unsafe.Slice((*byte)(x), size)), nil
	case *uint32:
		return viewPtr(x, size)
	case *uint64:
		return viewPtr(x, size)
	case *uint16:
		return viewPtr(x, size)
	case *uint8:
		return viewPtr(x, size)
	case *int32:
		return viewPtr(x, size)
	case *int64:
		return viewPtr(x, size)
	case *int16:
		return viewPtr(x, size)
	case *int8:
		return viewPtr(x, size)
	case *[4]byte:
		return viewPtr(x, size)
	case *[6]byte:
		return viewPtr(x, size)
	case *[8]byte:
		return viewPtr(x, size)
	case *[16]byte:
		return viewPtr(x, size)
	case *[32]byte:
		return viewPtr(x, size)
	case uint32:
		return encodeScalar(x, size, scratch)
	case uint64:
		return encodeScalar(x, size, scratch)
	case uint16:
		return encodeScalar(x, size, scratch)
	case uint8:
		return encodeScalar(x, size, scratch)
	case int32:
		return encodeScalar(uint32(x), size, scratch)
	case int64:
		return encodeScalar(uint64(x), size, scratch)
	case int16:
		return encodeScalar(uint16(x), size, scratch)
	case int8:
		return encodeScalar(uint8(x), size, scratch)
	case string:
		if len(x) != size {
			return nil, sizeError(reflect.TypeFor[string](), len(x), size)
		}
		// Sound: a view of the string's bytes, documented as read-only.
		return hideBytes(unsafe.Slice(unsafe.StringData(x), len(x))), nil
	case encoding.BinaryMarshaler:
		return marshalBinary(x, size)
	}
	// Fast path: pointers to, and slices of, types whose memory is their
	// encoding are viewed directly.
	if top, data := topOfAny(&v); top.elem != nil && top.elem.view {
		if mem, ok := memOf(top, data); ok && len(mem) == size {
			return hideBytes(mem), nil
		}
	}
	return bytesReflect(reflect.ValueOf(v), size, scratch)
}

// marshalBinary calls m.MarshalBinary and checks the length of the result.
func marshalBinary(m encoding.BinaryMarshaler, size int) ([]byte, error) {
	t := reflect.TypeOf(m)
	if isNilPointer(reflect.ValueOf(m)) {
		return nil, errorf("nil %v", t)
	}
	buf, err := (*hide(&m)).MarshalBinary()
	if err != nil {
		return nil, methodError(t, "MarshalBinary", err)
	}
	if len(buf) != size {
		return nil, errorf("%v.MarshalBinary returned %d bytes, map expects %d", t, len(buf), size)
	}
	return buf, nil
}

// unmarshalBinary calls u.UnmarshalBinary(buf).
func unmarshalBinary(u encoding.BinaryUnmarshaler, buf []byte) error {
	t := reflect.TypeOf(u)
	if isNilPointer(reflect.ValueOf(u)) {
		return errorf("nil %v", t)
	}
	if err := (*hide(&u)).UnmarshalBinary(buf); err != nil {
		return methodError(t, "UnmarshalBinary", err)
	}
	return nil
}

func isNilPointer(rv reflect.Value) bool {
	return rv.Kind() == reflect.Pointer && rv.IsNil()
}

// bytesReflect implements Bytes for the types not handled by its type
// switch, and the per-element rules of per-CPU values.
func bytesReflect(rv reflect.Value, size int, scratch []byte) ([]byte, error) {
	top := topOf(rv.Type())
	t := top.typ
	switch top.form {
	case formPtr:
		if rv.IsNil() {
			return nil, errorf("nil %v", t)
		}
		ti := top.elem
		if ti.binSize < 0 {
			return nil, errorf("%v is not a pointer to a fixed-size type", t)
		}
		if ti.binSize != size {
			return nil, sizeError(t, ti.binSize, size)
		}
		p := rv.UnsafePointer()
		if ti.view {
			// Sound: p points at a live pointer-free value of binSize ==
			// memSize bytes.
			return hideBytes(unsafe.Slice((*byte)(p), size)), nil
		}
		buf := scratchBuf(scratch, size)
		encodeMem(ti, p, buf)
		return buf, nil
	case formPtrSlice:
		if rv.IsNil() {
			return nil, errorf("nil %v", t)
		}
		return sliceBytes(rv.Elem(), top.elem, t, size, scratch)
	case formSlice:
		return sliceBytes(rv, top.elem, t, size, scratch)
	case formValue:
		ti := top.elem
		if ti.binSize != size {
			return nil, sizeError(t, ti.binSize, size)
		}
		buf := scratchBuf(scratch, size)
		encodeValue(ti, rv, buf)
		return buf, nil
	}
	if top.isString { // per-CPU elements; top-level strings never get here
		if rv.Len() != size {
			return nil, sizeError(t, rv.Len(), size)
		}
		buf := scratchBuf(scratch, size)
		copy(buf, rv.String())
		return buf, nil
	}
	return nil, errorf("%v is not a fixed-size type", t)
}

// sliceBytes implements Bytes for the slice sv with element info ti; t is
// the type the caller passed (the slice type or a pointer to it).
func sliceBytes(sv reflect.Value, ti *typeInfo, t reflect.Type, size int, scratch []byte) ([]byte, error) {
	if ti.binSize < 0 {
		return nil, errorf("%v is not a slice of a fixed-size type", t)
	}
	n := sv.Len()
	if n*ti.binSize != size {
		return nil, sizeError(t, n*ti.binSize, size)
	}
	if size == 0 {
		return []byte{}, nil
	}
	p := sv.UnsafePointer()
	if ti.view {
		// Sound: the backing array holds n pointer-free elements of
		// memSize == binSize bytes each, contiguously.
		return hideBytes(unsafe.Slice((*byte)(p), size)), nil
	}
	buf := scratchBuf(scratch, size)
	for i := range n {
		// Sound: i < len, so the element is inside the backing array.
		encodeMem(ti, unsafe.Add(p, uintptr(i)*ti.memSize), buf[i*ti.binSize:])
	}
	return buf, nil
}

// copyPtr copies buf into the fixed-size pointee of p (of type T).
func copyPtr[T any](p *T, buf []byte) error {
	if p == nil {
		return errorf("nil %v", reflect.TypeFor[*T]())
	}
	if n := int(unsafe.Sizeof(*p)); n != len(buf) {
		return sizeError(reflect.TypeFor[*T](), n, len(buf))
	}
	copy(ptrBytes(p, len(buf)), buf)
	return nil
}

// Unmarshal writes buf into out (a valueOut/keyOut argument), following
// cilium/ebpf's rules:
//
//   - encoding.BinaryUnmarshaler: UnmarshalBinary(buf) (checked first, as
//     cilium/ebpf does; a nil pointer receiver is rejected).
//   - []byte: buf is copied into it; its length must equal len(buf).
//   - *[]byte: if len(*out) == len(buf) buf is copied into the existing
//     slice (cilium/ebpf lets the kernel write into it), otherwise *out is
//     replaced by a copy of buf.
//   - *string: *out = string(buf).
//   - unsafe.Pointer: trusted to point at len(buf) writable bytes.
//   - a pointer to a fixed-size value, or a slice / pointer to a slice of
//     fixed-size values: decoded as encoding/binary would (a plain copy when
//     the type has no padding); the encoded size must equal len(buf). Slices
//     are never resized.
//
// out does not escape. A nil out, nil pointer, wrong size or unsupported type
// (including non-pointer values, which could not be written to) returns an
// error wrapping syscall.EINVAL.
func Unmarshal(out any, buf []byte) error {
	switch x := out.(type) {
	case nil:
		return errorf("can't unmarshal into a nil value")
	case *uint32:
		return copyPtr(x, buf)
	case *uint64:
		return copyPtr(x, buf)
	case *uint16:
		return copyPtr(x, buf)
	case *uint8:
		return copyPtr(x, buf)
	case *int32:
		return copyPtr(x, buf)
	case *int64:
		return copyPtr(x, buf)
	case *int16:
		return copyPtr(x, buf)
	case *int8:
		return copyPtr(x, buf)
	case *[4]byte:
		return copyPtr(x, buf)
	case *[6]byte:
		return copyPtr(x, buf)
	case *[8]byte:
		return copyPtr(x, buf)
	case *[16]byte:
		return copyPtr(x, buf)
	case *[32]byte:
		return copyPtr(x, buf)
	case []byte:
		if len(x) != len(buf) {
			return sizeError(reflect.TypeFor[[]byte](), len(x), len(buf))
		}
		copy(x, buf)
		return nil
	case unsafe.Pointer:
		if x == nil {
			return errorf("can't unmarshal into a nil unsafe.Pointer")
		}
		// Sound by contract: the caller guarantees x points at len(buf)
		// writable bytes.
		copy(unsafe.Slice((*byte)(x), len(buf)), buf)
		return nil
	case *[]byte:
		return unmarshalByteSlice(x, buf)
	case *string:
		if x == nil {
			return errorf("nil *string")
		}
		*x = string(buf)
		return nil
	case encoding.BinaryUnmarshaler:
		return unmarshalBinary(x, buf)
	}
	// Fast path: pointers to, and slices of, types any bytes can be copied
	// into.
	top, data := topOfAny(&out)
	if top.elem != nil && top.elem.copyIn {
		if mem, ok := memOf(top, data); ok && len(mem) == len(buf) {
			copy(mem, buf)
			return nil
		}
	}
	rv := reflect.ValueOf(out)
	switch top.form {
	case formPtr, formPtrSlice:
		if rv.IsNil() {
			return errorf("nil %v", top.typ)
		}
		return unmarshalPtr(rv, top, buf)
	case formSlice:
		return unmarshalSlice(rv, top.elem, top.typ, buf)
	}
	return errorf("can't unmarshal into %v: need a pointer or a slice", top.typ)
}

func unmarshalByteSlice(p *[]byte, buf []byte) error {
	if p == nil {
		return errorf("nil *[]byte")
	}
	if len(*p) == len(buf) {
		copy(*p, buf)
	} else {
		*p = slices.Clone(buf)
	}
	return nil
}

// unmarshalPtr implements Unmarshal for the non-nil pointer pv whose type
// is described by top. It applies the BinaryUnmarshaler rule itself, for
// per-CPU elements.
func unmarshalPtr(pv reflect.Value, top *topInfo, buf []byte) error {
	t := top.typ
	if top.unmarshaler {
		// Interface may leak pv (escape analysis cannot see through it); the
		// method call is hidden anyway, see hide.
		return unmarshalBinary((*hide(&pv)).Interface().(encoding.BinaryUnmarshaler), buf)
	}
	if top.isBytes {
		// Sound: pv is a non-nil *[]byte.
		return unmarshalByteSlice((*[]byte)(pv.UnsafePointer()), buf)
	}
	if top.isString {
		// Sound: pv is a non-nil *string.
		*(*string)(pv.UnsafePointer()) = string(buf)
		return nil
	}
	if top.form == formPtrSlice {
		return unmarshalSlice(pv.Elem(), top.elem, t, buf)
	}
	ti := top.elem
	if !ti.decodable {
		return errorf("can't unmarshal into %v: not a pointer to a fixed-size type with exported fields", t)
	}
	if ti.binSize != len(buf) {
		return sizeError(t, ti.binSize, len(buf))
	}
	decodeMem(ti, pv.UnsafePointer(), buf)
	return nil
}

// unmarshalSlice decodes buf into the elements of the slice sv (element
// info ti) without resizing it; t is the type the caller passed.
func unmarshalSlice(sv reflect.Value, ti *typeInfo, t reflect.Type, buf []byte) error {
	if !ti.decodable {
		return errorf("can't unmarshal into %v: not a slice of a fixed-size type with exported fields", t)
	}
	n := sv.Len()
	if n*ti.binSize != len(buf) {
		return sizeError(t, n*ti.binSize, len(buf))
	}
	if len(buf) == 0 {
		return nil
	}
	p := sv.UnsafePointer()
	if ti.copyIn {
		// Sound: the backing array holds n pointer-free elements without
		// padding, len(buf) bytes in total, and any byte pattern is valid.
		copy(unsafe.Slice((*byte)(p), len(buf)), buf)
		return nil
	}
	for i := range n {
		// Sound: i < len, so the element is inside the backing array.
		decodeMem(ti, unsafe.Add(p, uintptr(i)*ti.memSize), buf[i*ti.binSize:])
	}
	return nil
}

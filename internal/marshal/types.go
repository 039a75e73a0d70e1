package marshal

import (
	"encoding"
	"encoding/binary"
	"math"
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// typeInfo describes how values of one Go type map to encoding/binary's
// fixed-size encoding. It is computed once per reflect.Type and cached.
type typeInfo struct {
	kind reflect.Kind
	// binSize is what binary.Size reports for one value of the type: the
	// length of its encoding, or -1 if encoding/binary cannot encode it
	// (int, uint, uintptr, strings, pointers, slices, maps, chans, funcs,
	// interfaces, or aggregates containing any of them). Top-level pointers
	// and slices are resolved by the callers, never through this field.
	binSize int
	// memSize is reflect.Type.Size.
	memSize uintptr
	// view reports that the in-memory representation of a value is exactly
	// its encoding: binSize == memSize, i.e. no padding anywhere. Blank (_)
	// fields are part of the view, as in cilium/ebpf (encoding/binary would
	// write zeros for them; their memory is zero unless set through unsafe).
	view bool
	// copyIn reports that any encoding can be copied verbatim into memory:
	// view, no bool (a byte other than 0/1 would be an invalid Go bool; the
	// codec stores b != 0 like encoding/binary instead) and no unexported
	// non-blank field (cilium/ebpf excludes those from zero-copy).
	copyIn bool
	// decodable reports that encoding/binary could decode into the type:
	// binSize >= 0 and no unexported non-blank fields. encoding/binary (and
	// therefore cilium/ebpf) panics on unexported fields; we return an error.
	decodable bool
	// hasBool reports that the type contains a bool somewhere.
	hasBool bool
	// Method sets, checked once instead of with a type assertion per call.
	marshaler, ptrMarshaler     bool // T, *T implement encoding.BinaryMarshaler
	unmarshaler, ptrUnmarshaler bool // T, *T implement encoding.BinaryUnmarshaler

	elem   *typeInfo // array element (nil for other kinds)
	n      int       // array length
	fields []fieldInfo
}

type fieldInfo struct {
	off   uintptr
	blank bool // named "_": encoded as zeros, skipped when decoding
	info  *typeInfo
}

var (
	typeCache sync.Map // reflect.Type -> *typeInfo

	marshalerType   = reflect.TypeFor[encoding.BinaryMarshaler]()
	unmarshalerType = reflect.TypeFor[encoding.BinaryUnmarshaler]()
)

// infoOf returns the cached typeInfo of t, computing it on first use.
func infoOf(t reflect.Type) *typeInfo {
	if ti, ok := typeCache.Load(t); ok {
		return ti.(*typeInfo)
	}
	ti, _ := typeCache.LoadOrStore(t, newTypeInfo(t))
	return ti.(*typeInfo)
}

// newTypeInfo computes the typeInfo of t. It only descends into arrays and
// struct fields, which cannot form cycles, so it always terminates.
func newTypeInfo(t reflect.Type) *typeInfo {
	ti := &typeInfo{
		kind:           t.Kind(),
		binSize:        -1,
		memSize:        t.Size(),
		marshaler:      t.Implements(marshalerType),
		ptrMarshaler:   reflect.PointerTo(t).Implements(marshalerType),
		unmarshaler:    t.Implements(unmarshalerType),
		ptrUnmarshaler: reflect.PointerTo(t).Implements(unmarshalerType),
	}
	exported := true // no unexported non-blank field anywhere inside
	switch ti.kind {
	case reflect.Bool:
		ti.binSize = 1
		ti.hasBool = true
	case reflect.Int8, reflect.Uint8, reflect.Int16, reflect.Uint16,
		reflect.Int32, reflect.Uint32, reflect.Int64, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128:
		ti.binSize = int(t.Size())
	case reflect.Array:
		ti.elem = infoOf(t.Elem())
		ti.n = t.Len()
		if ti.elem.binSize >= 0 {
			ti.binSize = ti.elem.binSize * ti.n
			exported = ti.elem.decodable
			ti.hasBool = ti.elem.hasBool
		}
	case reflect.Struct:
		sum := 0
		for i := range t.NumField() {
			f := t.Field(i)
			fi := fieldInfo{off: f.Offset, blank: f.Name == "_", info: infoOf(f.Type)}
			if fi.info.binSize < 0 {
				sum = -1
				break
			}
			sum += fi.info.binSize
			if !fi.blank && (!f.IsExported() || !fi.info.decodable) {
				exported = false
			}
			ti.hasBool = ti.hasBool || fi.info.hasBool
			ti.fields = append(ti.fields, fi)
		}
		ti.binSize = sum
		if sum < 0 {
			ti.fields = nil
		}
	}
	if ti.binSize >= 0 {
		ti.view = uintptr(ti.binSize) == ti.memSize && viewable(ti)
		ti.decodable = exported
		ti.copyIn = ti.view && exported && !ti.hasBool
	}
	return ti
}

// viewable reports that no part of ti has padding (sizes of encoded and
// in-memory representation agree at every level, so offsets agree too).
func viewable(ti *typeInfo) bool {
	switch ti.kind {
	case reflect.Array:
		return uintptr(ti.elem.binSize) == ti.elem.memSize && viewable(ti.elem)
	case reflect.Struct:
		off := uintptr(0)
		for _, f := range ti.fields {
			if f.off != off || uintptr(f.info.binSize) != f.info.memSize || !viewable(f.info) {
				return false
			}
			off += f.info.memSize
		}
		return off == ti.memSize
	}
	return true
}

// encodeMem writes the encoding of the value of type ti at p into
// dst[:ti.binSize].
//
// p must point at a live value of the type described by ti; every access
// below stays within that value because offsets and sizes come from
// reflect for that very type.
func encodeMem(ti *typeInfo, p unsafe.Pointer, dst []byte) {
	if ti.view {
		// Sound: the value occupies memSize == binSize bytes at p and its
		// memory is its encoding; reading it as bytes is fine because byte
		// has alignment 1 and the type holds no pointers.
		copy(dst[:ti.binSize], unsafe.Slice((*byte)(p), ti.binSize))
		return
	}
	switch ti.kind {
	case reflect.Array:
		es, eb := ti.elem.memSize, ti.elem.binSize
		for i := range ti.n {
			// Sound: i < n, so the element lies within the array.
			encodeMem(ti.elem, unsafe.Add(p, uintptr(i)*es), dst[i*eb:])
		}
	case reflect.Struct:
		off := 0
		for _, f := range ti.fields {
			if f.blank {
				clear(dst[off : off+f.info.binSize])
			} else {
				// Sound: f.off is the field's offset within the struct.
				encodeMem(f.info, unsafe.Add(p, f.off), dst[off:])
			}
			off += f.info.binSize
		}
	default:
		// Only bool is not a view among the scalar kinds.
		// Sound: p points at a bool.
		dst[0] = 0
		if *(*bool)(p) {
			dst[0] = 1
		}
	}
}

// decodeMem reads src[:ti.binSize] into the value of type ti at p. ti must
// be decodable.
//
// p must point at a live, writable value of the type described by ti.
func decodeMem(ti *typeInfo, p unsafe.Pointer, src []byte) {
	if ti.copyIn {
		// Sound: the value occupies binSize bytes at p, has no padding and
		// holds no pointers, and every byte pattern is a valid value.
		copy(unsafe.Slice((*byte)(p), ti.binSize), src[:ti.binSize])
		return
	}
	switch ti.kind {
	case reflect.Array:
		es, eb := ti.elem.memSize, ti.elem.binSize
		for i := range ti.n {
			// Sound: i < n, so the element lies within the array.
			decodeMem(ti.elem, unsafe.Add(p, uintptr(i)*es), src[i*eb:])
		}
	case reflect.Struct:
		off := 0
		for _, f := range ti.fields {
			if !f.blank {
				// Sound: f.off is the field's offset within the struct.
				decodeMem(f.info, unsafe.Add(p, f.off), src[off:])
			}
			off += f.info.binSize
		}
	case reflect.Bool:
		// Sound: p points at a bool; encoding/binary decodes b != 0.
		*(*bool)(p) = src[0] != 0
	default:
		// A view scalar of a type that is not copyIn cannot exist; numbers
		// are always copyIn. Kept for completeness.
		copy(unsafe.Slice((*byte)(p), ti.binSize), src[:ti.binSize])
	}
}

// encodeValue writes the encoding of rv (of a type described by ti, with
// binSize >= 0) into dst[:ti.binSize]. It reads through reflect, so it also
// works for values that are not addressable (values passed by value in an
// interface).
func encodeValue(ti *typeInfo, rv reflect.Value, dst []byte) {
	ne := binary.NativeEndian
	switch ti.kind {
	case reflect.Bool:
		dst[0] = 0
		if rv.Bool() {
			dst[0] = 1
		}
	case reflect.Int8:
		dst[0] = byte(rv.Int())
	case reflect.Uint8:
		dst[0] = byte(rv.Uint())
	case reflect.Int16:
		ne.PutUint16(dst, uint16(rv.Int()))
	case reflect.Uint16:
		ne.PutUint16(dst, uint16(rv.Uint()))
	case reflect.Int32:
		ne.PutUint32(dst, uint32(rv.Int()))
	case reflect.Uint32:
		ne.PutUint32(dst, uint32(rv.Uint()))
	case reflect.Int64:
		ne.PutUint64(dst, uint64(rv.Int()))
	case reflect.Uint64:
		ne.PutUint64(dst, rv.Uint())
	case reflect.Float32:
		ne.PutUint32(dst, math.Float32bits(float32(rv.Float())))
	case reflect.Float64:
		ne.PutUint64(dst, math.Float64bits(rv.Float()))
	case reflect.Complex64:
		c := rv.Complex()
		ne.PutUint32(dst, math.Float32bits(float32(real(c))))
		ne.PutUint32(dst[4:], math.Float32bits(float32(imag(c))))
	case reflect.Complex128:
		c := rv.Complex()
		ne.PutUint64(dst, math.Float64bits(real(c)))
		ne.PutUint64(dst[8:], math.Float64bits(imag(c)))
	case reflect.Array:
		eb := ti.elem.binSize
		for i := range ti.n {
			encodeValue(ti.elem, rv.Index(i), dst[i*eb:])
		}
	case reflect.Struct:
		off := 0
		for i, f := range ti.fields {
			if f.blank {
				clear(dst[off : off+f.info.binSize])
			} else {
				encodeValue(f.info, rv.Field(i), dst[off:])
			}
			off += f.info.binSize
		}
	}
}

// Forms of the top-level Go type passed to Bytes or Unmarshal.
const (
	formOther    = iota // anything else (maps, chans, unsafe pointer types, ...)
	formValue           // a value of a type encoding/binary can encode
	formPtr             // a pointer to a non-slice type (elem: the pointee)
	formSlice           // a slice (elem: the slice element)
	formPtrSlice        // a pointer to a slice (elem: the slice element)
)

// topInfo caches what Bytes and Unmarshal need to know about the dynamic
// type of their argument, so that the reflect path costs one cache lookup.
type topInfo struct {
	typ  reflect.Type
	id   uintptr // address of the runtime type descriptor, see topOf
	form int
	elem *typeInfo
	// isBytes / isString: the pointee (formPtr) or slice element type is
	// exactly []byte / string, which have special rules.
	isBytes, isString bool
	// unmarshaler: the type itself implements encoding.BinaryUnmarshaler.
	unmarshaler bool
}

// topCache is a direct-mapped, lock-free cache in front of topSlow: each slot
// holds an immutable *topInfo; a collision simply replaces the slot.
var (
	topCache [512]atomic.Pointer[topInfo]
	topSlow  sync.Map // reflect.Type -> *topInfo
)

// topOf returns the topInfo of t.
func topOf(t reflect.Type) *topInfo {
	// The dynamic value of a reflect.Type is a pointer to the runtime's
	// type descriptor, which is unique per type and never freed (and ti.typ
	// keeps it reachable anyway), so its address identifies the type and
	// serves as the hash. Comparing it is cheaper than comparing interfaces.
	return topOfID(t, reflect.ValueOf(t).Pointer())
}

// eface mirrors the memory layout of an empty interface value: a pointer to
// the dynamic type's descriptor followed by the data word. This layout is
// part of Go's ABI (internal/abi.EmptyInterface) and has not changed since
// Go 1.4.
type eface struct {
	typ  unsafe.Pointer
	data unsafe.Pointer
}

// topOfAny returns the topInfo of the dynamic type of *v (non-nil) and its
// data word. It is the hot-path equivalent of
// topOf(reflect.TypeOf(*v)) + reflect.ValueOf(*v).UnsafePointer().
func topOfAny(v *any) (*topInfo, unsafe.Pointer) {
	// Sound: *any has exactly the eface layout; only the two words are
	// read and v outlives the call.
	e := (*eface)(unsafe.Pointer(v))
	h := uintptr(e.typ)
	if ti := topCache[(h>>4^h>>13)%uintptr(len(topCache))].Load(); ti != nil && ti.id == h {
		return ti, e.data
	}
	return topOfID(reflect.TypeOf(*v), h), e.data
}

// memOf returns the memory of the value described by top whose eface data
// word is data, for the forms that can be viewed or copied directly: a
// non-nil pointer (formPtr), a slice (formSlice) or a non-nil pointer to a
// slice (formPtrSlice). It returns ok == false for nil pointers and other
// forms. The caller checks top.elem.view / copyIn.
func memOf(top *topInfo, data unsafe.Pointer) (mem []byte, ok bool) {
	switch top.form {
	case formPtr:
		if data == nil {
			return nil, false
		}
		// Sound: pointer types are stored directly in the data word, which
		// thus points at a live value of memSize bytes.
		return unsafe.Slice((*byte)(data), top.elem.memSize), true
	case formSlice, formPtrSlice:
		if data == nil {
			return nil, false
		}
		// Sound: for formSlice the data word points at the slice header
		// (slices are stored indirectly), for formPtrSlice it is the *[]T
		// itself. Every slice header has the layout of []byte (pointer, len,
		// cap); we only read its pointer and length and rescale the length
		// from elements to bytes.
		hdr := *(*[]byte)(data)
		return unsafe.Slice(unsafe.SliceData(hdr), uintptr(len(hdr))*top.elem.memSize), true
	}
	return nil, false
}

func topOfID(t reflect.Type, h uintptr) *topInfo {
	slot := &topCache[(h>>4^h>>13)%uintptr(len(topCache))]
	if ti := slot.Load(); ti != nil && ti.id == h {
		return ti
	}
	var ti *topInfo
	if v, ok := topSlow.Load(t); ok {
		ti = v.(*topInfo)
	} else {
		v, _ := topSlow.LoadOrStore(t, newTopInfo(t, h))
		ti = v.(*topInfo)
	}
	slot.Store(ti)
	return ti
}

func newTopInfo(t reflect.Type, id uintptr) *topInfo {
	ti := &topInfo{typ: t, id: id, form: formOther, unmarshaler: t.Implements(unmarshalerType)}
	switch t.Kind() {
	case reflect.Pointer:
		et := t.Elem()
		if et.Kind() == reflect.Slice {
			ti.form = formPtrSlice
			ti.elem = infoOf(et.Elem())
		} else {
			ti.form = formPtr
			ti.elem = infoOf(et)
		}
		ti.isBytes = et == reflect.TypeFor[[]byte]()
		ti.isString = et == reflect.TypeFor[string]()
	case reflect.Slice:
		ti.form = formSlice
		ti.elem = infoOf(t.Elem())
	default:
		if e := infoOf(t); e.binSize >= 0 {
			ti.form = formValue
			ti.elem = e
		}
		ti.isString = t == reflect.TypeFor[string]()
	}
	return ti
}

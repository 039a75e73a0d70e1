package marshal

import (
	"encoding"
	"unsafe"
)

// View returns a writable view of exactly size bytes of the caller's memory
// behind out, when Unmarshal(out, buf) would be a plain copy of buf into it:
// a []byte of length size, a non-nil unsafe.Pointer (trusted to point at
// size bytes), or a non-nil pointer to (or slice of) a type that any bytes
// can be copied into (no padding, no bool, no unexported field) and that is
// not an encoding.BinaryUnmarshaler. Map commands write their output
// straight into it, with no copy and no allocation. ok is false for every
// other out; then the caller decodes with Unmarshal. out does not escape.
func View(out any, size int) (view []byte, ok bool) {
	switch x := out.(type) {
	case nil:
		return nil, false
	case *uint32:
		return viewOut(x, size)
	case *uint64:
		return viewOut(x, size)
	case *uint16:
		return viewOut(x, size)
	case *uint8:
		return viewOut(x, size)
	case *int32:
		return viewOut(x, size)
	case *int64:
		return viewOut(x, size)
	case []byte:
		if len(x) != size || x == nil {
			return nil, false
		}
		return hideBytes(x), true
	case unsafe.Pointer:
		if x == nil || size < 0 {
			return nil, false
		}
		// Sound by contract: the caller guarantees x points at size
		// writable bytes, as for Unmarshal.
		return hideBytes(unsafe.Slice((*byte)(x), size)), true
	case encoding.BinaryUnmarshaler:
		return nil, false
	}
	top, data := topOfAny(&out)
	if top.unmarshaler || top.elem == nil || !top.elem.copyIn {
		return nil, false
	}
	if mem, ok := memOf(top, data); ok && len(mem) == size {
		return hideBytes(mem), true
	}
	return nil, false
}

// viewOut views a non-nil *T of exactly size bytes.
func viewOut[T any](p *T, size int) ([]byte, bool) {
	if p == nil || int(unsafe.Sizeof(*p)) != size {
		return nil, false
	}
	return ptrBytes(hide(p), size), true
}

// Fast is the hot path of Bytes and View for the shapes most keys and
// values take: a []byte of exactly size bytes, or a non-nil *uint32 or
// *uint64 of that size. It returns a view of the caller's memory (readable,
// and writable for outputs) and true, or false for anything else, in which
// case the caller falls back to Bytes or View. v does not escape.
func Fast(v any, size int) ([]byte, bool) {
	switch x := v.(type) {
	case []byte:
		if len(x) != size || x == nil {
			return nil, false
		}
		return hideBytes(x), true
	case *uint32:
		if x != nil && size == 4 {
			return ptrBytes(hide(x), 4), true
		}
	case *uint64:
		if x != nil && size == 8 {
			return ptrBytes(hide(x), 8), true
		}
	}
	return nil, false
}

// Fast2 is Fast for a key and a value at once: one call on the hot path.
func Fast2(k any, ks int, v any, vs int) (kb, vb []byte, ok bool) {
	switch x := k.(type) {
	case []byte:
		if len(x) != ks || x == nil {
			return nil, nil, false
		}
		kb = hideBytes(x)
	case *uint32:
		if x == nil || ks != 4 {
			return nil, nil, false
		}
		kb = ptrBytes(hide(x), 4)
	case *uint64:
		if x == nil || ks != 8 {
			return nil, nil, false
		}
		kb = ptrBytes(hide(x), 8)
	default:
		return nil, nil, false
	}
	switch x := v.(type) {
	case []byte:
		if len(x) != vs || x == nil {
			return nil, nil, false
		}
		vb = hideBytes(x)
	case *uint64:
		if x == nil || vs != 8 {
			return nil, nil, false
		}
		vb = ptrBytes(hide(x), 8)
	case *uint32:
		if x == nil || vs != 4 {
			return nil, nil, false
		}
		vb = ptrBytes(hide(x), 4)
	default:
		return nil, nil, false
	}
	return kb, vb, true
}

// Uint32Bytes views *p as 4 bytes, hidden from escape analysis like the
// other views (see hideBytes). p must not be nil.
func Uint32Bytes(p *uint32) []byte { return ptrBytes(hide(p), 4) }

// Uint64Bytes views *p as 8 bytes; p must not be nil.
func Uint64Bytes(p *uint64) []byte { return ptrBytes(hide(p), 8) }

// HideBytes returns b hidden from escape analysis (see hideBytes).
func HideBytes(b []byte) []byte { return hideBytes(b) }

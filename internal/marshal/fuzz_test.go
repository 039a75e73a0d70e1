package marshal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"syscall"
	"testing"
)

// fuzzTypes are the Go types the fuzzers decode into and encode from.
var fuzzTypes = []reflect.Type{
	reflect.TypeFor[uint8](),
	reflect.TypeFor[uint16](),
	reflect.TypeFor[int32](),
	reflect.TypeFor[uint64](),
	reflect.TypeFor[float64](),
	reflect.TypeFor[bool](),
	reflect.TypeFor[[4]byte](),
	reflect.TypeFor[[6]byte](),
	reflect.TypeFor[[20]byte](),
	reflect.TypeFor[plainStruct](),
	reflect.TypeFor[paddedStruct](),
	reflect.TypeFor[innerPadding](),
	reflect.TypeFor[blankPadded](),
	reflect.TypeFor[boolStruct](),
	reflect.TypeFor[floatStruct](),
	reflect.TypeFor[[3]paddedStruct](),
	reflect.TypeFor[binKey](),
	reflect.TypeFor[unexportedStruct](),
	reflect.TypeFor[ifaceStruct](),
}

// canonical returns what encoding/binary would produce after decoding b
// into t and encoding the result: bools become 0/1 and blank fields of
// padded types read back as zero. ok is false if encoding/binary cannot
// handle t.
func canonical(t reflect.Type, b []byte) (want []byte, ok bool) {
	if binary.Size(reflect.New(t).Interface()) != len(b) {
		return nil, false
	}
	if t == reflect.TypeFor[binKey]() || t == reflect.TypeFor[unexportedStruct]() {
		return nil, false
	}
	p := reflect.New(t)
	if _, err := binary.Decode(b, binary.NativeEndian, p.Interface()); err != nil {
		return nil, false
	}
	out, err := binary.Append(nil, binary.NativeEndian, p.Interface())
	if err != nil {
		return nil, false
	}
	if ti := infoOf(t); ti.copyIn {
		// Copied verbatim, blank fields included (cilium/ebpf's rule).
		return b, true
	}
	if t == reflect.TypeFor[floatStruct]() {
		// No bools or blank fields, so the encoding is the input. We keep
		// float bits exactly; encoding/binary converts float32 through
		// float64, which quiets signalling NaNs.
		return b, true
	}
	return out, true
}

func mustBeEINVAL(t *testing.T, err error) {
	t.Helper()
	if err != nil && !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("error %q does not wrap EINVAL", err)
	}
}

func FuzzBytesUnmarshal(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, uint8(10), int16(0))
	f.Add([]byte{1, 2, 3, 4}, uint8(16), int16(-1))
	f.Add([]byte{0, 2}, uint8(5), int16(3))
	f.Fuzz(func(t *testing.T, data []byte, sel uint8, sizeDelta int16) {
		typ := fuzzTypes[int(sel)%len(fuzzTypes)]
		p := reflect.New(typ)
		out := p.Interface()

		// Unmarshal must accept exactly the encoded size.
		err := Unmarshal(out, data)
		mustBeEINVAL(t, err)
		if err != nil {
			// Wrong sizes with a bad size delta must fail too, never panic.
			_, err = Bytes(out, len(data)+int(sizeDelta), nil)
			mustBeEINVAL(t, err)
			return
		}
		if typ == reflect.TypeFor[binKey]() {
			if k := out.(*binKey); k.v != binary.BigEndian.Uint32(data) {
				t.Fatal("UnmarshalBinary not used")
			}
		} else {
			want, ok := canonical(typ, data)
			if !ok {
				t.Fatalf("Unmarshal accepted %v, which encoding/binary rejects", typ)
			}
			// Round trip through a pointer.
			got, err := Bytes(out, len(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%T: round trip %x, want %x (input %x)", out, got, want, data)
			}
			// Values passed by value encode exactly as encoding/binary
			// encodes them (reflect reads floats through float64, like
			// encoding/binary).
			v := p.Elem().Interface()
			got, err = Bytes(v, len(data), nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := native(t, v); !bytes.Equal(got, want) {
				t.Fatalf("%T: by value %x, want %x", v, got, want)
			}
		}
		// Other sizes are rejected without panicking.
		if sizeDelta != 0 {
			_, err := Bytes(out, len(data)+int(sizeDelta), make([]byte, 0, 8))
			mustBeEINVAL(t, err)
			if err == nil {
				t.Fatal("wrong size accepted")
			}
		}
		// Slices of the type: len(data) bytes per element, 3 elements.
		s := reflect.MakeSlice(reflect.SliceOf(typ), 3, 3)
		triple := bytes.Repeat(data, 3)
		err = Unmarshal(s.Interface(), triple)
		mustBeEINVAL(t, err)
		if err == nil {
			got, err := Bytes(s.Interface(), len(triple), nil)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := canonical(typ, data)
			if !bytes.Equal(got, bytes.Repeat(want, 3)) {
				t.Fatalf("slice round trip %x", got)
			}
		}
	})
}

func FuzzPerCPU(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8}, uint8(1), uint8(2), true)
	f.Add(bytes.Repeat([]byte{0xff}, 64), uint8(10), uint8(3), false)
	f.Fuzz(func(t *testing.T, data []byte, sel, ncpuSel uint8, viaPointer bool) {
		typ := fuzzTypes[int(sel)%len(fuzzTypes)]
		ncpu := int(ncpuSel%8) + 1
		elemSize := binary.Size(reflect.New(typ).Interface())
		if typ == reflect.TypeFor[binKey]() {
			elemSize = 4
		}
		if elemSize <= 0 {
			// Unsupported element type: both directions fail cleanly.
			buf := make([]byte, ncpu*8)
			mustBeEINVAL(t, UnmarshalPerCPU(reflect.MakeSlice(reflect.SliceOf(typ), ncpu, ncpu).Interface(), buf, 8, ncpu))
			mustBeEINVAL(t, PerCPUBytes(reflect.MakeSlice(reflect.SliceOf(typ), ncpu, ncpu).Interface(), 8, ncpu, buf))
			return
		}
		stride := Stride(elemSize)
		buf := make([]byte, ncpu*stride)
		copy(buf, data)

		// Decode into a fresh slice via *[]T, or into an existing []T.
		var slice reflect.Value
		if viaPointer {
			sp := reflect.New(reflect.SliceOf(typ))
			err := UnmarshalPerCPU(sp.Interface(), buf, elemSize, ncpu)
			mustBeEINVAL(t, err)
			if err != nil {
				assertUndecodable(t, typ, err)
				return
			}
			slice = sp.Elem()
		} else {
			slice = reflect.MakeSlice(reflect.SliceOf(typ), ncpu, ncpu)
			err := UnmarshalPerCPU(slice.Interface(), buf, elemSize, ncpu)
			mustBeEINVAL(t, err)
			if err != nil {
				assertUndecodable(t, typ, err)
				return
			}
		}
		if slice.Len() != ncpu {
			t.Fatalf("len %d, want %d", slice.Len(), ncpu)
		}

		// Re-encode: each slot holds the canonical element, padding zero.
		dst := bytes.Repeat([]byte{0xcc}, len(buf))
		if err := PerCPUBytes(slice.Interface(), elemSize, ncpu, dst); err != nil {
			t.Fatal(err)
		}
		for i := range ncpu {
			slot := buf[i*stride : i*stride+elemSize]
			want := slot
			if typ != reflect.TypeFor[binKey]() {
				want, _ = canonical(typ, slot)
			}
			if !bytes.Equal(dst[i*stride:i*stride+elemSize], want) {
				t.Fatalf("cpu %d: %x, want %x", i, dst[i*stride:i*stride+elemSize], want)
			}
			if !bytes.Equal(dst[i*stride+elemSize:(i+1)*stride], make([]byte, stride-elemSize)) {
				t.Fatalf("cpu %d: padding not zeroed", i)
			}
		}

		// Raw []byte round trip.
		raw := make([]byte, len(buf))
		if err := UnmarshalPerCPU(raw, buf, elemSize, ncpu); err != nil || !bytes.Equal(raw, buf) {
			t.Fatal("raw round trip", err)
		}
		if err := PerCPUBytes(raw, elemSize, ncpu, dst); err != nil || !bytes.Equal(dst, buf) {
			t.Fatal("raw PerCPUBytes", err)
		}

		// Wrong lengths never panic.
		mustBeEINVAL(t, UnmarshalPerCPU(slice.Slice(0, ncpu-1).Interface(), buf, elemSize, ncpu))
		mustBeEINVAL(t, UnmarshalPerCPU(slice.Interface(), buf[:len(buf)-1], elemSize, ncpu))
		mustBeEINVAL(t, PerCPUBytes(slice.Interface(), elemSize, ncpu, dst[:len(dst)-1]))
		mustBeEINVAL(t, PerCPUBytes(slice.Interface(), elemSize+1, ncpu, make([]byte, ncpu*Stride(elemSize+1))))
		if err := UnmarshalPerCPU(slice.Slice(0, ncpu-1).Interface(), buf, elemSize, ncpu); err == nil {
			t.Fatal("short slice accepted")
		}
	})
}

func assertUndecodable(t *testing.T, typ reflect.Type, err error) {
	t.Helper()
	if infoOf(typ).decodable && typ != reflect.TypeFor[binKey]() {
		t.Fatalf("%v: unexpected error %v", typ, err)
	}
}

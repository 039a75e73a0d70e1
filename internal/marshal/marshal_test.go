package marshal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"reflect"
	"syscall"
	"testing"
	"unsafe"
)

type plainStruct struct {
	A uint32
	B uint16
	C [2]uint8
}

type paddedStruct struct {
	A uint64
	B uint32
}

type innerPadding struct {
	A uint8
	B uint32
}

type blankStruct struct {
	A uint32
	_ uint32
}

type blankPadded struct {
	A uint8
	_ [3]byte
	B uint64
}

type boolStruct struct {
	A uint8
	B bool
	C uint16
}

type floatStruct struct {
	F float32
	D float64
	C complex64
}

type unexportedStruct struct {
	a uint32
}

type unexportedPadded struct {
	A uint64
	b uint8
}

// The unexported fields exist for their layout (marshalling must refuse
// them); this keeps linters from calling them unused.
var _ = unexportedStruct{a: 0}.a + uint32(unexportedPadded{b: 0}.b)

type ifaceStruct struct{ A any }
type ptrStruct struct{ A *uint32 }
type sliceStruct struct{ A []byte }
type intStruct struct{ A int }
type namedU32 uint32
type namedBytes []byte

// binKey implements BinaryMarshaler with a value receiver and
// BinaryUnmarshaler with a pointer receiver; it encodes big-endian so that
// tests can tell the methods were used.
type binKey struct{ v uint32 }

func (k binKey) MarshalBinary() ([]byte, error) {
	return binary.BigEndian.AppendUint32(nil, k.v), nil
}

func (k *binKey) UnmarshalBinary(b []byte) error {
	if len(b) != 4 {
		return fmt.Errorf("binKey: %d bytes", len(b))
	}
	k.v = binary.BigEndian.Uint32(b)
	return nil
}

var errBin = errors.New("bin failure")

type failingBin struct{}

func (failingBin) MarshalBinary() ([]byte, error) { return nil, errBin }
func (*failingBin) UnmarshalBinary([]byte) error  { return errBin }

// aliasKey's MarshalBinary returns a view of its receiver.
type aliasKey struct{ b [4]byte }

func (k *aliasKey) MarshalBinary() ([]byte, error) { return k.b[:], nil }

func native(tb testing.TB, v any) []byte {
	tb.Helper()
	b, err := binary.Append(nil, binary.NativeEndian, v)
	if err != nil {
		tb.Fatalf("binary.Append(%T): %v", v, err)
	}
	return b
}

func requireEINVAL(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		tb.Fatal("expected an error")
	}
	if !errors.Is(err, syscall.EINVAL) {
		tb.Fatalf("error %q does not wrap EINVAL", err)
	}
}

func TestBytesAccepted(t *testing.T) {
	u32 := uint32(0x01020304)
	u64 := uint64(0x0102030405060708)
	arr := [6]byte{1, 2, 3, 4, 5, 6}
	ps := plainStruct{A: 1, B: 2, C: [2]uint8{3, 4}}
	pd := paddedStruct{A: 5, B: 6}
	ip := innerPadding{A: 7, B: 8}
	bs := boolStruct{A: 1, B: true, C: 3}
	fs := floatStruct{F: 1.5, D: -2.25, C: complex(3, 4)}
	bp := blankPadded{A: 9, B: 10}
	raw := []byte{9, 8, 7, 6}
	key := binKey{0x0a0b0c0d}
	u32s := []uint32{1, 2, 3}
	pds := []paddedStruct{{1, 2}, {3, 4}}
	nu := namedU32(77)
	ak := &aliasKey{[4]byte{4, 3, 2, 1}}

	for _, tc := range []struct {
		name string
		v    any
		size int
		want []byte
		view unsafe.Pointer // expected to alias this memory
	}{
		{"[]byte", raw, 4, raw, unsafe.Pointer(&raw[0])},
		{"namedBytes", namedBytes(raw), 4, raw, unsafe.Pointer(&raw[0])},
		{"unsafe.Pointer", unsafe.Pointer(&u32), 4, native(t, u32), unsafe.Pointer(&u32)},
		{"*uint32", &u32, 4, native(t, u32), unsafe.Pointer(&u32)},
		{"*uint64", &u64, 8, native(t, u64), unsafe.Pointer(&u64)},
		{"*[6]byte", &arr, 6, arr[:], unsafe.Pointer(&arr)},
		{"*plainStruct", &ps, 8, native(t, ps), unsafe.Pointer(&ps)},
		{"*boolStruct", &bs, 4, native(t, bs), unsafe.Pointer(&bs)},
		{"*floatStruct", &fs, 20, native(t, fs), nil},
		{"*paddedStruct", &pd, 12, native(t, pd), nil},
		{"*innerPadding", &ip, 5, native(t, ip), nil},
		{"*blankPadded", &bp, 12, native(t, bp), nil},
		{"*namedU32", &nu, 4, native(t, uint32(nu)), unsafe.Pointer(&nu)},
		{"uint8", uint8(3), 1, []byte{3}, nil},
		{"int8", int8(-3), 1, []byte{0xfd}, nil},
		{"uint16", uint16(0x0102), 2, native(t, uint16(0x0102)), nil},
		{"int16", int16(-2), 2, native(t, int16(-2)), nil},
		{"uint32", uint32(0x01020304), 4, native(t, uint32(0x01020304)), nil},
		{"int32", int32(-5), 4, native(t, int32(-5)), nil},
		{"uint64", u64, 8, native(t, u64), nil},
		{"int64", int64(-6), 8, native(t, int64(-6)), nil},
		{"namedU32 value", nu, 4, native(t, uint32(77)), nil},
		{"bool", true, 1, []byte{1}, nil},
		{"float64", 1.25, 8, native(t, 1.25), nil},
		{"plainStruct value", ps, 8, native(t, ps), nil},
		{"paddedStruct value", pd, 12, native(t, pd), nil},
		{"boolStruct value", bs, 4, native(t, bs), nil},
		{"floatStruct value", fs, 20, native(t, fs), nil},
		{"blankPadded value", bp, 12, native(t, bp), nil},
		{"[3]uint16 value", [3]uint16{1, 2, 3}, 6, native(t, [3]uint16{1, 2, 3}), nil},
		{"string", "abcd", 4, []byte("abcd"), nil},
		{"BinaryMarshaler value", key, 4, []byte{0x0a, 0x0b, 0x0c, 0x0d}, nil},
		{"BinaryMarshaler pointer", &key, 4, []byte{0x0a, 0x0b, 0x0c, 0x0d}, nil},
		{"BinaryMarshaler aliasing", ak, 4, []byte{4, 3, 2, 1}, unsafe.Pointer(ak)},
		{"[]uint32", u32s, 12, native(t, u32s), unsafe.Pointer(&u32s[0])},
		{"*[]uint32", &u32s, 12, native(t, u32s), unsafe.Pointer(&u32s[0])},
		{"[]paddedStruct", pds, 24, native(t, pds), nil},
		{"empty []uint32", []uint32{}, 0, []byte{}, nil},
		{"nil []byte size 0", []byte(nil), 0, nil, nil},
		{"struct{} size 0", &struct{}{}, 0, []byte{}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Bytes(tc.v, tc.size, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tc.size || !bytes.Equal(got, tc.want) {
				t.Fatalf("Bytes = %x, want %x", got, tc.want)
			}
			if tc.view != nil && unsafe.Pointer(unsafe.SliceData(got)) != tc.view {
				t.Fatal("expected a zero-copy view of the caller's memory")
			}
			// With enough scratch, encodings land in scratch.
			scratch := make([]byte, 0, 64)
			got2, err := Bytes(tc.v, tc.size, scratch)
			if err != nil || !bytes.Equal(got2, tc.want) {
				t.Fatalf("Bytes with scratch = %x, %v", got2, err)
			}
		})
	}
}

func TestBytesBlankFieldsZero(t *testing.T) {
	// encoding/binary writes zeros for blank fields of types it encodes.
	v := blankPadded{A: 1, B: 2}
	// Set the blank field through unsafe to prove it is not read.
	p := (*[16]byte)(unsafe.Pointer(&v))
	p[1], p[2], p[3] = 0xff, 0xff, 0xff
	got, err := Bytes(&v, 12, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got[1] != 0 || got[2] != 0 || got[3] != 0 {
		t.Fatalf("blank bytes not zero: %x", got)
	}
}

func TestBytesRejected(t *testing.T) {
	u32 := uint32(1)
	ch := make(chan int)
	for _, tc := range []struct {
		name string
		v    any
		size int
	}{
		{"nil", nil, 4},
		{"nil unsafe.Pointer", unsafe.Pointer(nil), 4},
		{"nil *uint32", (*uint32)(nil), 4},
		{"nil *plainStruct", (*plainStruct)(nil), 8},
		{"nil *paddedStruct", (*paddedStruct)(nil), 12},
		{"nil *[]uint32", (*[]uint32)(nil), 0},
		{"nil *binKey", (*binKey)(nil), 4},
		{"[]byte too short", []byte{1, 2, 3}, 4},
		{"[]byte too long", []byte{1, 2, 3, 4, 5}, 4},
		{"*uint32 wrong size", &u32, 8},
		{"uint32 wrong size", uint32(1), 8},
		{"uint8 wrong size", uint8(1), 4},
		{"*plainStruct wrong size", &plainStruct{}, 16},
		{"*paddedStruct memory size", &paddedStruct{}, 16},
		{"paddedStruct value memory size", paddedStruct{}, 16},
		{"[]uint32 wrong size", []uint32{1}, 8},
		{"string wrong size", "abc", 4},
		{"BinaryMarshaler wrong size", binKey{}, 8},
		{"BinaryMarshaler error", failingBin{}, 4},
		{"int", 5, 8},
		{"*int", new(int), 8},
		{"uint", uint(5), 8},
		{"uintptr", uintptr(5), 8},
		{"map", map[int]int{}, 8},
		{"chan", ch, 8},
		{"func", func() {}, 8},
		{"*string", new(string), 16},
		{"named string", reflect.ValueOf("x").Convert(reflect.TypeFor[namedString]()).Interface(), 1},
		{"**uint32", new(*uint32), 8},
		{"ifaceStruct", ifaceStruct{}, 16},
		{"*ifaceStruct", &ifaceStruct{}, 16},
		{"*ptrStruct", &ptrStruct{}, 8},
		{"*sliceStruct", &sliceStruct{}, 24},
		{"*intStruct", &intStruct{}, 8},
		{"[][]byte", [][]byte{{1}}, 1},
		{"[]any", []any{uint8(1)}, 1},
		{"negative size", []byte{}, -1},
		{"unsafe.Pointer negative size", unsafe.Pointer(&u32), -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Bytes(tc.v, tc.size, nil)
			requireEINVAL(t, err)
			if tc.v != nil && !bytes.Contains([]byte(err.Error()), []byte(reflect.TypeOf(tc.v).String())) &&
				tc.name != "nil unsafe.Pointer" && tc.name != "unsafe.Pointer negative size" {
				t.Errorf("error %q does not name type %v", err, reflect.TypeOf(tc.v))
			}
		})
	}
	_, err := Bytes(failingBin{}, 4, nil)
	if !errors.Is(err, errBin) {
		t.Fatalf("MarshalBinary error not wrapped: %v", err)
	}
}

type namedString string

func TestUnmarshalAccepted(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  func() any
	}{
		{"*uint8", func() any { return new(uint8) }},
		{"*int8", func() any { return new(int8) }},
		{"*uint16", func() any { return new(uint16) }},
		{"*int16", func() any { return new(int16) }},
		{"*uint32", func() any { return new(uint32) }},
		{"*int32", func() any { return new(int32) }},
		{"*uint64", func() any { return new(uint64) }},
		{"*int64", func() any { return new(int64) }},
		{"*[4]byte", func() any { return new([4]byte) }},
		{"*[6]byte", func() any { return new([6]byte) }},
		{"*[8]byte", func() any { return new([8]byte) }},
		{"*[16]byte", func() any { return new([16]byte) }},
		{"*[32]byte", func() any { return new([32]byte) }},
		{"*[3]uint16", func() any { return new([3]uint16) }},
		{"*namedU32", func() any { return new(namedU32) }},
		{"*float64", func() any { return new(float64) }},
		{"*bool", func() any { return new(bool) }},
		{"*plainStruct", func() any { return new(plainStruct) }},
		{"*paddedStruct", func() any { return new(paddedStruct) }},
		{"*innerPadding", func() any { return new(innerPadding) }},
		{"*blankPadded", func() any { return new(blankPadded) }},
		{"*boolStruct", func() any { return new(boolStruct) }},
		{"*floatStruct", func() any { return new(floatStruct) }},
		{"*[2]paddedStruct", func() any { return new([2]paddedStruct) }},
		{"[]uint32", func() any { return make([]uint32, 3) }},
		{"[]paddedStruct", func() any { return make([]paddedStruct, 2) }},
		{"*[]uint32", func() any { s := make([]uint32, 3); return &s }},
		{"*[]paddedStruct", func() any { s := make([]paddedStruct, 2); return &s }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.out()
			size := binary.Size(want)
			buf := make([]byte, size)
			for i := range buf {
				buf[i] = byte(i*7 + 1)
				if i%3 == 0 {
					buf[i] = 1 // keep bools valid so encoding/binary agrees bytewise
				}
			}
			if _, err := binary.Decode(buf, binary.NativeEndian, want); err != nil {
				t.Fatal(err)
			}
			got := tc.out()
			if err := Unmarshal(got, buf); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Unmarshal = %+v, want %+v", got, want)
			}
			// Round trip.
			back, err := Bytes(got, size, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(back, native(t, want)) {
				t.Fatalf("round trip %x, want %x", back, native(t, want))
			}
			// Wrong sizes are rejected.
			requireEINVAL(t, Unmarshal(tc.out(), append(buf, 0)))
			if size > 0 {
				requireEINVAL(t, Unmarshal(tc.out(), buf[:size-1]))
			}
		})
	}
}

func TestUnmarshalSpecial(t *testing.T) {
	buf := []byte{1, 2, 3, 4}

	t.Run("[]byte", func(t *testing.T) {
		out := make([]byte, 4)
		if err := Unmarshal(out, buf); err != nil || !bytes.Equal(out, buf) {
			t.Fatal(out, err)
		}
		requireEINVAL(t, Unmarshal(make([]byte, 3), buf))
		requireEINVAL(t, Unmarshal(make([]byte, 5), buf))
		requireEINVAL(t, Unmarshal([]byte(nil), buf))
	})
	t.Run("*[]byte same length reuses", func(t *testing.T) {
		s := make([]byte, 4)
		p := &s[0]
		if err := Unmarshal(&s, buf); err != nil || !bytes.Equal(s, buf) || &s[0] != p {
			t.Fatal(s, err)
		}
	})
	t.Run("*[]byte other length replaced", func(t *testing.T) {
		var s []byte
		if err := Unmarshal(&s, buf); err != nil || !bytes.Equal(s, buf) {
			t.Fatal(s, err)
		}
		if &s[0] == &buf[0] {
			t.Fatal("not copied")
		}
		s = make([]byte, 10)
		if err := Unmarshal(&s, buf); err != nil || !bytes.Equal(s, buf) {
			t.Fatal(s, err)
		}
	})
	t.Run("*string", func(t *testing.T) {
		var s string
		if err := Unmarshal(&s, buf); err != nil || s != "\x01\x02\x03\x04" {
			t.Fatal(s, err)
		}
	})
	t.Run("unsafe.Pointer", func(t *testing.T) {
		var x [4]byte
		if err := Unmarshal(unsafe.Pointer(&x), buf); err != nil || !bytes.Equal(x[:], buf) {
			t.Fatal(x, err)
		}
	})
	t.Run("BinaryUnmarshaler", func(t *testing.T) {
		var k binKey
		if err := Unmarshal(&k, buf); err != nil || k.v != 0x01020304 {
			t.Fatal(k, err)
		}
		err := Unmarshal(&k, buf[:3])
		requireEINVAL(t, err)
		err = Unmarshal(&failingBin{}, buf)
		requireEINVAL(t, err)
		if !errors.Is(err, errBin) {
			t.Fatal(err)
		}
	})
	t.Run("blank fields untouched", func(t *testing.T) {
		// encoding/binary skips blank fields when decoding into padded types.
		var v blankPadded
		p := (*[16]byte)(unsafe.Pointer(&v))
		p[1] = 0xee
		src := []byte{5, 9, 9, 9, 1, 0, 0, 0, 0, 0, 0, 0}
		if err := Unmarshal(&v, src); err != nil {
			t.Fatal(err)
		}
		if v.A != 5 || v.B != binary.NativeEndian.Uint64(src[4:]) || p[1] != 0xee {
			t.Fatalf("%+v %x", v, p)
		}
	})
	t.Run("blank fields of unpadded types are copied", func(t *testing.T) {
		// As in cilium/ebpf, a type without padding is copied verbatim,
		// blank fields included (encoding/binary would skip them).
		var v blankStruct
		src := []byte{1, 0, 0, 0, 2, 0, 0, 0}
		if err := Unmarshal(&v, src); err != nil {
			t.Fatal(err)
		}
		back, err := Bytes(&v, 8, nil)
		if err != nil || !bytes.Equal(back, src) {
			t.Fatal(back, err)
		}
	})
	t.Run("bool decodes b != 0", func(t *testing.T) {
		var v boolStruct
		if err := Unmarshal(&v, []byte{1, 7, 0, 0}); err != nil || !v.B {
			t.Fatal(v, err)
		}
		b, _ := Bytes(&v, 4, nil)
		if b[1] != 1 {
			t.Fatalf("bool not normalised: %x", b)
		}
	})
}

func TestUnmarshalRejected(t *testing.T) {
	for _, tc := range []struct {
		name string
		out  any
		size int
	}{
		{"nil", nil, 4},
		{"nil unsafe.Pointer", unsafe.Pointer(nil), 4},
		{"nil *uint32", (*uint32)(nil), 4},
		{"nil *paddedStruct", (*paddedStruct)(nil), 12},
		{"nil *[]byte", (*[]byte)(nil), 4},
		{"nil *[]uint32", (*[]uint32)(nil), 4},
		{"nil *string", (*string)(nil), 4},
		{"nil *binKey", (*binKey)(nil), 4},
		{"uint32 value", uint32(0), 4},
		{"plainStruct value", plainStruct{}, 8},
		{"string value", "abcd", 4},
		{"*int", new(int), 8},
		{"*uintptr", new(uintptr), 8},
		{"map", map[int]int{}, 8},
		{"chan", make(chan int), 8},
		{"func", func() {}, 8},
		{"*any", new(any), 16},
		{"*ifaceStruct", &ifaceStruct{}, 16},
		{"*ptrStruct", &ptrStruct{}, 8},
		{"*sliceStruct", &sliceStruct{}, 24},
		{"*unexportedStruct", &unexportedStruct{}, 4},
		{"*unexportedPadded", &unexportedPadded{}, 9},
		{"*namedString", new(namedString), 4},
		{"**uint32", new(*uint32), 8},
		{"*uint32 wrong size", new(uint32), 8},
		{"*[]uint32 wrong size", &[]uint32{1}, 8},
		{"[]uint32 wrong size", []uint32{1}, 8},
		{"[]any", []any{nil}, 16},
		{"*paddedStruct memory size", &paddedStruct{}, 16},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireEINVAL(t, Unmarshal(tc.out, make([]byte, tc.size)))
		})
	}
}

func TestBytesAliasesOnlyWhenSafe(t *testing.T) {
	// Bytes of a padded struct must not alias the value.
	v := paddedStruct{A: 1, B: 2}
	b, err := Bytes(&v, 12, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.A = 3
	if binary.NativeEndian.Uint64(b) != 1 {
		t.Fatal("encoding aliases padded struct")
	}
}

func TestFloatsNaN(t *testing.T) {
	bits := uint64(0x7ff8000000000123)
	buf := binary.NativeEndian.AppendUint64(nil, bits)
	var f float64
	if err := Unmarshal(&f, buf); err != nil {
		t.Fatal(err)
	}
	if math.Float64bits(f) != bits {
		t.Fatal("NaN payload lost")
	}
	back, err := Bytes(f, 8, nil)
	if err != nil || !bytes.Equal(back, buf) {
		t.Fatal(back, err)
	}
}

func TestConcurrentTypeCache(t *testing.T) {
	// Exercised under -race: many goroutines resolving new types at once.
	done := make(chan struct{})
	for range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				var a [3]paddedStruct
				b, err := Bytes(&a, 36, nil)
				if err != nil {
					t.Error(err)
					return
				}
				if err := Unmarshal(&a, b); err != nil {
					t.Error(err)
					return
				}
				var s struct {
					X uint16
					Y uint64
				}
				if _, err := Bytes(s, 10, nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

func TestTypeInfo(t *testing.T) {
	for _, tc := range []struct {
		v                       any
		binSize                 int
		view, copyIn, decodable bool
	}{
		{uint32(0), 4, true, true, true},
		{false, 1, true, false, true},
		{plainStruct{}, 8, true, true, true},
		{paddedStruct{}, 12, false, false, true},
		{innerPadding{}, 5, false, false, true},
		{blankStruct{}, 8, true, true, true},
		{blankPadded{}, 12, false, false, true},
		{boolStruct{}, 4, true, false, true},
		{unexportedStruct{}, 4, true, false, false},
		{unexportedPadded{}, 9, false, false, false},
		{[2]paddedStruct{}, 24, false, false, true},
		{[0]uint64{}, 0, true, true, true},
		{struct{}{}, 0, true, true, true},
		{ifaceStruct{}, -1, false, false, false},
		{intStruct{}, -1, false, false, false},
		{struct{ _ int }{}, -1, false, false, false},
		{struct {
			A [2]struct {
				B uint16
				C uint8
			}
		}{}, 6, false, false, true},
	} {
		ti := infoOf(reflect.TypeOf(tc.v))
		if ti.binSize != tc.binSize || ti.view != tc.view || ti.copyIn != tc.copyIn || ti.decodable != tc.decodable {
			t.Errorf("%T: got binSize %d view %v copyIn %v decodable %v", tc.v, ti.binSize, ti.view, ti.copyIn, ti.decodable)
		}
		if tc.binSize != binary.Size(tc.v) {
			t.Errorf("%T: binary.Size = %d, test expects %d", tc.v, binary.Size(tc.v), tc.binSize)
		}
	}
}

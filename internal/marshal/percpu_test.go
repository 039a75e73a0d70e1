package marshal

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// perCPULayout builds the expected kernel layout from per-element encodings.
func perCPULayout(elems [][]byte, elemSize, ncpu int) []byte {
	stride := Stride(elemSize)
	out := make([]byte, ncpu*stride)
	for i, e := range elems {
		copy(out[i*stride:], e)
	}
	return out
}

func dirty(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 0xaa
	}
	return b
}

func TestStride(t *testing.T) {
	for in, want := range map[int]int{1: 8, 4: 8, 8: 8, 9: 16, 12: 16, 16: 16, 17: 24} {
		if got := Stride(in); got != want {
			t.Errorf("Stride(%d) = %d, want %d", in, got, want)
		}
	}
}

func TestPerCPUBytesAccepted(t *testing.T) {
	const ncpu = 4
	k := binKey{0x01020304}
	u := uint32(7)
	for _, tc := range []struct {
		name     string
		v        any
		elemSize int
		want     [][]byte
	}{
		{"[]uint32", []uint32{1, 2, 3, 4}, 4, [][]byte{native(t, uint32(1)), native(t, uint32(2)), native(t, uint32(3)), native(t, uint32(4))}},
		{"[]uint32 short", []uint32{1, 2}, 4, [][]byte{native(t, uint32(1)), native(t, uint32(2))}},
		{"*[]uint32", &[]uint32{1, 2}, 4, [][]byte{native(t, uint32(1)), native(t, uint32(2))}},
		{"[]uint64", []uint64{1, 2, 3, 4}, 8, [][]byte{native(t, uint64(1)), native(t, uint64(2)), native(t, uint64(3)), native(t, uint64(4))}},
		{"[]paddedStruct", []paddedStruct{{1, 2}}, 12, [][]byte{native(t, paddedStruct{1, 2})}},
		{"[]plainStruct", []plainStruct{{1, 2, [2]uint8{3, 4}}}, 8, [][]byte{native(t, plainStruct{1, 2, [2]uint8{3, 4}})}},
		{"[]*uint32", []*uint32{&u, &u}, 4, [][]byte{native(t, u), native(t, u)}},
		{"[]binKey", []binKey{k}, 4, [][]byte{{1, 2, 3, 4}}},
		{"[]*binKey", []*binKey{&k}, 4, [][]byte{{1, 2, 3, 4}}},
		{"[][]byte", [][]byte{{1, 2, 3}, {4, 5, 6}}, 3, [][]byte{{1, 2, 3}, {4, 5, 6}}},
		{"[]string", []string{"abc"}, 3, [][]byte{[]byte("abc")}},
		{"[]any", []any{uint32(9), &u}, 4, [][]byte{native(t, uint32(9)), native(t, u)}},
		{"[]byte one byte per CPU", []byte{1, 2, 3}, 1, [][]byte{{1}, {2}, {3}}},
		{"empty", []uint32{}, 4, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dst := dirty(ncpu * Stride(tc.elemSize))
			if err := PerCPUBytes(tc.v, tc.elemSize, ncpu, dst); err != nil {
				t.Fatal(err)
			}
			if want := perCPULayout(tc.want, tc.elemSize, ncpu); !bytes.Equal(dst, want) {
				t.Fatalf("got  %x\nwant %x", dst, want)
			}
		})
	}

	t.Run("raw []byte", func(t *testing.T) {
		raw := make([]byte, ncpu*8)
		for i := range raw {
			raw[i] = byte(i)
		}
		for _, v := range []any{raw, &raw} {
			dst := dirty(len(raw))
			if err := PerCPUBytes(v, 4, ncpu, dst); err != nil || !bytes.Equal(dst, raw) {
				t.Fatal(dst, err)
			}
		}
	})
}

func TestPerCPUBytesRejected(t *testing.T) {
	const ncpu = 2
	for _, tc := range []struct {
		name     string
		v        any
		elemSize int
	}{
		{"nil", nil, 4},
		{"not a slice", uint32(1), 4},
		{"pointer to value", new(uint32), 4},
		{"nil *[]uint32", (*[]uint32)(nil), 4},
		{"too many elements", []uint32{1, 2, 3}, 4},
		{"wrong element size", []uint64{1, 2}, 4},
		{"padded element memory size", []paddedStruct{{}}, 16},
		{"nil pointer element", []*uint32{nil}, 4},
		{"nil marshaler element", []*binKey{nil}, 4},
		{"failing marshaler", []failingBin{{}}, 4},
		{"[]int", []int{1}, 8},
		{"[]ifaceStruct", []ifaceStruct{{}}, 16},
		{"[][]byte wrong length", [][]byte{{1}}, 4},
		{"[]byte wrong raw length", make([]byte, 3), 4},
		{"[]any nil element", []any{nil}, 4},
		{"[]map", []map[int]int{{}}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			requireEINVAL(t, PerCPUBytes(tc.v, tc.elemSize, ncpu, make([]byte, ncpu*Stride(tc.elemSize))))
		})
	}
	requireEINVAL(t, PerCPUBytes([]uint32{1}, 4, ncpu, make([]byte, 8)))  // dst too short
	requireEINVAL(t, PerCPUBytes([]uint32{1}, 0, ncpu, nil))              // bad elemSize
	requireEINVAL(t, PerCPUBytes([]uint32{1}, 4, 0, nil))                 // bad ncpu
	requireEINVAL(t, PerCPUBytes([]uint32{1}, 4, ncpu, make([]byte, 17))) // dst too long
}

func TestUnmarshalPerCPU(t *testing.T) {
	const ncpu = 3
	elem := func(i int) uint32 { return uint32(0x11111111 * (i + 1)) }
	buf := make([]byte, ncpu*8)
	for i := range ncpu {
		binary.NativeEndian.PutUint32(buf[i*8:], elem(i))
		copy(buf[i*8+4:i*8+8], []byte{0xde, 0xad, 0xbe, 0xef}) // padding is ignored
	}
	check := func(t *testing.T, got []uint32) {
		t.Helper()
		if len(got) != ncpu {
			t.Fatalf("len %d", len(got))
		}
		for i, v := range got {
			if v != elem(i) {
				t.Fatalf("cpu %d: %#x", i, v)
			}
		}
	}

	t.Run("[]uint32", func(t *testing.T) {
		out := make([]uint32, ncpu)
		if err := UnmarshalPerCPU(out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		check(t, out)
	})
	t.Run("*[]uint32 allocates fresh", func(t *testing.T) {
		var out []uint32
		if err := UnmarshalPerCPU(&out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		check(t, out)
		prev := out
		if err := UnmarshalPerCPU(&out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		if &prev[0] == &out[0] {
			t.Fatal("previous result was reused")
		}
		out = make([]uint32, 10) // any length is replaced
		if err := UnmarshalPerCPU(&out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		check(t, out)
	})
	t.Run("*[]*uint32", func(t *testing.T) {
		var out []*uint32
		if err := UnmarshalPerCPU(&out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		for i, p := range out {
			if *p != elem(i) {
				t.Fatal(i, *p)
			}
		}
	})
	t.Run("[]*uint32 written through", func(t *testing.T) {
		vals := make([]uint32, ncpu)
		out := []*uint32{&vals[0], &vals[1], &vals[2]}
		if err := UnmarshalPerCPU(out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		check(t, vals)
	})
	t.Run("[]binKey", func(t *testing.T) {
		out := make([]binKey, ncpu)
		if err := UnmarshalPerCPU(out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		for i, k := range out {
			if k.v != binary.BigEndian.Uint32(buf[i*8:]) {
				t.Fatal(i, k)
			}
		}
	})
	t.Run("[][4]byte", func(t *testing.T) {
		out := make([][4]byte, ncpu)
		if err := UnmarshalPerCPU(out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if !bytes.Equal(out[i][:], buf[i*8:i*8+4]) {
				t.Fatal(i)
			}
		}
	})
	t.Run("*[][]byte", func(t *testing.T) {
		var out [][]byte
		if err := UnmarshalPerCPU(&out, buf, 4, ncpu); err != nil {
			t.Fatal(err)
		}
		for i := range out {
			if !bytes.Equal(out[i], buf[i*8:i*8+4]) {
				t.Fatal(i)
			}
		}
	})
	t.Run("raw []byte", func(t *testing.T) {
		out := make([]byte, len(buf))
		if err := UnmarshalPerCPU(out, buf, 4, ncpu); err != nil || !bytes.Equal(out, buf) {
			t.Fatal(err)
		}
	})
	t.Run("raw *[]byte", func(t *testing.T) {
		var out []byte
		if err := UnmarshalPerCPU(&out, buf, 4, ncpu); err != nil || !bytes.Equal(out, buf) {
			t.Fatal(err)
		}
	})
	t.Run("elemSize 1 []byte and *[]byte", func(t *testing.T) {
		b1 := []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}
		out := make([]byte, ncpu)
		if err := UnmarshalPerCPU(out, b1, 1, ncpu); err != nil || !bytes.Equal(out, []byte{1, 2, 3}) {
			t.Fatal(out, err)
		}
		var p []byte
		if err := UnmarshalPerCPU(&p, b1, 1, ncpu); err != nil || !bytes.Equal(p, []byte{1, 2, 3}) {
			t.Fatal(p, err)
		}
	})
	t.Run("paddedStruct round trip", func(t *testing.T) {
		in := []paddedStruct{{1, 2}, {3, 4}, {5, 6}}
		dst := dirty(ncpu * 16)
		if err := PerCPUBytes(in, 12, ncpu, dst); err != nil {
			t.Fatal(err)
		}
		for i := range ncpu {
			if !bytes.Equal(dst[i*16+12:i*16+16], make([]byte, 4)) {
				t.Fatal("padding not zeroed")
			}
		}
		var out []paddedStruct
		if err := UnmarshalPerCPU(&out, dst, 12, ncpu); err != nil {
			t.Fatal(err)
		}
		for i := range in {
			if in[i] != out[i] {
				t.Fatal(i, out[i])
			}
		}
	})

	for _, tc := range []struct {
		name     string
		out      any
		elemSize int
	}{
		{"nil", nil, 4},
		{"nil *[]uint32", (*[]uint32)(nil), 4},
		{"nil *[]byte", (*[]byte)(nil), 4},
		{"short slice", make([]uint32, ncpu-1), 4},
		{"long slice", make([]uint32, ncpu+1), 4},
		{"value", uint32(0), 4},
		{"pointer to value", new(uint32), 4},
		{"pointer to array", new([3]uint32), 4},
		{"nil pointer element", make([]*uint32, ncpu), 4},
		{"wrong elem size", make([]uint64, ncpu), 4},
		{"[]int", make([]int, ncpu), 8},
		{"[]unexportedStruct", make([]unexportedStruct, ncpu), 4},
		{"[]any", make([]any, ncpu), 4},
		{"[]failingBin", make([]failingBin, ncpu), 4},
		{"[][]uint32 wrong len", make([][]uint32, ncpu), 4},
		{"*[]byte elemSize 1 wrong", new([]byte), 1},
		{"[]byte wrong length", make([]byte, 5), 4},
		{"unsafe.Pointer", unsafePointerOf(new([24]byte)), 4},
	} {
		t.Run("rejected/"+tc.name, func(t *testing.T) {
			b := make([]byte, ncpu*Stride(tc.elemSize))
			if tc.name == "*[]byte elemSize 1 wrong" {
				b = make([]byte, ncpu*8+8)
			}
			requireEINVAL(t, UnmarshalPerCPU(tc.out, b, tc.elemSize, ncpu))
		})
	}
	requireEINVAL(t, UnmarshalPerCPU(make([]uint32, ncpu), buf[:8], 4, ncpu))
}

func TestPerCPUBatch(t *testing.T) {
	const ncpu, count = 2, 3
	in := make([]paddedStruct, count*ncpu)
	for i := range in {
		in[i] = paddedStruct{uint64(i), uint32(i * 10)}
	}
	dst := dirty(count * ncpu * 16)
	if err := PerCPUBatchBytes(in, count, 12, ncpu, dst); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if !bytes.Equal(dst[i*16:i*16+12], native(t, in[i])) || !bytes.Equal(dst[i*16+12:i*16+16], make([]byte, 4)) {
			t.Fatalf("slot %d: %x", i, dst[i*16:i*16+16])
		}
	}
	out := make([]paddedStruct, count*ncpu)
	if err := UnmarshalPerCPUBatch(out, dst, count, 12, ncpu); err != nil {
		t.Fatal(err)
	}
	for i := range in {
		if in[i] != out[i] {
			t.Fatal(i)
		}
	}

	// Zero-copy forms: []uint64 (stride == size), raw []byte, *[]uint64.
	u := []uint64{1, 2, 3, 4, 5, 6}
	ub := make([]byte, 48)
	if err := PerCPUBatchBytes(u, count, 8, ncpu, ub); err != nil || !bytes.Equal(ub, native(t, u)) {
		t.Fatal(err)
	}
	u2 := make([]uint64, 6)
	if err := UnmarshalPerCPUBatch(&u2, ub, count, 8, ncpu); err != nil || u2[5] != 6 {
		t.Fatal(err, u2)
	}
	raw := make([]byte, 48)
	if err := UnmarshalPerCPUBatch(raw, ub, count, 8, ncpu); err != nil || !bytes.Equal(raw, ub) {
		t.Fatal(err)
	}
	ub2 := make([]byte, 48)
	if err := PerCPUBatchBytes(raw, count, 8, ncpu, ub2); err != nil || !bytes.Equal(ub2, ub) {
		t.Fatal(err)
	}
	// []uint32 with elemSize 4: element-wise with padding.
	u32 := []uint32{1, 2, 3, 4, 5, 6}
	b32 := dirty(48)
	if err := PerCPUBatchBytes(u32, count, 4, ncpu, b32); err != nil {
		t.Fatal(err)
	}
	o32 := make([]uint32, 6)
	if err := UnmarshalPerCPUBatch(o32, b32, count, 4, ncpu); err != nil || o32[5] != 6 {
		t.Fatal(err, o32)
	}

	requireEINVAL(t, PerCPUBatchBytes(u32[:5], count, 4, ncpu, b32))
	requireEINVAL(t, PerCPUBatchBytes(&u32, count, 4, ncpu, b32))
	requireEINVAL(t, PerCPUBatchBytes(nil, count, 4, ncpu, b32))
	requireEINVAL(t, PerCPUBatchBytes(u32, count, 4, ncpu, b32[:40]))
	requireEINVAL(t, UnmarshalPerCPUBatch(make([]uint32, 5), b32, count, 4, ncpu))
	requireEINVAL(t, UnmarshalPerCPUBatch(nil, b32, count, 4, ncpu))
	requireEINVAL(t, UnmarshalPerCPUBatch(new(uint32), b32, count, 4, ncpu))
	requireEINVAL(t, UnmarshalPerCPUBatch(make([]*uint32, 6), b32, count, 4, ncpu))
	requireEINVAL(t, UnmarshalPerCPUBatch(o32, b32[:40], count, 4, ncpu))
}

func TestBatch(t *testing.T) {
	keys := []uint32{1, 2, 3}
	b, n, err := BatchBytes(keys, 4, nil)
	if err != nil || n != 3 || !bytes.Equal(b, native(t, keys)) || &b[0] != (*byte)(unsafePointerOf(&keys[0])) {
		t.Fatal(b, n, err)
	}
	vals := []paddedStruct{{1, 2}, {3, 4}}
	b, n, err = BatchBytes(vals, 12, nil)
	if err != nil || n != 2 || !bytes.Equal(b, native(t, vals)) {
		t.Fatal(b, n, err)
	}
	raw := make([]byte, 12)
	if n, err := BatchLen(raw, 4); err != nil || n != 3 {
		t.Fatal(n, err)
	}
	if n, err := BatchLen(raw, 1); err != nil || n != 12 {
		t.Fatal(n, err)
	}
	if _, n, err := BatchBytes(raw, 4, nil); err != nil || n != 3 {
		t.Fatal(n, err)
	}
	out := make([]paddedStruct, 2)
	if err := UnmarshalBatch(out, b, 12); err != nil || out[1] != vals[1] {
		t.Fatal(out, err)
	}
	ko := make([]uint32, 3)
	kb := native(t, keys)
	if err := UnmarshalBatch(ko, kb, 4); err != nil || ko[2] != 3 {
		t.Fatal(ko, err)
	}
	if err := UnmarshalBatch(raw, kb, 4); err != nil || !bytes.Equal(raw, kb) {
		t.Fatal(err)
	}

	for _, v := range []any{nil, &keys, uint32(1), new([3]uint32), make([]byte, 5), unsafePointerOf(&keys[0])} {
		_, err := BatchLen(v, 4)
		requireEINVAL(t, err)
		_, _, err = BatchBytes(v, 4, nil)
		requireEINVAL(t, err)
		requireEINVAL(t, UnmarshalBatch(v, make([]byte, 12), 4))
	}
	_, _, err = BatchBytes([]uint32{1}, 8, nil)
	requireEINVAL(t, err)
	requireEINVAL(t, UnmarshalBatch(ko, kb[:8], 4))
	requireEINVAL(t, UnmarshalBatch([]int{1}, make([]byte, 8), 8))
	_, err = BatchLen(raw, 0)
	requireEINVAL(t, err)
}

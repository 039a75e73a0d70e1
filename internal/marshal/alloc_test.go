package marshal

import (
	"fmt"
	"testing"
	"unsafe"
)

var (
	sink      byte
	globalArr [3]uint64
)

type hotCase struct {
	name string
	v    func() any // a fresh value to marshal / unmarshal into
	size int
}

func hotCases() []hotCase {
	return []hotCase{
		{"[]byte", func() any { return make([]byte, 16) }, 16},
		{"unsafe.Pointer", func() any { return unsafe.Pointer(new([16]byte)) }, 16},
		{"*uint32", func() any { return new(uint32) }, 4},
		{"*uint64", func() any { return new(uint64) }, 8},
		{"*[16]byte", func() any { return new([16]byte) }, 16},
		{"*[20]byte", func() any { return new([20]byte) }, 20},
		{"*plainStruct", func() any { return new(plainStruct) }, 8},
		{"*paddedStruct", func() any { return new(paddedStruct) }, 12},
		{"[]uint32", func() any { return make([]uint32, 4) }, 16},
		{"*[]uint32", func() any { s := make([]uint32, 4); return &s }, 16},
		{"*binKey", func() any { return new(binKey) }, 4},
	}
}

func TestBytesZeroAllocs(t *testing.T) {
	scratch := make([]byte, 64)
	for _, tc := range hotCases() {
		if tc.name == "*binKey" {
			continue // MarshalBinary allocates its result
		}
		v := tc.v()
		_, _ = Bytes(v, tc.size, scratch) // warm the type cache
		allocs := testing.AllocsPerRun(100, func() {
			b, err := Bytes(v, tc.size, scratch)
			if err != nil {
				t.Fatal(err)
			}
			sink += b[0]
		})
		if allocs != 0 {
			t.Errorf("Bytes(%s): %v allocs/op", tc.name, allocs)
		}
	}
	// Scalars by value encode into scratch.
	for _, v := range []any{uint32(1000), uint64(1 << 40), int32(-1000)} {
		size := int(unsafe.Sizeof(uint32(0)))
		if _, ok := v.(uint64); ok {
			size = 8
		}
		allocs := testing.AllocsPerRun(100, func() {
			b, err := Bytes(v, size, scratch)
			if err != nil {
				t.Fatal(err)
			}
			sink += b[0]
		})
		if allocs != 0 {
			t.Errorf("Bytes(%T): %v allocs/op", v, allocs)
		}
	}
}

func TestUnmarshalZeroAllocs(t *testing.T) {
	for _, tc := range hotCases() {
		v := tc.v()
		buf := make([]byte, tc.size)
		_ = Unmarshal(v, buf)
		allocs := testing.AllocsPerRun(100, func() {
			if err := Unmarshal(v, buf); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("Unmarshal(%s): %v allocs/op", tc.name, allocs)
		}
	}
}

// TestNoEscape proves that values created inside the measured function stay
// on its stack: if v/out escaped, every iteration would allocate them.
func TestNoEscape(t *testing.T) {
	buf := make([]byte, 12)
	scratch := make([]byte, 64)
	for name, f := range map[string]func(){
		"Bytes *uint32": func() {
			k := uint32(5)
			b, _ := Bytes(&k, 4, nil)
			sink += b[0]
		},
		"Bytes *paddedStruct": func() {
			v := paddedStruct{A: 1}
			b, _ := Bytes(&v, 12, scratch)
			sink += b[0]
		},
		"Bytes paddedStruct value": func() {
			b, _ := Bytes(paddedStruct{A: uint64(sink)}, 12, scratch)
			sink += b[0]
		},
		"Bytes *aliasKey (MarshalBinary)": func() {
			k := aliasKey{[4]byte{1}}
			b, _ := Bytes(&k, 4, nil)
			sink += b[0]
		},
		"Bytes error path": func() {
			k := [3]uint64{}
			_, err := Bytes(&k, 4, nil)
			if err == nil {
				panic("expected error")
			}
		},
		"Unmarshal *uint32": func() {
			var k uint32
			_ = Unmarshal(&k, buf[:4])
			sink += byte(k)
		},
		"Unmarshal *paddedStruct": func() {
			var v paddedStruct
			_ = Unmarshal(&v, buf)
			sink += byte(v.A)
		},
		"Unmarshal *binKey (UnmarshalBinary)": func() {
			var k binKey
			_ = Unmarshal(&k, buf[:4])
			sink += byte(k.v)
		},
		"Unmarshal []uint32": func() {
			var arr [3]uint32
			_ = Unmarshal(arr[:], buf)
			sink += byte(arr[0])
		},
	} {
		f()
		allocs := testing.AllocsPerRun(100, f)
		want := 0.0
		if name == "Bytes error path" {
			// Only the error itself is allocated, not k. The error's
			// formatting allocates a varying amount (fmt's buffer pool
			// can be emptied by a GC under -race), so compare the
			// fewest allocations of a few runs with the most of the
			// baseline's: an escaping k adds one to every run.
			for range 3 {
				allocs = min(allocs, testing.AllocsPerRun(100, f))
				want = max(want, testing.AllocsPerRun(100, func() {
					_, _ = Bytes(&globalArr, 4, nil)
				}))
			}
		}
		if allocs > want {
			t.Errorf("%s: %v allocs/op, want at most %v", name, allocs, want)
		}
	}
}

func TestPerCPUZeroAllocs(t *testing.T) {
	const ncpu = 8
	vals := make([]uint64, ncpu)
	dst := make([]byte, ncpu*8)
	if a := testing.AllocsPerRun(100, func() { _ = PerCPUBytes(vals, 8, ncpu, dst) }); a != 0 {
		t.Errorf("PerCPUBytes: %v allocs", a)
	}
	if a := testing.AllocsPerRun(100, func() { _ = UnmarshalPerCPU(vals, dst, 8, ncpu) }); a != 0 {
		t.Errorf("UnmarshalPerCPU: %v allocs", a)
	}
	p := make([]paddedStruct, ncpu)
	pd := make([]byte, ncpu*16)
	if a := testing.AllocsPerRun(100, func() { _ = PerCPUBytes(p, 12, ncpu, pd) }); a != 0 {
		t.Errorf("PerCPUBytes padded: %v allocs", a)
	}
	if a := testing.AllocsPerRun(100, func() { _ = UnmarshalPerCPU(p, pd, 12, ncpu) }); a != 0 {
		t.Errorf("UnmarshalPerCPU padded: %v allocs", a)
	}
}

func BenchmarkBytes(b *testing.B) {
	scratch := make([]byte, 64)
	for _, tc := range hotCases() {
		v := tc.v()
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Bytes(v, tc.size, scratch)
			}
		})
	}
	for _, v := range []any{uint32(1000), paddedStruct{1, 2}} {
		size := 4
		if _, ok := v.(paddedStruct); ok {
			size = 12
		}
		b.Run(fmt.Sprintf("%T value", v), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = Bytes(v, size, scratch)
			}
		})
	}
}

func BenchmarkUnmarshal(b *testing.B) {
	for _, tc := range hotCases() {
		v := tc.v()
		buf := make([]byte, tc.size)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = Unmarshal(v, buf)
			}
		})
	}
}

func BenchmarkPerCPU(b *testing.B) {
	const ncpu = 16
	u := make([]uint64, ncpu)
	ub := make([]byte, ncpu*8)
	p := make([]paddedStruct, ncpu)
	pb := make([]byte, ncpu*16)
	b.Run("PerCPUBytes/[]uint64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = PerCPUBytes(u, 8, ncpu, ub)
		}
	})
	b.Run("PerCPUBytes/[]paddedStruct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = PerCPUBytes(p, 12, ncpu, pb)
		}
	})
	b.Run("UnmarshalPerCPU/[]uint64", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = UnmarshalPerCPU(u, ub, 8, ncpu)
		}
	})
	b.Run("UnmarshalPerCPU/*[]uint64", func(b *testing.B) {
		b.ReportAllocs()
		var out []uint64
		for b.Loop() {
			_ = UnmarshalPerCPU(&out, ub, 8, ncpu)
		}
	})
}

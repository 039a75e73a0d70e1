package region

import (
	"sync/atomic"
	"testing"
)

func TestNewIsZeroedPageSizedAndAligned(t *testing.T) {
	r, err := New(HeaderSize + 5)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 4096 {
		t.Fatalf("len %d", r.Len())
	}
	for i, b := range r.Bytes(0, uint64(r.Len())) {
		if b != 0 {
			t.Fatalf("byte %d = %d", i, b)
		}
	}
	m := r.Mem()
	atomic.StoreUint64(m.Uint64(8), 0x1122334455667788)
	if got := atomic.LoadUint32(m.Uint32(8)); got != 0x55667788 {
		t.Fatalf("little-endian word view: %#x", got)
	}
	StoreRelease32(m.Uint32(16), 7)
	StoreRelease64(m.Uint64(24), 9)
	if atomic.LoadUint32(r.Uint32(16)) != 7 || atomic.LoadUint64(r.Uint64(24)) != 9 {
		t.Fatal("release stores not visible")
	}
	ReadFence()
}

func TestAccessorsBoundsChecked(t *testing.T) {
	r, err := New(4096)
	if err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func(){
		"Uint32 past end": func() { r.Mem().Uint32(4094) },
		"Uint64 past end": func() { r.Mem().Uint64(4090) },
		"Bytes past end":  func() { r.Mem().Bytes(4000, 100) },
		"Words8 past end": func() { r.Mem().Words8(4072) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}

func TestReleaseZeroesAndIsIdempotent(t *testing.T) {
	r, err := New(1 << 16)
	if err != nil {
		t.Fatal(err)
	}
	atomic.StoreUint32(r.Uint32(1024), 5)
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
	if !r.Released() {
		t.Fatal("not released")
	}
	if got := atomic.LoadUint32(r.Uint32(1024)); got != 0 {
		t.Fatalf("released memory reads %d, want 0", got)
	}
	if err := r.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestManyRegionsCreatedAndReleased(t *testing.T) {
	// More than the kernel's default mapping limit would allow if released
	// ranges were never unmapped.
	for range 70000 {
		r, err := New(4096)
		if err != nil {
			t.Fatal(err)
		}
		_ = r.Release()
	}
}

func TestOverlap(t *testing.T) {
	b := make([]byte, 16)
	for _, tc := range []struct {
		a, b []byte
		want bool
	}{
		{b[0:4], b[4:8], false},
		{b[0:5], b[4:8], true},
		{b[4:8], b[0:5], true},
		{b[0:16], b[8:9], true},
		{b[0:0], b[0:4], false},
		{nil, b, false},
		{b[0:4], make([]byte, 4), false},
	} {
		if got := Overlap(tc.a, tc.b); got != tc.want {
			t.Errorf("Overlap(%p+%d, %p+%d) = %v", tc.a, len(tc.a), tc.b, len(tc.b), got)
		}
	}
}

func TestHeaderFits(t *testing.T) {
	r, err := New(0)
	if err != nil {
		t.Fatal(err)
	}
	h := r.Header()
	copy(h.Magic[:], Magic)
	h.Size = uint64(r.Len())
	if string(r.Bytes(0, 8)) != Magic {
		t.Fatal("header not at offset 0")
	}
}

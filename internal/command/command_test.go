package command

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfmap/bpfmap/internal/uapi"
)

func name(s string) (n [uapi.ObjNameLen]byte) {
	copy(n[:], s)
	return n
}

func TestCheckName(t *testing.T) {
	for _, tc := range []struct {
		in   [uapi.ObjNameLen]byte
		want string
		err  error
	}{
		{name(""), "", nil},
		{name("abc_.9"), "abc_.9", nil},
		{name("a-b"), "", uapi.EINVAL},
		{name("a b"), "", uapi.EINVAL},
		{name("0123456789abcde"), "0123456789abcde", nil},
		{name("0123456789abcdef"), "", uapi.EINVAL}, // no NUL in 16 bytes
		{name("a\x00-!@"), "a", nil},                // after the NUL is ignored
	} {
		got, err := checkName(tc.in)
		if !errors.Is(err, tc.err) || (err == nil && string(got[:len(tc.want)]) != tc.want) {
			t.Errorf("checkName(%q) = %q, %v; want %q, %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestParseCPURange(t *testing.T) {
	dir := t.TempDir()
	for in, want := range map[string]int{"0\n": 1, "0-1\n": 2, "0-3,8-11": 12, "0,2": 3} {
		p := filepath.Join(dir, "possible")
		if err := os.WriteFile(p, []byte(in), 0o600); err != nil {
			t.Fatal(err)
		}
		if got, ok := parseCPURange(p); !ok || got != want {
			t.Errorf("parse %q = %d, %v; want %d", in, got, ok, want)
		}
	}
	if _, ok := parseCPURange(filepath.Join(dir, "missing")); ok {
		t.Error("missing file parsed")
	}
	if PossibleCPUs() < 1 {
		t.Error("no possible CPUs")
	}
}

func TestHandleLifecycle(t *testing.T) {
	h, err := Create(&CreateAttr{MapType: uint32(uapi.MapTypeHash), KeySize: 4, ValueSize: 4, MaxEntries: 2}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := h.Dup()
	if err != nil {
		t.Fatal(err)
	}
	k, v := []byte{1, 0, 0, 0}, []byte{2, 0, 0, 0}
	if err := h.Update(k, v, 0); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != uapi.EBADF {
		t.Fatalf("second close: %v", err)
	}
	if err := h.Lookup(k, v, 0); err != uapi.EBADF {
		t.Fatalf("lookup on closed handle: %v", err)
	}
	if _, err := h.Dup(); err != uapi.EBADF {
		t.Fatalf("dup of closed handle: %v", err)
	}
	got := make([]byte, 4)
	if err := d.Lookup(k, got, 0); err != nil || got[0] != 2 {
		t.Fatalf("dup lookup: %v %v", err, got)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !d.m.r.Released() {
		t.Fatal("last close did not release the region")
	}
}

func TestUnsupportedType(t *testing.T) {
	_, err := Create(&CreateAttr{MapType: uint32(uapi.MapTypeStackTrace), KeySize: 4, ValueSize: 8, MaxEntries: 2}, Options{})
	var ute *UnsupportedTypeError
	if !errors.As(err, &ute) || ute.Type != uapi.MapTypeStackTrace || ute.Errno() != uapi.EINVAL {
		t.Fatalf("%v", err)
	}
	if got := TypeName(uapi.MapTypeBloomFilter); got != "bloom_filter" {
		t.Fatal(got)
	}
}

func TestZeroSeedNeedsSysAdmin(t *testing.T) {
	_, err := Create(&CreateAttr{MapType: uint32(uapi.MapTypeHash), KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: uapi.FZeroSeed}, Options{Unprivileged: true})
	if err != uapi.EPERM {
		t.Fatalf("%v", err)
	}
}

func TestKeyAndNextKeyMayShareABuffer(t *testing.T) {
	h, err := Create(&CreateAttr{MapType: uint32(uapi.MapTypeHash), KeySize: 4, ValueSize: 4, MaxEntries: 8}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for i := range byte(5) {
		if err := h.Update([]byte{i, 0, 0, 0}, []byte{i, 0, 0, 0}, 0); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 4)
	seen := map[byte]bool{}
	err = h.GetNextKey(nil, buf)
	for err == nil {
		seen[buf[0]] = true
		err = h.GetNextKey(buf, buf)
	}
	if err != uapi.ENOENT || len(seen) != 5 {
		t.Fatalf("walk with one buffer: %v, %d keys", err, len(seen))
	}
}

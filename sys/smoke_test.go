//go:build linux

package sys_test

import (
	"encoding/binary"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

func nativeEndian() binary.ByteOrder { return binary.NativeEndian }

// TestSmoke exercises the basic commands on bpfmap alone.
func TestSmoke(t *testing.T) {
	s := &side{t: t, pinDir: nsDir(t), other: t.TempDir()}
	defer s.closeAll()
	fd, e := s.do(sys.BPF_MAP_CREATE, createAttr(t, 1, 4, 8, 4, 0))
	if e != 0 {
		t.Fatalf("create: %v", e)
	}
	key, val := mem(t, 4), mem(t, 8)
	for i := range 5 {
		ne.PutUint32(key, uint32(i))
		ne.PutUint64(val, uint64(i*10))
		_, e = s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(t, fd, key, val, 0))
		if i < 4 && e != 0 || i == 4 && e.Error() != "argument list too long" {
			t.Fatalf("update %d: %v", i, e)
		}
	}
	ne.PutUint32(key, 2)
	clear(val)
	if _, e = s.do(sys.BPF_MAP_LOOKUP_ELEM, elemAttr(t, fd, key, val, 0)); e != 0 || ne.Uint64(val) != 20 {
		t.Fatalf("lookup: %v %d", e, ne.Uint64(val))
	}
	next := mem(t, 4)
	n := 0
	for k := []byte(nil); ; k = next {
		if _, e = s.do(sys.BPF_MAP_GET_NEXT_KEY, elemAttr(t, fd, k, next, 0)); e != 0 {
			break
		}
		n++
	}
	if n != 4 {
		t.Fatalf("iterated %d keys", n)
	}
	if _, e = s.do(sys.BPF_MAP_DELETE_ELEM, elemAttr(t, fd, key, nil, 0)); e != 0 {
		t.Fatal(e)
	}
	path := joinPath(s.pinDir, "m")
	if _, e = s.do(sys.BPF_OBJ_PIN, objAttr(t, cstr(t, path), fd, 0, 0)); e != 0 {
		t.Fatalf("pin: %v", e)
	}
	fd2, e := s.do(sys.BPF_OBJ_GET, objAttr(t, cstr(t, path), 0, sys.BPF_F_RDONLY, 0))
	if e != 0 {
		t.Fatalf("get: %v", e)
	}
	mi, e := s.mapInfo(fd2)
	if e != 0 || mi.Type != 1 || mi.KeySize != 4 || mi.MaxEntries != 4 {
		t.Fatalf("info %v %+v", e, mi)
	}
	if _, e = s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(t, fd2, key, val, 0)); e.Error() != "operation not permitted" {
		t.Fatalf("update through a read-only fd: %v", e)
	}
	ida := idAttr(t, mi.ID-1, 0, 0)
	if _, e = s.do(sys.BPF_MAP_GET_NEXT_ID, ida); e != 0 || ne.Uint32(ida[4:]) != mi.ID {
		t.Fatalf("next id %v %d want %d", e, ne.Uint32(ida[4:]), mi.ID)
	}
	fd3, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(t, mi.ID, 0, 0))
	if e != 0 {
		t.Fatalf("get fd by id: %v", e)
	}
	if !sys.IsMapFD(fd3) || sys.IsMapFD(0) || !sys.PathInNamespace(path, unix.AT_FDCWD) || sys.PathInNamespace(s.other, unix.AT_FDCWD) {
		t.Fatal("IsMapFD / PathInNamespace")
	}
	t.Log(s.fdinfo(fd3))
}

// TestAdoptedFDs covers map fds this package did not hand out: a pin and
// the object file opened with open(2), and Forget and Close on them.
func TestAdoptedFDs(t *testing.T) {
	s := &side{t: t, pinDir: nsDir(t)}
	defer s.closeAll()
	fd, e := s.do(sys.BPF_MAP_CREATE, createAttr(t, tArray, 4, 8, 2, 0))
	if e != 0 {
		t.Fatal(e)
	}
	path := joinPath(s.pinDir, "adopt")
	if _, e := s.do(sys.BPF_OBJ_PIN, objAttr(t, cstr(t, path), fd, 0, 0)); e != 0 {
		t.Fatal(e)
	}
	key, val := mem(t, 4), mem(t, 8)
	ne.PutUint64(val, 7)
	if _, e := s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(t, fd, key, val, 0)); e != 0 {
		t.Fatal(e)
	}
	ro, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	clear(val)
	if _, e := s.do(sys.BPF_MAP_LOOKUP_ELEM, elemAttr(t, ro, key, val, 0)); e != 0 || ne.Uint64(val) != 7 {
		t.Fatalf("lookup through an opened pin: %v %d", e, ne.Uint64(val))
	}
	if _, e := s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(t, ro, key, val, 0)); e != unix.EPERM {
		t.Fatalf("update through an O_RDONLY pin: %v", e)
	}
	if text, ok := sys.FDInfo(ro); !ok || !strings.Contains(text, "flags:\t02000000\n") {
		t.Errorf("fdinfo of an O_RDONLY pin:\n%s", text)
	}
	// Forget drops the handle, the fd stays open (and is adopted again
	// when used).
	sys.Forget(ro)
	if _, err := unix.FcntlInt(uintptr(ro), unix.F_GETFD, 0); err != nil {
		t.Fatal("Forget closed the fd")
	}
	if !sys.IsMapFD(ro) {
		t.Fatal("not a map fd after Forget")
	}
	if err := sys.Close(ro); err != nil {
		t.Fatal(err)
	}
	if err := sys.Close(ro); err != unix.EBADF {
		t.Fatalf("second Close: %v", err)
	}
	// The object file itself, write-only.
	mi, _ := s.mapInfo(fd)
	obj := os.Getenv("BPFMAP_ROOT") + "/.bpfmap/maps/" + strconv.FormatUint(uint64(mi.ID), 10)
	wo, err := unix.Open(obj, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(wo)
	if _, e := s.do(sys.BPF_MAP_LOOKUP_ELEM, elemAttr(t, wo, key, val, 0)); e != unix.EPERM {
		t.Fatalf("lookup through a write-only object fd: %v", e)
	}
	if _, e := s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(t, wo, key, val, 0)); e != 0 {
		t.Fatalf("update through a write-only object fd: %v", e)
	}
	// A copy of the object file is not the map; neither is a namespace's
	// own file.
	cp := joinPath(s.pinDir, "copy")
	b, _ := os.ReadFile(obj)
	_ = os.WriteFile(cp, b, 0o600)
	for _, p := range []string{cp, os.Getenv("BPFMAP_ROOT") + "/.bpfmap/ids"} {
		f, err := unix.Open(p, unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if sys.IsMapFD(f) {
			t.Errorf("%s taken for a map", p)
		}
		if _, e := s.do(sys.BPF_MAP_LOOKUP_ELEM, elemAttr(t, f, key, val, 0)); e != unix.EINVAL {
			t.Errorf("lookup through %s: %v", p, e)
		}
		_ = unix.Close(f)
	}
	for p, want := range map[string]bool{
		path: true, s.pinDir + "/new": true, os.Getenv("BPFMAP_ROOT"): false,
		// sys answers for the namespace's own directory (EPERM, as bpffs
		// for a name with a '.').
		os.Getenv("BPFMAP_ROOT") + "/.bpfmap/maps/1": true, "/tmp/x": false, "/": false,
	} {
		if got := sys.PathInNamespace(p, unix.AT_FDCWD); got != want {
			t.Errorf("PathInNamespace(%s) = %v", p, got)
		}
	}
}

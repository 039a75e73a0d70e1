//go:build linux

package sys_test

import (
	"encoding/binary"
	"testing"

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
	if !sys.IsMapFD(fd3) || sys.IsMapFD(0) || !sys.IsNamespacePath(path) || sys.IsNamespacePath(s.other) {
		t.Fatal("IsMapFD / IsNamespacePath")
	}
	t.Log(s.fdinfo(fd3))
}

//go:build linux

package sys_test

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

// Map types and flags of the uapi, spelled out so the tests do not take
// their expectations from the code under test.
const (
	tHash        = 1
	tArray       = 2
	tPercpuHash  = 5
	tPercpuArray = 6
	tLRU         = 9
	tLRUPercpu   = 10
	tLPM         = 11
	tArrayOfMaps = 12
	tHashOfMaps  = 13
	tQueue       = 22
	tStack       = 23
	tRingbuf     = 27
	tBloom       = 30

	fNoPrealloc = 1 << 0
	fRdonly     = 1 << 3
	fWronly     = 1 << 4
	fZeroSeed   = 1 << 6
	fPathFD     = 1 << 14
)

// pinCPU runs the calling goroutine on CPU 0 until the returned function
// is called, so that the kernel and bpfmap see the same CPU (LRU lists).
func pinCPU(t *testing.T) func() {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	_ = unix.SchedGetaffinity(0, &old)
	set.Set(0)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		return func() {}
	}
	return func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}

// userBuf copies b into fresh mmap'd memory (nil stays nil: NULL).
func (s *side) buf(b []byte) []byte {
	if b == nil {
		return nil
	}
	m := mem(s.t, len(b))
	copy(m, b)
	return m
}

func hx(b []byte) string {
	if b == nil {
		return "NULL"
	}
	return hex.EncodeToString(b)
}

// infoLine formats a map's info for comparison: everything but the id.
func infoLine(mi sys.MapInfo, e syscall.Errno) string {
	if e != 0 {
		return errName(e)
	}
	mi.ID = 0
	b := unsafe.Slice((*byte)(unsafe.Pointer(&mi)), unsafe.Sizeof(mi))
	return hex.EncodeToString(b)
}

// mapSpec is a map the tests create on both sides.
type mapSpec struct {
	name             string
	typ, ks, vs, max uint32
	flags            uint32
	extra            uint64
	valueSys         int // value bytes of the element commands
}

func possibleCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/possible")
	if err != nil {
		return runtime.NumCPU()
	}
	var lo, hi int
	if n, _ := fmt.Sscanf(string(b), "%d-%d", &lo, &hi); n == 2 {
		return hi + 1
	}
	return 1
}

var specs = func() []mapSpec {
	nc := possibleCPUs()
	pc := func(vs uint32) int { return int((vs+7)&^7) * nc }
	return []mapSpec{
		{name: "hash", typ: tHash, ks: 4, vs: 8, max: 8, flags: fZeroSeed, valueSys: 8},
		{name: "hash_odd", typ: tHash, ks: 3, vs: 5, max: 4, flags: fZeroSeed | fNoPrealloc, valueSys: 5},
		{name: "array", typ: tArray, ks: 4, vs: 12, max: 6, valueSys: 12},
		{name: "percpu_hash", typ: tPercpuHash, ks: 4, vs: 5, max: 6, flags: fZeroSeed, valueSys: pc(5)},
		{name: "percpu_array", typ: tPercpuArray, ks: 4, vs: 8, max: 4, valueSys: pc(8)},
		{name: "lru", typ: tLRU, ks: 4, vs: 8, max: 64, flags: fZeroSeed, valueSys: 8},
		{name: "lru_percpu", typ: tLRUPercpu, ks: 4, vs: 8, max: 64, flags: fZeroSeed, valueSys: pc(8)},
		{name: "lpm", typ: tLPM, ks: 8, vs: 4, max: 8, flags: fNoPrealloc, valueSys: 4},
		{name: "bloom", typ: tBloom, ks: 0, vs: 4, max: 16, flags: fZeroSeed, extra: 3, valueSys: 4},
		{name: "queue", typ: tQueue, ks: 0, vs: 4, max: 4, valueSys: 4},
		{name: "stack", typ: tStack, ks: 0, vs: 4, max: 4, valueSys: 4},
		{name: "ringbuf", typ: tRingbuf, ks: 0, vs: 0, max: 4096, valueSys: 0},
	}
}()

func (m mapSpec) attr(t testing.TB) []byte {
	a := createAttr(t, m.typ, m.ks, m.vs, m.max, m.flags)
	ne.PutUint64(a[64:], m.extra)
	copy(a[28:44], "t_"+m.name)
	return a
}

// create makes the map on the side and logs the result, its info and its
// fdinfo.
func (s *side) create(m mapSpec) int {
	fd, e := s.do(sys.BPF_MAP_CREATE, m.attr(s.t))
	s.logf("create %s: %s", m.name, res(fd, e))
	if e != 0 {
		return -1
	}
	mi, e := s.mapInfo(fd)
	s.logf("  info %s", infoLine(mi, e))
	s.logf("  fdinfo %s", s.fdinfo(fd))
	fl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	s.logf("  F_GETFL accmode %d", fl&unix.O_ACCMODE)
	fdfl, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	s.logf("  F_GETFD %d", fdfl)
	return fd
}

// TestDiffCreateTypes creates every implemented type and compares the
// result, bpf_map_info and fdinfo.
func TestDiffCreateTypes(t *testing.T) {
	diff(t, func(s *side) {
		for _, m := range specs {
			s.create(m)
		}
		// Inner-map types with an ARRAY template.
		tmpl := s.create(mapSpec{name: "inner", typ: tArray, ks: 4, vs: 4, max: 2})
		for _, typ := range []uint32{tArrayOfMaps, tHashOfMaps} {
			a := createAttr(s.t, typ, 4, 4, 4, 0)
			ne.PutUint32(a[20:], uint32(tmpl))
			fd, e := s.do(sys.BPF_MAP_CREATE, a)
			s.logf("create outer %d: %s", typ, res(fd, e))
			if e == 0 {
				mi, e := s.mapInfo(fd)
				s.logf("  info %s", infoLine(mi, e))
				s.logf("  fdinfo %s", s.fdinfo(fd))
			}
		}
	})
}

// TestDiffCreateErrors compares BPF_MAP_CREATE failures.
func TestDiffCreateErrors(t *testing.T) {
	diff(t, func(s *side) {
		cases := []struct {
			name string
			edit func(a []byte)
		}{
			{"type 0", func(a []byte) { ne.PutUint32(a[0:], 0) }},
			{"type 99", func(a []byte) { ne.PutUint32(a[0:], 99) }},
			{"key 0", func(a []byte) { ne.PutUint32(a[4:], 0) }},
			{"max 0", func(a []byte) { ne.PutUint32(a[12:], 0) }},
			{"rdonly|wronly", func(a []byte) { ne.PutUint32(a[16:], fRdonly|fWronly) }},
			{"bad name", func(a []byte) { copy(a[28:], "a-b") }},
			{"16-char name", func(a []byte) { copy(a[28:44], "0123456789abcdef") }},
			{"name after NUL", func(a []byte) { copy(a[28:], "ok\x00-!") }},
			{"map_extra", func(a []byte) { ne.PutUint64(a[64:], 1) }},
			{"btf key without value", func(a []byte) { ne.PutUint32(a[52:], 1) }},
			{"btf fd alone (ignored)", func(a []byte) { ne.PutUint32(a[48:], 12345) }},
			{"unknown flag", func(a []byte) { ne.PutUint32(a[16:], 1<<20) }},
			{"ifindex", func(a []byte) { ne.PutUint32(a[44:], 1) }},
			{"token flag", func(a []byte) { ne.PutUint32(a[16:], 1<<16) }},
			{"excl hash size without pointer", func(a []byte) { ne.PutUint32(a[88:], 32) }},
			{"inner_map_fd ignored", func(a []byte) { ne.PutUint32(a[20:], 9999) }},
		}
		for _, c := range cases {
			a := createAttr(s.t, tHash, 4, 8, 4, 0)
			c.edit(a)
			fd, e := s.do(sys.BPF_MAP_CREATE, a)
			s.logf("%s: %s", c.name, res(fd, e))
		}
		// Inner-map templates.
		reg, err := os.CreateTemp(s.other, "reg")
		if err != nil {
			s.t.Fatal(err)
		}
		defer reg.Close()
		outerOf := s.create(mapSpec{name: "inner", typ: tArray, ks: 4, vs: 4, max: 1})
		a := createAttr(s.t, tArrayOfMaps, 4, 4, 4, 0)
		ne.PutUint32(a[20:], uint32(outerOf))
		outer, _ := s.do(sys.BPF_MAP_CREATE, a)
		closed := s.create(mapSpec{name: "closed", typ: tArray, ks: 4, vs: 4, max: 1})
		_ = s.close(closed)
		for _, c := range []struct {
			name string
			fd   int
		}{{"fd 0", 0}, {"closed", closed}, {"regular file", int(reg.Fd())}, {"not open", 999}, {"map-in-map", outer}} {
			for _, typ := range []uint32{tArrayOfMaps, tHashOfMaps} {
				a := createAttr(s.t, typ, 4, 4, 4, 0)
				ne.PutUint32(a[20:], uint32(c.fd))
				fd, e := s.do(sys.BPF_MAP_CREATE, a)
				s.logf("outer %d template %s: %s", typ, c.name, res(fd, e))
			}
		}
	})
}

// TestDiffEnvelope compares the syscall envelope: sizes, tails, NULL
// attrs, CHECK_ATTR and unknown commands.
func TestDiffEnvelope(t *testing.T) {
	diff(t, func(s *side) {
		fd := s.create(specs[0])
		// A map exists, so GET_NEXT_ID from 0 finds one on both sides.
		for _, cmd := range []int{0, 1, 2, 3, 4, 6, 7, 12, 14, 15, 21, 22, 24, 25, 26, 27, 1000, -1} {
			for _, size := range []uintptr{0, 8, 4097, 1 << 40} {
				r, e := s.doSize(cmd, nil, size)
				s.logf("cmd %d NULL size %d: %s", cmd, size, res(r, e))
			}
		}
		key, val := mem(s.t, 4), mem(s.t, 8)
		base := func() []byte { return elemAttr(s.t, fd, key, val, 0) }
		full := func(a []byte) []byte { return a[:cap(a)] }
		// Sizes around the attr and the page.
		for _, size := range []uintptr{0, 4, 8, 16, 24, 32, 100, 168, 169, 4096, 4097, 8192} {
			a := full(base())
			r, e := s.doSize(sys.BPF_MAP_LOOKUP_ELEM, a, size)
			s.logf("lookup size %d: %s", size, res(r, e))
		}
		// Non-zero bytes in the tail beyond the kernel's attr.
		for _, off := range []int{167, 168, 200, 4095} {
			for _, size := range []uintptr{off32(off), 4096} {
				a := full(base())
				a[off] = 1
				r, e := s.doSize(sys.BPF_MAP_LOOKUP_ELEM, a, size)
				s.logf("lookup byte %d size %d: %s", off, size, res(r, e))
			}
		}
		// CHECK_ATTR: the first byte after each command's last field.
		ends := map[int]int{
			sys.BPF_MAP_CREATE: 92, sys.BPF_MAP_LOOKUP_ELEM: 32, sys.BPF_MAP_UPDATE_ELEM: 32,
			sys.BPF_MAP_DELETE_ELEM: 16, sys.BPF_MAP_GET_NEXT_KEY: 24, sys.BPF_MAP_LOOKUP_AND_DELETE_ELEM: 32,
			sys.BPF_MAP_FREEZE: 4, sys.BPF_MAP_LOOKUP_BATCH: 56, sys.BPF_MAP_LOOKUP_AND_DELETE_BATCH: 56,
			sys.BPF_MAP_UPDATE_BATCH: 56, sys.BPF_MAP_DELETE_BATCH: 56, sys.BPF_OBJ_PIN: 20, sys.BPF_OBJ_GET: 20,
			sys.BPF_MAP_GET_NEXT_ID: 8, sys.BPF_MAP_GET_FD_BY_ID: 12, sys.BPF_OBJ_GET_INFO_BY_FD: 16,
		}
		for _, cmd := range []int{0, 1, 2, 3, 4, 6, 7, 12, 14, 15, 21, 22, 24, 25, 26, 27} {
			end := ends[cmd]
			for _, off := range []int{end, end + 3, 100, 167} {
				if off < end {
					continue
				}
				a := mem(s.t, 4096)
				ne.PutUint32(a[0:], uint32(fd)) // a map fd where one is read
				if cmd >= 24 && cmd <= 27 {
					ne.PutUint32(a[0:], 0)
					ne.PutUint32(a[36:], uint32(fd))
				}
				if cmd == sys.BPF_MAP_CREATE {
					copy(a, createAttr(s.t, tArray, 4, 4, 1, 0))
				}
				a[off] = 0x80
				r, e := s.doSize(cmd, a, sys.AttrSize)
				s.logf("cmd %d byte %d: %s", cmd, off, res(r, e))
			}
		}
		// Short create attrs are zero-extended.
		for _, size := range []uintptr{12, 16, 20, 28} {
			a := createAttr(s.t, tArray, 4, 4, 2, 0)
			r, e := s.doSize(sys.BPF_MAP_CREATE, a, size)
			s.logf("create size %d: %s", size, res(r, e))
		}
	})
}

func off32(off int) uintptr {
	if off < 168 {
		return 168
	}
	return uintptr(off + 1)
}

// elemOp is one element command with its buffers (nil: NULL).
type elemOp struct {
	cmd        int
	key, value []byte
	next       bool // GET_NEXT_KEY: value is the next_key buffer
	flags      uint64
}

// run applies op to the map fd on the side and logs the result and the
// output buffers.
func (s *side) run(fd int, op elemOp) {
	k, v := s.buf(op.key), s.buf(op.value)
	_, e := s.do(op.cmd, elemAttr(s.t, fd, k, v, op.flags))
	s.logf("cmd %d key %s flags %d: %s key %s value %s", op.cmd, hx(op.key), op.flags, errName(e), hx(k), hx(v))
}

// randomOps is a reproducible random sequence of element commands for m.
func randomOps(m mapSpec, seed uint64, n int) []elemOp {
	r := rand.New(rand.NewPCG(seed, 7))
	var ops []elemOp
	key := func() []byte {
		if m.ks == 0 {
			if r.IntN(8) == 0 {
				return make([]byte, 4) // a key where none is allowed
			}
			return nil
		}
		if r.IntN(30) == 0 {
			return nil
		}
		k := make([]byte, m.ks)
		switch m.typ {
		case tArray, tPercpuArray:
			ne.PutUint32(k, uint32(r.IntN(int(m.max)+2)))
		case tLPM:
			ne.PutUint32(k, uint32(r.IntN(33)))
			k[4] = byte(r.IntN(4)) * 64
			k[5] = byte(r.IntN(2))
		default:
			k[0] = byte(r.IntN(12))
		}
		return k
	}
	value := func() []byte {
		if r.IntN(30) == 0 {
			return nil
		}
		v := make([]byte, m.valueSys)
		for i := range v {
			v[i] = byte(r.Uint32())
		}
		return v
	}
	for range n {
		var op elemOp
		switch r.IntN(6) {
		case 0, 1:
			op = elemOp{cmd: sys.BPF_MAP_UPDATE_ELEM, key: key(), value: value(), flags: uint64(r.IntN(5))}
		case 2:
			op = elemOp{cmd: sys.BPF_MAP_LOOKUP_ELEM, key: key(), value: value(), flags: uint64(r.IntN(2) * r.IntN(5))}
		case 3:
			op = elemOp{cmd: sys.BPF_MAP_DELETE_ELEM, key: key()}
		case 4:
			op = elemOp{cmd: sys.BPF_MAP_GET_NEXT_KEY, key: key(), value: make([]byte, m.ks), next: true}
			if r.IntN(10) == 0 {
				op.value = nil
			}
		case 5:
			op = elemOp{cmd: sys.BPF_MAP_LOOKUP_AND_DELETE_ELEM, key: key(), value: value(), flags: uint64(r.IntN(2) * r.IntN(5))}
		}
		ops = append(ops, op)
	}
	return ops
}

// TestDiffElements runs a random sequence of element commands on every
// implemented type and compares every errno and output byte.
func TestDiffElements(t *testing.T) {
	for _, m := range specs {
		t.Run(m.name, func(t *testing.T) {
			ops := randomOps(m, uint64(m.typ)*1000+uint64(m.ks), 400)
			diff(t, func(s *side) {
				defer pinCPU(t)()
				fd := s.create(m)
				if fd < 0 {
					return
				}
				for _, op := range ops {
					s.run(fd, op)
				}
				// Freeze, then writes fail and reads work.
				_, e := s.do(sys.BPF_MAP_FREEZE, elemAttr(s.t, fd, nil, nil, 0))
				s.logf("freeze: %s", errName(e))
				_, e = s.do(sys.BPF_MAP_FREEZE, elemAttr(s.t, fd, nil, nil, 0))
				s.logf("freeze again: %s", errName(e))
				for _, op := range ops[:40] {
					s.run(fd, op)
				}
				s.logf("fdinfo %s", s.fdinfo(fd))
			})
		})
	}
}

// TestDiffAccessModes compares read-only and write-only fds from
// MAP_CREATE, OBJ_GET and MAP_GET_FD_BY_ID.
func TestDiffAccessModes(t *testing.T) {
	diff(t, func(s *side) {
		key, val := []byte{1, 0, 0, 0}, make([]byte, 8)
		ops := []elemOp{
			{cmd: sys.BPF_MAP_UPDATE_ELEM, key: key, value: val},
			{cmd: sys.BPF_MAP_LOOKUP_ELEM, key: key, value: val},
			{cmd: sys.BPF_MAP_GET_NEXT_KEY, key: nil, value: make([]byte, 4)},
			{cmd: sys.BPF_MAP_LOOKUP_AND_DELETE_ELEM, key: key, value: val},
			{cmd: sys.BPF_MAP_DELETE_ELEM, key: key},
		}
		for _, flags := range []uint32{fRdonly, fWronly} {
			m := mapSpec{name: "mode", typ: tHash, ks: 4, vs: 8, max: 4, flags: flags}
			fd := s.create(m)
			for _, op := range ops {
				s.run(fd, op)
			}
			// Batches and freeze through the mode.
			keys, vals := mem(s.t, 16), mem(s.t, 32)
			for _, cmd := range []int{24, 25, 26, 27} {
				out := mem(s.t, 4)
				a := batchAttr(s.t, fd, nil, out, keys, vals, 1, 0, 0)
				_, e := s.do(cmd, a)
				s.logf("batch %d: %s count %d", cmd, errName(e), ne.Uint32(a[32:]))
			}
			_, e := s.do(sys.BPF_MAP_FREEZE, elemAttr(s.t, fd, nil, nil, 0))
			s.logf("freeze: %s", errName(e))
		}
		fd := s.create(mapSpec{name: "rw", typ: tHash, ks: 4, vs: 8, max: 4})
		mi, _ := s.mapInfo(fd)
		path := joinPath(s.pinDir, "rw")
		_, e := s.do(sys.BPF_OBJ_PIN, objAttr(s.t, cstr(s.t, path), fd, 0, 0))
		s.logf("pin: %s", errName(e))
		for _, flags := range []uint32{0, fRdonly, fWronly, fRdonly | fWronly, 1, fPathFD} {
			for _, by := range []string{"path", "id"} {
				var g int
				if by == "path" {
					g, e = s.do(sys.BPF_OBJ_GET, objAttr(s.t, cstr(s.t, path), 0, flags, 0))
				} else {
					g, e = s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, flags))
				}
				s.logf("get by %s flags %#x: %s", by, flags, res(g, e))
				if e != 0 {
					continue
				}
				fl, _ := unix.FcntlInt(uintptr(g), unix.F_GETFL, 0)
				s.logf("  accmode %d fdinfo %s", fl&unix.O_ACCMODE, s.fdinfo(g))
				for _, op := range ops {
					s.run(g, op)
				}
			}
		}
	})
}

// TestDiffFDs compares map fds closed, dup'ed, used after close, and fds
// that are not maps.
func TestDiffFDs(t *testing.T) {
	diff(t, func(s *side) {
		m := mapSpec{name: "fds", typ: tArray, ks: 4, vs: 8, max: 4}
		fd := s.create(m)
		key, val := []byte{1, 0, 0, 0}, []byte{1, 2, 3, 4, 5, 6, 7, 8}
		s.run(fd, elemOp{cmd: sys.BPF_MAP_UPDATE_ELEM, key: key, value: val})
		d, err := unix.Dup(fd)
		if err != nil {
			s.t.Fatal(err)
		}
		s.run(d, elemOp{cmd: sys.BPF_MAP_LOOKUP_ELEM, key: key, value: make([]byte, 8)})
		mi, e := s.mapInfo(d)
		s.logf("dup info %s", infoLine(mi, e))
		s.logf("dup fdinfo %s", s.fdinfo(d))
		// close(2) of the original: the dup keeps the map.
		_ = unix.Close(fd)
		for i, f := range s.fds {
			if f == fd {
				s.fds = append(s.fds[:i], s.fds[i+1:]...)
			}
		}
		s.run(fd, elemOp{cmd: sys.BPF_MAP_LOOKUP_ELEM, key: key, value: make([]byte, 8)})
		s.run(d, elemOp{cmd: sys.BPF_MAP_LOOKUP_ELEM, key: key, value: make([]byte, 8)})
		g, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, 0))
		s.logf("get by id while the dup lives: %s", res(g, e))
		if e == 0 {
			_ = s.close(g)
		}
		_ = unix.Close(d)
		g, e = s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, 0))
		s.logf("get by id after the last close(2): %s", res(g, e))
		_, e = s.mapInfo(d)
		s.logf("info of closed fd: %s", errName(e))
		// A regular file and a pipe are not maps.
		reg, err := os.CreateTemp(s.other, "reg")
		if err != nil {
			s.t.Fatal(err)
		}
		defer reg.Close()
		var p [2]int
		_ = unix.Pipe(p[:])
		defer unix.Close(p[0])
		defer unix.Close(p[1])
		for _, f := range []int{int(reg.Fd()), p[0], 0, -1, 1 << 20} {
			s.run(f, elemOp{cmd: sys.BPF_MAP_LOOKUP_ELEM, key: key, value: make([]byte, 8)})
			s.run(f, elemOp{cmd: sys.BPF_MAP_UPDATE_ELEM, key: key, value: val})
			_, e := s.mapInfo(f)
			s.logf("info of fd: %s", errName(e))
			_, e = s.do(sys.BPF_MAP_FREEZE, elemAttr(s.t, f, nil, nil, 0))
			s.logf("freeze: %s", errName(e))
			a := batchAttr(s.t, f, nil, nil, nil, nil, 1, 0, 0)
			_, e = s.do(sys.BPF_MAP_LOOKUP_BATCH, a)
			s.logf("batch: %s", errName(e))
			_, e = s.do(sys.BPF_OBJ_PIN, objAttr(s.t, cstr(s.t, joinPath(s.pinDir, "x")), f, 0, 0))
			s.logf("pin: %s", errName(e))
		}
		// A reused fd number: the old map's fd now is a new map.
		fd = s.create(m)
		_ = unix.Close(fd)
		for i, f := range s.fds {
			if f == fd {
				s.fds = append(s.fds[:i], s.fds[i+1:]...)
			}
		}
		m2 := mapSpec{name: "fds2", typ: tHash, ks: 8, vs: 4, max: 2}
		fd2 := s.create(m2)
		if fd2 != fd {
			if err := unix.Dup3(fd2, fd, unix.O_CLOEXEC); err != nil {
				s.t.Fatal(err)
			}
			s.fds = append(s.fds, fd)
		}
		s.run(fd, elemOp{cmd: sys.BPF_MAP_UPDATE_ELEM, key: make([]byte, 8), value: make([]byte, 4)})
		mi, e = s.mapInfo(fd)
		s.logf("info %s", infoLine(mi, e))
		s.logf("fdinfo %s", s.fdinfo(fd))
	})
}

// TestDiffInfo compares OBJ_GET_INFO_BY_FD's info_len rules, the fields
// it leaves alone, and the map hash of frozen arrays.
func TestDiffInfo(t *testing.T) {
	diff(t, func(s *side) {
		fd := s.create(mapSpec{name: "info", typ: tHash, ks: 4, vs: 8, max: 4})
		afd := s.create(mapSpec{name: "arr", typ: tArray, ks: 4, vs: 12, max: 3})
		for _, n := range []uint32{0, 1, 8, 88, 99, 100, 101, 103, 104, 105, 200, 4096, 4097, 1 << 20} {
			for _, fill := range []byte{0, 0xab} {
				for _, tailAt := range []int{-1, 100, 103, 104, 150} {
					buf := mem(s.t, 8192)
					for i := 0; i < 88; i++ {
						buf[i] = fill
					}
					if tailAt >= 0 {
						buf[tailAt] = 1
					}
					a := infoAttr(s.t, fd, n, buf)
					_, e := s.do(sys.BPF_OBJ_GET_INFO_BY_FD, a)
					id := ne.Uint32(buf[4:])
					ne.PutUint32(buf[4:], 0)
					s.logf("info_len %d fill %#x tail %d: %s len %d buf %s", n, fill, tailAt, errName(e), ne.Uint32(a[4:]), hx(buf[:120]))
					_ = id
				}
			}
			_, e := s.do(sys.BPF_OBJ_GET_INFO_BY_FD, infoAttr(s.t, fd, n, nil))
			s.logf("info_len %d NULL: %s", n, errName(e))
		}
		// The map hash.
		hash := mem(s.t, 64)
		for _, f := range []int{fd, afd} {
			for _, frozen := range []bool{false, true} {
				if frozen {
					for i := range 3 {
						s.run(f, elemOp{cmd: sys.BPF_MAP_UPDATE_ELEM, key: []byte{byte(i), 0, 0, 0}, value: []byte("abcdefghijkl")})
					}
					_, e := s.do(sys.BPF_MAP_FREEZE, elemAttr(s.t, f, nil, nil, 0))
					s.logf("freeze: %s", errName(e))
				}
				for _, c := range []struct {
					h    []byte
					size uint32
				}{{hash, 32}, {hash, 0}, {nil, 32}, {hash, 16}, {hash, 64}} {
					clear(hash)
					buf := mem(s.t, sys.MapInfoSize)
					ne.PutUint64(buf[88:], addr(c.h))
					ne.PutUint32(buf[96:], c.size)
					_, e := s.do(sys.BPF_OBJ_GET_INFO_BY_FD, infoAttr(s.t, f, sys.MapInfoSize, buf))
					s.logf("hash frozen %v size %d ptr %v: %s hash %s", frozen, c.size, c.h != nil, errName(e), hx(hash[:32]))
				}
			}
		}
	})
}

// TestDiffBatch compares the four batch commands on hash and array maps.
func TestDiffBatch(t *testing.T) {
	for _, m := range []mapSpec{specs[0], specs[2], specs[3], specs[7], specs[9]} {
		t.Run(m.name, func(t *testing.T) {
			diff(t, func(s *side) {
				defer pinCPU(t)()
				fd := s.create(m)
				r := rand.New(rand.NewPCG(uint64(m.typ), 3))
				ks, vs := int(m.ks), m.valueSys
				cs := ks
				if m.typ == tHash || m.typ == tPercpuHash {
					cs = 4
				}
				var cursor []byte
				for range 60 {
					cmd := 24 + r.IntN(4)
					count := uint32(r.IntN(int(m.max) + 2))
					keys := make([]byte, int(count)*ks)
					vals := make([]byte, int(count)*vs)
					for i := range keys {
						keys[i] = byte(r.IntN(3))
					}
					if m.typ == tArray || m.typ == tPercpuArray {
						for i := 0; i < int(count); i++ {
							ne.PutUint32(keys[i*ks:], uint32(r.IntN(int(m.max)+1)))
						}
					}
					if m.typ == tLPM {
						for i := 0; i < int(count); i++ {
							ne.PutUint32(keys[i*ks:], uint32(r.IntN(33)))
						}
					}
					for i := range vals {
						vals[i] = byte(r.Uint32())
					}
					var in []byte
					if r.IntN(2) == 0 && cursor != nil {
						in = cursor
					}
					out := make([]byte, max(cs, 1))
					kb, vb := s.buf(keys), s.buf(vals)
					if r.IntN(20) == 0 {
						kb = nil
					}
					if r.IntN(20) == 0 {
						vb = nil
					}
					ib, ob := s.buf(in), s.buf(out)
					if r.IntN(20) == 0 {
						ob = nil
					}
					ef, fl := uint64(0), uint64(0)
					if r.IntN(15) == 0 {
						ef = uint64(r.IntN(5))
					}
					if r.IntN(15) == 0 {
						fl = 1
					}
					a := batchAttr(s.t, fd, ib, ob, kb, vb, count, ef, fl)
					_, e := s.do(cmd, a)
					s.logf("batch %d count %d in %s: %s count %d out %s keys %s values %s", cmd, count, hx(in), errName(e),
						ne.Uint32(a[32:]), hx(ob), hx(kb), hx(vb))
					if e == 0 || e == unix.ENOENT {
						cursor = append([]byte(nil), ob...)
					}
				}
			})
		})
	}
}

// TestDiffPinGet compares BPF_OBJ_PIN and BPF_OBJ_GET: targets inside and
// outside the pin file system / namespace, path_fd, relative paths and
// errors.
func TestDiffPinGet(t *testing.T) {
	diff(t, func(s *side) {
		fd := s.create(mapSpec{name: "pin", typ: tHash, ks: 4, vs: 8, max: 4})
		reg := joinPath(s.other, "regular")
		_ = os.WriteFile(reg, []byte("x"), 0o600)
		_ = os.Mkdir(joinPath(s.pinDir, "sub"), 0o700)
		dirFD, err := unix.Open(s.pinDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		defer unix.Close(dirFD)
		regFD, _ := unix.Open(reg, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		defer unix.Close(regFD)
		type pc struct {
			name   string
			path   string
			null   bool
			fd     int
			flags  uint32
			pathFD int32
		}
		pins := []pc{
			{name: "ok", path: joinPath(s.pinDir, "m"), fd: fd},
			{name: "exists", path: joinPath(s.pinDir, "m"), fd: fd},
			{name: "sub", path: joinPath(s.pinDir, "sub/m"), fd: fd},
			{name: "no dir", path: joinPath(s.pinDir, "nodir/m"), fd: fd},
			{name: "under pin", path: joinPath(s.pinDir, "m/x"), fd: fd},
			{name: "outside", path: joinPath(s.other, "m"), fd: fd},
			{name: "under regular", path: reg + "/x", fd: fd},
			{name: "NULL", null: true, fd: fd},
			{name: "empty", path: "", fd: fd},
			{name: "bad fd", path: joinPath(s.pinDir, "b"), fd: 999},
			{name: "fd 0", path: joinPath(s.pinDir, "b"), fd: 0},
			{name: "flags", path: joinPath(s.pinDir, "f"), fd: fd, flags: fRdonly},
			{name: "path_fd without flag", path: "p", fd: fd, pathFD: int32(dirFD)},
			{name: "path_fd", path: "p", fd: fd, flags: fPathFD, pathFD: int32(dirFD)},
			{name: "path_fd sub", path: "sub/p", fd: fd, flags: fPathFD, pathFD: int32(dirFD)},
			{name: "path_fd abs", path: joinPath(s.pinDir, "pa"), fd: fd, flags: fPathFD, pathFD: int32(regFD)},
			{name: "path_fd regular", path: "p2", fd: fd, flags: fPathFD, pathFD: int32(regFD)},
			{name: "path_fd not open", path: "p2", fd: fd, flags: fPathFD, pathFD: 999},
			{name: "path_fd cwd", path: "p3", fd: fd, flags: fPathFD, pathFD: unix.AT_FDCWD},
		}
		for _, c := range pins {
			var p []byte
			if !c.null {
				p = cstr(s.t, c.path)
			}
			_, e := s.do(sys.BPF_OBJ_PIN, objAttr(s.t, p, c.fd, c.flags, c.pathFD))
			s.logf("pin %s: %s", c.name, errName(e))
		}
		gets := []pc{
			{name: "ok", path: joinPath(s.pinDir, "m")},
			{name: "sub", path: joinPath(s.pinDir, "sub/m")},
			{name: "missing", path: joinPath(s.pinDir, "none")},
			{name: "dir", path: joinPath(s.pinDir, "sub")},
			{name: "under pin", path: joinPath(s.pinDir, "m/x")},
			{name: "outside regular", path: reg},
			{name: "outside missing", path: joinPath(s.other, "none")},
			{name: "outside dir", path: s.other},
			{name: "NULL", null: true},
			{name: "empty", path: ""},
			{name: "bpf_fd", path: joinPath(s.pinDir, "m"), fd: fd},
			{name: "rdonly|wronly", path: joinPath(s.pinDir, "m"), flags: fRdonly | fWronly},
			{name: "bad flag", path: joinPath(s.pinDir, "m"), flags: 1},
			{name: "path_fd", path: "p", flags: fPathFD, pathFD: int32(dirFD)},
			{name: "path_fd rdonly", path: "sub/p", flags: fPathFD | fRdonly, pathFD: int32(dirFD)},
			{name: "path_fd without flag", path: "p", pathFD: int32(dirFD)},
			{name: "path_fd regular", path: "p", flags: fPathFD, pathFD: int32(regFD)},
			{name: "path_fd not open", path: "p", flags: fPathFD, pathFD: 999},
		}
		for _, c := range gets {
			var p []byte
			if !c.null {
				p = cstr(s.t, c.path)
			}
			g, e := s.do(sys.BPF_OBJ_GET, objAttr(s.t, p, c.fd, c.flags, c.pathFD))
			s.logf("get %s: %s", c.name, res(g, e))
			if e == 0 {
				mi, e := s.mapInfo(g)
				s.logf("  info %s", infoLine(mi, e))
				s.logf("  fdinfo %s", s.fdinfo(g))
			}
		}
		// Relative to the working directory.
		wd, _ := os.Getwd()
		if err := os.Chdir(s.pinDir); err != nil {
			s.t.Fatal(err)
		}
		_, e := s.do(sys.BPF_OBJ_PIN, objAttr(s.t, cstr(s.t, "cwd"), fd, 0, 0))
		s.logf("pin cwd-relative: %s", errName(e))
		g, e := s.do(sys.BPF_OBJ_GET, objAttr(s.t, cstr(s.t, "sub/../cwd"), 0, 0, 0))
		s.logf("get cwd-relative: %s", res(g, e))
		_ = os.Chdir(s.other)
		_, e = s.do(sys.BPF_OBJ_PIN, objAttr(s.t, cstr(s.t, "cwd"), fd, 0, 0))
		s.logf("pin cwd-relative outside: %s", errName(e))
		_ = os.Chdir(wd)
		// The pin keeps the map after every fd is closed.
		mi, _ := s.mapInfo(fd)
		s.closeAll()
		g, e = s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, 0))
		s.logf("by id with pins only: %s", res(g, e))
		g, e = s.do(sys.BPF_OBJ_GET, objAttr(s.t, cstr(s.t, joinPath(s.pinDir, "m")), 0, 0, 0))
		s.logf("get with pins only: %s", res(g, e))
		s.closeAll()
		for _, p := range []string{"m", "sub/m", "p", "sub/p", "pa", "cwd"} {
			_ = os.Remove(joinPath(s.pinDir, p))
		}
		g, e = s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, 0))
		s.logf("by id after unpinning: %s", res(g, e))
	})
}

// TestDiffIDs compares MAP_GET_NEXT_ID and MAP_GET_FD_BY_ID.
func TestDiffIDs(t *testing.T) {
	diff(t, func(s *side) {
		fd := s.create(mapSpec{name: "ids", typ: tArray, ks: 4, vs: 4, max: 1})
		mi, _ := s.mapInfo(fd)
		a := idAttr(s.t, mi.ID-1, 0, 0)
		_, e := s.do(sys.BPF_MAP_GET_NEXT_ID, a)
		s.logf("next after id-1: %s is id %v", errName(e), ne.Uint32(a[4:]) == mi.ID)
		for _, start := range []uint32{1<<31 - 1, 1<<31 - 2, 1 << 31, ^uint32(0)} {
			a := idAttr(s.t, start, 0, 0)
			_, e := s.do(sys.BPF_MAP_GET_NEXT_ID, a)
			s.logf("next after %#x: %s %d", start, errName(e), ne.Uint32(a[4:]))
		}
		// next_id is written even when size ends before it.
		a = idAttr(s.t, mi.ID-1, 0, 0)
		_, e = s.doSize(sys.BPF_MAP_GET_NEXT_ID, a, 4)
		s.logf("next, size 4: %s is id %v", errName(e), ne.Uint32(a[4:]) == mi.ID)
		for _, c := range []struct {
			id, flags uint32
		}{{mi.ID, 0}, {mi.ID, fRdonly}, {mi.ID, fWronly}, {mi.ID, fRdonly | fWronly}, {mi.ID, 1}, {0, 0}, {1<<31 - 1, 0}, {^uint32(0), 0}, {mi.ID, fPathFD}} {
			g, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, c.id, 0, c.flags))
			s.logf("fd by id flags %#x: %s", c.flags, res(g, e))
			if e == 0 {
				mi2, e := s.mapInfo(g)
				s.logf("  same map %v %s", mi2.ID == mi.ID, errName(e))
			}
		}
		// After the last close(2) (not sys.Close) the id is gone.
		s.closeAll()
		fd = s.create(mapSpec{name: "ids2", typ: tArray, ks: 4, vs: 4, max: 1})
		mi, _ = s.mapInfo(fd)
		g, _ := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, 0))
		_ = unix.Close(fd)
		_ = unix.Close(g)
		s.fds = nil
		g, e = s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, mi.ID, 0, 0))
		s.logf("fd by id after close(2): %s", res(g, e))
		a = idAttr(s.t, mi.ID-1, 0, 0)
		_, e = s.do(sys.BPF_MAP_GET_NEXT_ID, a)
		s.logf("next after id-1 after close(2): is id %v", e == 0 && ne.Uint32(a[4:]) == mi.ID)
	})
}

// TestDiffMapInMap compares map-in-map creation, fd values, id lookups and
// batches.
func TestDiffMapInMap(t *testing.T) {
	for _, typ := range []uint32{tArrayOfMaps, tHashOfMaps} {
		t.Run(fmt.Sprint(typ), func(t *testing.T) {
			diff(t, func(s *side) {
				inner := mapSpec{name: "inner", typ: tHash, ks: 4, vs: 4, max: 2}
				tmpl := s.create(inner)
				a := createAttr(s.t, typ, 4, 4, 3, 0)
				ne.PutUint32(a[20:], uint32(tmpl))
				if typ == tHashOfMaps {
					ne.PutUint32(a[16:], fZeroSeed)
				}
				outer, e := s.do(sys.BPF_MAP_CREATE, a)
				s.logf("create outer: %s", res(outer, e))
				_ = s.close(tmpl) // only the template's metadata is kept
				var inners []int
				var ids []uint32
				for range 3 {
					fd := s.create(inner)
					mi, _ := s.mapInfo(fd)
					inners = append(inners, fd)
					ids = append(ids, mi.ID)
				}
				other := s.create(mapSpec{name: "other", typ: tArray, ks: 4, vs: 4, max: 2})
				closed := 999 // not open
				reg, _ := os.CreateTemp(s.other, "reg")
				defer reg.Close()
				idOf := func(v []byte) string {
					if v == nil {
						return "NULL"
					}
					got := ne.Uint32(v)
					for i, id := range ids {
						if got == id {
							return fmt.Sprint("inner", i)
						}
					}
					return fmt.Sprintf("unknown id (%d)", got)
				}
				fdVal := func(fd int) []byte {
					v := make([]byte, 4)
					ne.PutUint32(v, uint32(fd))
					return v
				}
				for i, v := range []struct {
					key   uint32
					value []byte
					flags uint64
				}{
					{0, fdVal(inners[0]), 0}, {1, fdVal(inners[1]), 0}, {0, fdVal(inners[2]), 0},
					{2, fdVal(other), 0}, {2, fdVal(closed), 0}, {2, fdVal(int(reg.Fd())), 0},
					{2, fdVal(0), 0}, {2, nil, 0}, {5, fdVal(inners[0]), 0}, {2, fdVal(inners[0]), 1},
					{2, fdVal(inners[0]), 2}, {2, fdVal(outer), 0},
				} {
					k, val := s.buf(fdVal(int(v.key))), s.buf(v.value)
					_, e := s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(s.t, outer, k, val, v.flags))
					s.logf("update %d key %d: %s", i, v.key, errName(e))
				}
				for key := range uint32(4) {
					k, val := s.buf(fdVal(int(key))), mem(s.t, 4)
					_, e := s.do(sys.BPF_MAP_LOOKUP_ELEM, elemAttr(s.t, outer, k, val, 0))
					s.logf("lookup %d: %s %s", key, errName(e), idOf(val))
				}
				// Inner maps live while a slot holds them.
				for _, fd := range inners {
					_ = s.close(fd)
				}
				for i, id := range ids {
					g, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, id, 0, 0))
					s.logf("inner%d by id: %s", i, res(g, e))
				}
				// Batches: values are fds in, ids out.
				g, _ := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, ids[1], 0, 0))
				keys, vals := s.buf([]byte{2, 0, 0, 0, 1, 0, 0, 0}), s.buf(append(fdVal(g), fdVal(g)...))
				ba := batchAttr(s.t, outer, nil, nil, keys, vals, 2, 0, 0)
				_, e = s.do(sys.BPF_MAP_UPDATE_BATCH, ba)
				s.logf("update batch: %s count %d", errName(e), ne.Uint32(ba[32:]))
				ba = batchAttr(s.t, outer, nil, nil, keys, s.buf(append(fdVal(g), fdVal(int(reg.Fd()))...)), 2, 0, 0)
				_, e = s.do(sys.BPF_MAP_UPDATE_BATCH, ba)
				s.logf("update batch, bad fd: %s count %d", errName(e), ne.Uint32(ba[32:]))
				lk, lv, out := mem(s.t, 16), mem(s.t, 16), mem(s.t, 4)
				ba = batchAttr(s.t, outer, nil, out, lk, lv, 4, 0, 0)
				_, e = s.do(sys.BPF_MAP_LOOKUP_BATCH, ba)
				n := ne.Uint32(ba[32:])
				s.logf("lookup batch: %s count %d keys %s", errName(e), n, hx(lk))
				for i := range n {
					s.logf("  value %d: %s", i, idOf(lv[4*i:4*i+4]))
				}
				for _, cmd := range []int{sys.BPF_MAP_LOOKUP_AND_DELETE_ELEM} {
					k, val := s.buf(fdVal(0)), mem(s.t, 4)
					_, e := s.do(cmd, elemAttr(s.t, outer, k, val, 0))
					s.logf("cmd %d: %s", cmd, errName(e))
				}
				for key := range uint32(4) {
					_, e := s.do(sys.BPF_MAP_DELETE_ELEM, elemAttr(s.t, outer, s.buf(fdVal(int(key))), nil, 0))
					s.logf("delete %d: %s", key, errName(e))
				}
				_ = s.close(g)
				for i, id := range ids {
					g, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(s.t, id, 0, 0))
					s.logf("inner%d by id after deletes: %s", i, res(g, e))
				}
			})
		})
	}
}

//go:build linux

package sys_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/sys"
)

// ne is the byte order of the kernel ABI.
var ne = nativeEndian()

// side is one implementation of bpf(2) under test: the kernel or package
// sys. A scenario runs on both with the same attr bytes and logs what it
// observes; the logs must be equal.
type side struct {
	t      *testing.T
	kernel bool
	fds    []int
	log    []string
	pinDir string // a directory where pins work: bpffs or the namespace
	other  string // a directory outside both
}

// mem returns n bytes of zeroed memory outside the Go heap (an anonymous
// mapping), so that its address can go into an attr without pinning and
// without checkptr's rules for Go objects.
func mem(t testing.TB, n int) []byte {
	t.Helper()
	if n == 0 {
		n = 1
	}
	b, err := unix.Mmap(-1, 0, (n+4095)&^4095, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Munmap(b) })
	return b[:n]
}

// addr is the address of b's first byte (0 for nil).
func addr(b []byte) uint64 {
	if b == nil {
		return 0
	}
	return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// call runs bpf(cmd, attr, size) on the side. attr must be mmap'd memory
// (mem) or nil.
func (s *side) call(cmd int, attr []byte, size uintptr) (int, syscall.Errno) {
	var p unsafe.Pointer
	if attr != nil {
		p = unsafe.Pointer(unsafe.SliceData(attr))
	}
	if s.kernel {
		r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(p), size)
		if e != 0 {
			return -1, e
		}
		return int(r), 0
	}
	r, err := sys.BPF(cmd, p, size)
	if err != nil {
		en, ok := err.(syscall.Errno)
		if !ok {
			s.t.Fatalf("BPF returned %T %v, not an Errno", err, err)
		}
		return r, en
	}
	return r, 0
}

// do is call with size len(attr), recording fds that need closing for
// the commands that return one.
func (s *side) do(cmd int, attr []byte) (int, syscall.Errno) {
	return s.doSize(cmd, attr, uintptr(len(attr)))
}

func (s *side) doSize(cmd int, attr []byte, size uintptr) (int, syscall.Errno) {
	r, e := s.call(cmd, attr, size)
	if e == 0 && (cmd == sys.BPF_MAP_CREATE || cmd == sys.BPF_OBJ_GET || cmd == sys.BPF_MAP_GET_FD_BY_ID) {
		s.fds = append(s.fds, r)
	}
	return r, e
}

func (s *side) close(fd int) error {
	for i, f := range s.fds {
		if f == fd {
			s.fds = append(s.fds[:i], s.fds[i+1:]...)
			break
		}
	}
	if s.kernel {
		return unix.Close(fd)
	}
	return sys.Close(fd)
}

func (s *side) closeAll() {
	for len(s.fds) > 0 {
		_ = s.close(s.fds[len(s.fds)-1])
	}
}

// logf records an observation.
func (s *side) logf(format string, args ...any) {
	s.log = append(s.log, fmt.Sprintf(format, args...))
}

// res formats a result: "ok" (fds and ids are not compared) or the errno.
func res(r int, e syscall.Errno) string {
	if e != 0 {
		return fmt.Sprintf("errno %d (%v)", int(e), e)
	}
	if r != 0 {
		return "ok fd"
	}
	return "ok"
}

// errName formats an errno for logs.
func errName(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}

// needKernel skips (or fails, with BPFMAP_REQUIRE_KERNEL=1) without a
// usable bpf(2).
func needKernel(t *testing.T) { t.Helper(); kbpf.Need(t) }

// bpffsDir makes a directory in the bpffs for the kernel side's pins.
func bpffsDir(t *testing.T) string {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/bpf", &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		if err := unix.Mount("bpffs", "/sys/fs/bpf", "bpf", 0, ""); err != nil {
			t.Skipf("no bpffs at /sys/fs/bpf: %v", err)
		}
	}
	dir, err := os.MkdirTemp("/sys/fs/bpf", "bpfmap-sys-")
	if err != nil {
		t.Skipf("bpffs: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// nsDir makes a directory in the test namespace for bpfmap's pins.
func nsDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp(os.Getenv("BPFMAP_ROOT"), "pins-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// diff runs scenario on the kernel and on bpfmap and compares the logs.
func diff(t *testing.T, scenario func(s *side)) {
	t.Helper()
	needKernel(t)
	other := t.TempDir()
	k := &side{t: t, kernel: true, pinDir: bpffsDir(t), other: other}
	u := &side{t: t, pinDir: nsDir(t), other: other}
	for _, s := range []*side{k, u} {
		func() {
			defer s.closeAll()
			scenario(s)
		}()
	}
	n := max(len(k.log), len(u.log))
	bad := 0
	for i := range n {
		var kl, ul string
		if i < len(k.log) {
			kl = k.log[i]
		}
		if i < len(u.log) {
			ul = u.log[i]
		}
		if kl != ul {
			bad++
			if bad <= 10 {
				t.Errorf("step %d:\n  kernel: %s\n  bpfmap: %s", i, kl, ul)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%d differences in %d steps", bad, n)
	}
	if testing.Verbose() && bad == 0 {
		t.Logf("%d steps agree", n)
	}
}

// Attr builders: each returns a fresh mmap'd attr of AttrSize bytes (room
// for short sizes and for the tail tests).

func createAttr(t testing.TB, typ, ks, vs, max, flags uint32) []byte {
	a := mem(t, 2*4096)[:sys.MapCreateAttrSize]
	ne.PutUint32(a[0:], typ)
	ne.PutUint32(a[4:], ks)
	ne.PutUint32(a[8:], vs)
	ne.PutUint32(a[12:], max)
	ne.PutUint32(a[16:], flags)
	return a
}

func elemAttr(t testing.TB, fd int, key, value []byte, flags uint64) []byte {
	a := mem(t, 2*4096)[:sys.MapElemAttrSize]
	ne.PutUint32(a[0:], uint32(fd))
	ne.PutUint64(a[8:], addr(key))
	ne.PutUint64(a[16:], addr(value))
	ne.PutUint64(a[24:], flags)
	return a
}

func batchAttr(t testing.TB, fd int, in, out, keys, values []byte, count uint32, elemFlags, flags uint64) []byte {
	a := mem(t, 2*4096)[:sys.MapBatchAttrSize]
	ne.PutUint64(a[0:], addr(in))
	ne.PutUint64(a[8:], addr(out))
	ne.PutUint64(a[16:], addr(keys))
	ne.PutUint64(a[24:], addr(values))
	ne.PutUint32(a[32:], count)
	ne.PutUint32(a[36:], uint32(fd))
	ne.PutUint64(a[40:], elemFlags)
	ne.PutUint64(a[48:], flags)
	return a
}

func objAttr(t testing.TB, path []byte, fd int, fileFlags uint32, pathFD int32) []byte {
	a := mem(t, 2*4096)[:sys.ObjAttrSize]
	ne.PutUint64(a[0:], addr(path))
	ne.PutUint32(a[8:], uint32(fd))
	ne.PutUint32(a[12:], fileFlags)
	ne.PutUint32(a[16:], uint32(pathFD))
	return a
}

// cstr returns path as a NUL-terminated string in mmap'd memory.
func cstr(t testing.TB, path string) []byte {
	b := mem(t, len(path)+1)
	copy(b, path)
	return b
}

func idAttr(t testing.TB, id, next, flags uint32) []byte {
	a := mem(t, 2*4096)[:sys.GetFDByIDAttrSize]
	ne.PutUint32(a[0:], id)
	ne.PutUint32(a[4:], next)
	ne.PutUint32(a[8:], flags)
	return a
}

func infoAttr(t testing.TB, fd int, infoLen uint32, info []byte) []byte {
	a := mem(t, 2*4096)[:sys.InfoAttrSize]
	ne.PutUint32(a[0:], uint32(fd))
	ne.PutUint32(a[4:], infoLen)
	ne.PutUint64(a[8:], addr(info))
	return a
}

// mapInfo runs OBJ_GET_INFO_BY_FD with a full buffer.
func (s *side) mapInfo(fd int) (sys.MapInfo, syscall.Errno) {
	buf := mem(s.t, sys.MapInfoSize)
	_, e := s.call(sys.BPF_OBJ_GET_INFO_BY_FD, infoAttr(s.t, fd, sys.MapInfoSize, buf), sys.InfoAttrSize)
	var mi sys.MapInfo
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&mi)), unsafe.Sizeof(mi)), buf)
	return mi, e
}

// fdinfo returns the comparable lines of /proc/self/fdinfo/<fd> (kernel)
// or sys.FDInfo (bpfmap): all but mnt_id, ino and map_id.
func (s *side) fdinfo(fd int) string {
	var text string
	if s.kernel {
		b, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
		if err != nil {
			return "error " + err.Error()
		}
		text = string(b)
	} else {
		var ok bool
		if text, ok = sys.FDInfo(fd); !ok {
			return "not a map fd"
		}
	}
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		k, _, _ := strings.Cut(l, ":")
		switch k {
		case "mnt_id", "ino", "map_id":
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "|")
}

func joinPath(dir, name string) string { return filepath.Join(dir, name) }

// ptr is the address of an mmap'd attr as BPF's pointer argument.
func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

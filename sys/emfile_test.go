//go:build linux

package sys_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

// emfileLimit is the RLIMIT_NOFILE of the EMFILE child.
const emfileLimit = 64

// childEMFILE runs, with RLIMIT_NOFILE lowered, on the kernel and then on
// sys: it pins a map, creates maps until creation fails, and then (out of
// descriptors) asks for the pinned map by id and by path. It prints one line
// per side: "<side> maps <n> create <errno> by-id <errno> get <errno>"
// (0 for success).
// BPFMAP_SYS_KPIN is a bpffs directory for the kernel's pin.
func childEMFILE() int {
	// The attrs live in an anonymous mapping: no Go memory goes to BPF.
	page, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		fmt.Println(err)
		return 1
	}
	attr := unsafe.Pointer(unsafe.SliceData(page))
	for _, kernel := range []bool{true, false} {
		call := func(cmd int, a unsafe.Pointer, size uintptr) (int, syscall.Errno) {
			if kernel {
				r, _, e := unix.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(a), size)
				if e != 0 {
					return -1, e
				}
				return int(r), 0
			}
			r, err := sys.BPF(cmd, a, size)
			if err != nil {
				return -1, err.(syscall.Errno)
			}
			return r, 0
		}
		closeFD := func(fd int) {
			if kernel {
				_ = unix.Close(fd)
			} else {
				_ = sys.Close(fd)
			}
		}
		create := func() (int, syscall.Errno) {
			clear(page)
			ca := (*sys.MapCreateAttr)(attr)
			ca.MapType, ca.KeySize, ca.ValueSize, ca.MaxEntries = tArray, 4, 8, 1
			return call(sys.BPF_MAP_CREATE, attr, unsafe.Sizeof(*ca))
		}
		side, dir := "kernel", os.Getenv("BPFMAP_SYS_KPIN")
		if !kernel {
			side, dir = "bpfmap", os.Getenv("BPFMAP_ROOT")
		}
		pinned, e := create()
		if e != 0 {
			fmt.Println(side, "create:", e)
			return 1
		}
		path := filepath.Join(dir, fmt.Sprintf("emfile%d", os.Getpid()))
		clear(page)
		copy(page[256:], path)
		oa := (*sys.ObjAttr)(attr)
		oa.Pathname, oa.BPFFD = uint64(uintptr(attr))+256, uint32(pinned)
		if _, e := call(sys.BPF_OBJ_PIN, attr, unsafe.Sizeof(*oa)); e != 0 {
			fmt.Println(side, "pin:", e)
			return 1
		}
		var info sys.MapInfo
		clear(page)
		ia := (*sys.InfoAttr)(attr)
		ia.BPFFD, ia.InfoLen, ia.Info = uint32(pinned), uint32(unsafe.Sizeof(info)), uint64(uintptr(attr))+512
		if _, e := call(sys.BPF_OBJ_GET_INFO_BY_FD, attr, unsafe.Sizeof(*ia)); e != 0 {
			fmt.Println(side, "info:", e)
			return 1
		}
		id := (*sys.MapInfo)(unsafe.Add(attr, 512)).ID
		closeFD(pinned) // the pin holds the map: by id and by path open it anew

		var old unix.Rlimit
		_ = unix.Getrlimit(unix.RLIMIT_NOFILE, &old)
		lim := unix.Rlimit{Cur: emfileLimit, Max: old.Max}
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Println(err)
			return 1
		}
		var fds []int
		var ce syscall.Errno
		for len(fds) < 4*emfileLimit {
			fd, e := create()
			if e != 0 {
				ce = e
				break
			}
			fds = append(fds, fd)
		}
		// A descriptor left over (bpfmap's create can fail at the second
		// of its two) is used up, so that by id and by path fail at the
		// first descriptor they need.
		var spare []int
		for {
			d, err := unix.Dup(0)
			if err != nil {
				break
			}
			spare = append(spare, d)
		}
		clear(page)
		ga := (*sys.GetIDAttr)(attr)
		ga.ID = id
		_, be := call(sys.BPF_MAP_GET_FD_BY_ID, attr, unsafe.Sizeof(*ga))
		clear(page)
		copy(page[256:], path)
		oa.Pathname = uint64(uintptr(attr)) + 256
		_, ge := call(sys.BPF_OBJ_GET, attr, unsafe.Sizeof(*oa))
		for _, d := range spare {
			_ = unix.Close(d)
		}
		_ = unix.Setrlimit(unix.RLIMIT_NOFILE, &old)
		fmt.Printf("%s maps %d create %d by-id %d get %d\n", side, len(fds), ce, be, ge)
		for _, fd := range fds {
			closeFD(fd)
		}
		_ = os.Remove(path)
	}
	return 0
}

// TestDiffEMFILE runs out of file descriptors (a child with RLIMIT_NOFILE
// lowered): BPF_MAP_CREATE, BPF_MAP_GET_FD_BY_ID and BPF_OBJ_GET fail with
// the kernel's EMFILE. A user-space map costs two descriptors (see the
// package documentation), so the child makes about half as many.
func TestDiffEMFILE(t *testing.T) {
	needKernel(t)
	kdir := bpffsDir(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BPFMAP_SYS_CHILD=emfile", "BPFMAP_SYS_KEEP_ROOT=1", "BPFMAP_SYS_KPIN="+kdir)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 {
		t.Fatalf("child said:\n%s", out)
	}
	var kn, bn int
	var k, b [3]int
	if _, err := fmt.Sscanf(lines[0], "kernel maps %d create %d by-id %d get %d", &kn, &k[0], &k[1], &k[2]); err != nil {
		t.Fatalf("%q: %v", lines[0], err)
	}
	if _, err := fmt.Sscanf(lines[1], "bpfmap maps %d create %d by-id %d get %d", &bn, &b[0], &b[1], &b[2]); err != nil {
		t.Fatalf("%q: %v", lines[1], err)
	}
	t.Logf("at RLIMIT_NOFILE %d: kernel %d maps, bpfmap %d", emfileLimit, kn, bn)
	for i, what := range []string{"create", "GET_FD_BY_ID", "OBJ_GET"} {
		if k[i] != b[i] || k[i] != int(unix.EMFILE) {
			t.Errorf("%s out of descriptors: kernel %v, bpfmap %v", what, syscall.Errno(k[i]), syscall.Errno(b[i]))
		}
	}
	if kn < emfileLimit/2 || bn < kn/2-2 {
		t.Errorf("maps made before EMFILE: kernel %d, bpfmap %d", kn, bn)
	}
}

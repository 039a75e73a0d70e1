//go:build linux

package sys_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

// child runs a child role of the re-executed test binary and returns its
// exit code.
func child(role string) int {
	switch role {
	case "inherit":
		return childInherit()
	case "emfile":
		return childEMFILE()
	}
	fmt.Println("unknown child role", role)
	return 2
}

// childBPF is sys.BPF with a Go attr.
func childBPF[T any](cmd int, a *T) error {
	_, err := sys.BPF(cmd, unsafe.Pointer(a), unsafe.Sizeof(*a))
	return err
}

// childInherit uses the map fds 3 (read-write) and 4 (read-only) it
// inherited, reports what it sees, then waits for a line on stdin before
// it exits.
func childInherit() int {
	key, val := make([]byte, 4), make([]byte, 8)
	// Heap buffers that live until the end of the function: their
	// addresses stay valid for the calls below.
	ka, va := uint64(uintptr(unsafe.Pointer(&key[0]))), uint64(uintptr(unsafe.Pointer(&val[0])))
	ne.PutUint32(key, 1)
	lookup := sys.MapElemAttr{MapFD: 3, Key: ka, Value: va}
	err := childBPF(sys.BPF_MAP_LOOKUP_ELEM, &lookup)
	fmt.Printf("ismap %v %v lookup %v %d\n", sys.IsMapFD(3), sys.IsMapFD(4), err, ne.Uint64(val))
	ne.PutUint32(key, 2)
	ne.PutUint64(val, 43)
	update := sys.MapElemAttr{MapFD: 3, Key: ka, Value: va}
	err = childBPF(sys.BPF_MAP_UPDATE_ELEM, &update)
	update.MapFD = 4
	err2 := childBPF(sys.BPF_MAP_UPDATE_ELEM, &update)
	fmt.Printf("update rw %v ro %v\n", err, err2)
	var mi sys.MapInfo
	ia := sys.InfoAttr{BPFFD: 4, InfoLen: uint32(unsafe.Sizeof(mi)), Info: uint64(uintptr(unsafe.Pointer(&mi)))}
	err = childBPF(sys.BPF_OBJ_GET_INFO_BY_FD, &ia)
	fmt.Printf("info %v id %d\n", err, mi.ID)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	fmt.Println("bye")
	return 0
}

// TestForkExecInheritance passes map fds to a re-executed child through
// cmd.ExtraFiles: the child uses them through BPF with their access
// modes, sees the parent's map, and its inherited descriptors keep the
// map alive after the parent closed its own.
func TestForkExecInheritance(t *testing.T) {
	s := &side{t: t}
	defer s.closeAll()
	fd, e := s.do(sys.BPF_MAP_CREATE, createAttr(t, tHash, 4, 8, 4, 0))
	if e != 0 {
		t.Fatal(e)
	}
	key, val := mem(t, 4), mem(t, 8)
	ne.PutUint32(key, 1)
	ne.PutUint64(val, 42)
	if _, e := s.do(sys.BPF_MAP_UPDATE_ELEM, elemAttr(t, fd, key, val, 0)); e != 0 {
		t.Fatal(e)
	}
	mi, _ := s.mapInfo(fd)
	ro, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(t, mi.ID, 0, sys.BPF_F_RDONLY))
	if e != 0 {
		t.Fatal(e)
	}
	files := make([]*os.File, 2)
	for i, f := range []int{fd, ro} {
		d, err := unix.Dup(f) // the *os.File owns a dup of the same open file
		if err != nil {
			t.Fatal(err)
		}
		files[i] = os.NewFile(uintptr(d), "map")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BPFMAP_SYS_CHILD=inherit", "BPFMAP_SYS_KEEP_ROOT=1")
	cmd.ExtraFiles = files
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		_ = f.Close()
	}
	r := bufio.NewReader(stdout)
	var lines []string
	for range 3 {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("child: %v (so far %q)", err, lines)
		}
		lines = append(lines, strings.TrimSpace(l))
	}
	want := []string{
		"ismap true true lookup <nil> 42",
		"update rw <nil> ro operation not permitted",
		fmt.Sprintf("info <nil> id %d", mi.ID),
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("child said %q, want %q", lines[i], want[i])
		}
	}
	ne.PutUint32(key, 2)
	if _, e := s.do(sys.BPF_MAP_LOOKUP_ELEM, elemAttr(t, fd, key, val, 0)); e != 0 || ne.Uint64(val) != 43 {
		t.Errorf("the child's update: %v %d", e, ne.Uint64(val))
	}
	// The parent closes its descriptors: the child's keep the map.
	s.closeAll()
	g, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(t, mi.ID, 0, 0))
	if e != 0 {
		t.Fatalf("map gone while the child holds it: %v", e)
	}
	_ = s.close(g)
	fmt.Fprintln(stdin, "go")
	if l, _ := r.ReadString('\n'); strings.TrimSpace(l) != "bye" {
		t.Errorf("child said %q", l)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// With the child gone, nothing holds the map.
	if g, e := s.do(sys.BPF_MAP_GET_FD_BY_ID, idAttr(t, mi.ID, 0, 0)); e != unix.ENOENT {
		t.Errorf("map alive after every holder closed it: %d %v", g, e)
	}
}

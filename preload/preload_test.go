//go:build linux && cgo

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// sfx makes map names unique to this test process, so that a listing of
// all maps, or a lookup by name, finds this session's maps only.
var sfx = fmt.Sprintf("%05d", os.Getpid()%100000)

// bpftoolSteps is a bpftool session over every map kind bpftool can drive:
// creation, element commands and their errors, pins, freeze, listings, in
// plain, JSON and pretty JSON output. Hash maps use BPF_F_ZERO_SEED (0x40)
// so that dump and getnext orders are the kernel's.
func bpftoolSteps(tag string) []step {
	n := func(s string) string { return tag + s + sfx }
	return []step{
		{args: "map create {P}/h type hash key 4 value 8 entries 16 name " + n("h") + " flags 0x40"},
		{args: "map show pinned {P}/h"},
		{args: "-j map show pinned {P}/h"},
		{args: "-p map show pinned {P}/h"},
		{args: "map show id {ID:h}"},
		{args: "map show name " + n("h")},
		{args: "map update pinned {P}/h key 1 0 0 0 value 1 2 3 4 5 6 7 8"},
		{args: "map update pinned {P}/h key hex 02 00 00 00 value hex 11 12 13 14 15 16 17 18 noexist"},
		{args: "map update pinned {P}/h key 3 0 0 0 value 3 0 0 0 0 0 0 0 any"},
		{args: "map update id {ID:h} key 4 0 0 0 value 4 0 0 0 0 0 0 0 any"},
		{args: "map update pinned {P}/h key 1 0 0 0 value 0 0 0 0 0 0 0 0 noexist"},
		{args: "map update pinned {P}/h key 9 0 0 0 value 0 0 0 0 0 0 0 0 exist"},
		{args: "map update pinned {P}/h key 1 0 0 value 0 0 0 0 0 0 0 0"},
		{args: "map update pinned {P}/h key 1 0 0 0 value 0 0 0 0 0 0 0"},
		{args: "map lookup pinned {P}/h key 1 0 0 0"},
		{args: "map lookup pinned {P}/h key 7 0 0 0"},
		{args: "map lookup pinned {P}/h key 1 0 0"},
		{args: "-j map lookup pinned {P}/h key 2 0 0 0"},
		{args: "-j map lookup pinned {P}/h key 7 0 0 0"},
		{args: "map dump pinned {P}/h"},
		{args: "-j map dump pinned {P}/h"},
		{args: "-p map dump pinned {P}/h"},
		{args: "map dump id {ID:h}"},
		{args: "map getnext pinned {P}/h"},
		{args: "map getnext pinned {P}/h key 1 0 0 0"},
		{args: "-j map getnext pinned {P}/h key 2 0 0 0"},
		{args: "map delete pinned {P}/h key 2 0 0 0"},
		{args: "map delete pinned {P}/h key 2 0 0 0"},
		{args: "-j map delete pinned {P}/h key 2 0 0 0"},
		{args: "map dump pinned {P}/h"},
		{args: "map pin pinned {P}/h {P}/h2"},
		{args: "map show pinned {P}/h2"},
		{args: "map pin pinned {P}/h {P}/h2"},
		{args: "map pin id {ID:h} {P}/h3"},
		{args: "-f map show pinned {P}/h", intended: dirOrder, check: sameLines},
		{args: "map freeze pinned {P}/h"},
		{args: "map show pinned {P}/h"},
		{args: "-j map show pinned {P}/h"},
		{args: "map update pinned {P}/h key 5 0 0 0 value 0 0 0 0 0 0 0 0"},
		{args: "map delete pinned {P}/h key 1 0 0 0"},
		{args: "map freeze pinned {P}/h"},
		{args: "map lookup pinned {P}/h key 1 0 0 0"},
		{args: "map lookup pinned {P}/nosuch key 1 0 0 0"},

		{args: "map create {P}/a type array key 4 value 4 entries 4 name " + n("a")},
		{args: "map update pinned {P}/a key 1 0 0 0 value 9 9 9 9"},
		{args: "map update pinned {P}/a key 4 0 0 0 value 9 9 9 9"},
		{args: "map dump pinned {P}/a"},
		{args: "-j map dump pinned {P}/a"},
		{args: "map delete pinned {P}/a key 1 0 0 0"},
		{args: "map lookup pinned {P}/a key 4 0 0 0"},
		{args: "map getnext pinned {P}/a key 3 0 0 0"},
		{args: "map show pinned {P}/a"},

		{args: "map create {P}/mim type array_of_maps key 4 value 4 entries 2 name " + n("mim") + " inner_map pinned {P}/a"},
		{args: "map show pinned {P}/mim"},
		{args: "map update pinned {P}/mim key 0 0 0 0 value pinned {P}/a"},
		{args: "map update pinned {P}/mim key 1 0 0 0 value pinned {P}/h"},
		{args: "map dump pinned {P}/mim"},
		{args: "-j map lookup pinned {P}/mim key 0 0 0 0"},
		{args: "map delete pinned {P}/mim key 0 0 0 0"},
		{args: "map lookup pinned {P}/mim key 0 0 0 0"},
		{args: "map create {P}/hom type hash_of_maps key 4 value 4 entries 2 name " + n("hom") + " inner_map pinned {P}/a flags 0x40"},
		{args: "map update pinned {P}/hom key 5 0 0 0 value pinned {P}/a"},
		{args: "map update pinned {P}/hom key 6 0 0 0 value pinned {P}/a noexist"},
		{args: "map dump pinned {P}/hom"},
		{args: "-p map dump pinned {P}/hom"},

		{args: "map create {P}/pa type percpu_array key 4 value 4 entries 2 name " + n("pa")},
		{args: "map update pinned {P}/pa key 0 0 0 0 value 1 2 3 4"},
		{args: "map dump pinned {P}/pa"},
		{args: "-j map dump pinned {P}/pa"},
		{args: "map create {P}/ph type percpu_hash key 4 value 8 entries 4 name " + n("ph") + " flags 0x40"},
		{args: "map update pinned {P}/ph key 7 0 0 0 value 1 0 0 0 0 0 0 0"},
		{args: "map lookup pinned {P}/ph key 7 0 0 0"},
		{args: "-j map lookup pinned {P}/ph key 7 0 0 0"},

		{args: "map create {P}/lru type lru_hash key 4 value 4 entries 8 name " + n("lru") + " flags 0x40"},
		{args: "map update pinned {P}/lru key 1 0 0 0 value 1 0 0 0"},
		{args: "map update pinned {P}/lru key 2 0 0 0 value 2 0 0 0"},
		{args: "map dump pinned {P}/lru"},
		{args: "map create {P}/lpm type lpm_trie key 8 value 4 entries 8 name " + n("lpm") + " flags 1"},
		{args: "map update pinned {P}/lpm key 24 0 0 0 10 1 2 0 value 1 0 0 0"},
		{args: "map update pinned {P}/lpm key 16 0 0 0 10 1 0 0 value 2 0 0 0"},
		{args: "map lookup pinned {P}/lpm key 32 0 0 0 10 1 2 3"},
		{args: "map lookup pinned {P}/lpm key 32 0 0 0 10 1 9 3"},
		{args: "map lookup pinned {P}/lpm key 32 0 0 0 10 2 2 3"},
		{args: "map dump pinned {P}/lpm"},

		{args: "map create {P}/q type queue key 0 value 4 entries 2 name " + n("q")},
		{args: "map show pinned {P}/q"},
		{args: "map push pinned {P}/q value 1 0 0 0"},
		{args: "map enqueue pinned {P}/q value 2 0 0 0"},
		{args: "map push pinned {P}/q value 3 0 0 0"},
		{args: "map peek pinned {P}/q"},
		{args: "-j map peek pinned {P}/q"},
		{args: "map dump pinned {P}/q"},
		{args: "map pop pinned {P}/q"},
		{args: "map dequeue pinned {P}/q"},
		{args: "map pop pinned {P}/q"},
		{args: "map peek pinned {P}/q"},
		{args: "map create {P}/s type stack key 0 value 4 entries 2 name " + n("s")},
		{args: "map push pinned {P}/s value 1 0 0 0"},
		{args: "map push pinned {P}/s value 2 0 0 0"},
		{args: "map peek pinned {P}/s"},
		{args: "-p map pop pinned {P}/s"},
		{args: "map pop pinned {P}/s"},
		{args: "map pop pinned {P}/s"},
		{args: "map freeze pinned {P}/s"},
		{args: "map push pinned {P}/s value 1 0 0 0"},

		{args: "map create {P}/bl type bloom_filter key 0 value 4 entries 16 name " + n("bl")},
		{args: "map push pinned {P}/bl value 1 0 0 0"},
		{args: "map peek pinned {P}/bl"},
		{args: "map show pinned {P}/bl"},
		{args: "map create {P}/rb type ringbuf key 0 value 0 entries 4096 name " + n("rb")},
		{args: "map show pinned {P}/rb"},
		{args: "map create {P}/bad type hash key 4 value 8 entries 0 name " + n("bad")},
		{args: "map create {P}/bad type array key 3 value 8 entries 4 name " + n("bad")},
		{args: "map create {P}/nodir/x type array key 4 value 8 entries 4 name " + n("bad")},

		{args: "map show", mine: true},
		{args: "-j map show", mine: true},
		{args: "-p map show", mine: true},
	}
}

// dirOrder names an intended difference: bpftool -f lists a map's pins in
// the order the directory walk meets them, which is the file system's
// readdir order (bpffs: creation order; tmpfs: newest first).
const dirOrder = "pins listed in the file system's directory order"

// sameLines compares two results as sets of lines.
func sameLines(t *testing.T, kernel, user result) {
	t.Helper()
	sorted := func(s string) string {
		l := strings.Split(s, "\n")
		sort.Strings(l)
		return strings.Join(l, "\n")
	}
	kernel.stdout, user.stdout = sorted(kernel.stdout), sorted(user.stdout)
	if kernel != user {
		t.Errorf("results differ as sets of lines\n=== kernel\n%s=== bpfmap\n%s", kernel, user)
	}
}

// TestBpftool runs an unmodified bpftool session on user-space maps under
// the preload library and the same session on kernel maps pinned in bpffs,
// and compares every output and exit code.
func TestBpftool(t *testing.T) {
	tool := bpftool(t)
	kernel := kernelWorld(t)
	user := userWorld(t)
	runSession(t, tool, kernel, user, bpftoolSteps("b"))
}

// TestBpftoolNobody runs a session without privileges: user-space maps
// need no root. Hash maps get random seeds (BPF_F_ZERO_SEED needs
// CAP_SYS_ADMIN), so the session never dumps more than one hash element.
func TestBpftoolNobody(t *testing.T) {
	tool := bpftool(t)
	kernel := kernelWorld(t)
	user := userWorld(t)
	asNobody(t, user)
	n := func(s string) string { return "n" + s + sfx }
	steps := []step{
		{args: "map create {P}/h type hash key 4 value 8 entries 16 name " + n("h")},
		{args: "map show pinned {P}/h"},
		{args: "map update pinned {P}/h key 1 0 0 0 value 1 2 3 4 5 6 7 8"},
		{args: "map lookup pinned {P}/h key 1 0 0 0"},
		{args: "map lookup pinned {P}/h key 2 0 0 0"},
		{args: "-j map dump pinned {P}/h"},
		{args: "map getnext pinned {P}/h key 1 0 0 0"},
		{args: "map delete pinned {P}/h key 1 0 0 0"},
		{args: "map create {P}/a type array key 4 value 4 entries 2 name " + n("a")},
		{args: "map update pinned {P}/a key 1 0 0 0 value 9 9 9 9"},
		{args: "map dump pinned {P}/a"},
		{args: "map pin pinned {P}/a {P}/a2"},
		{args: "map freeze pinned {P}/a2"},
		{args: "map show pinned {P}/a"},
		{args: "map create {P}/q type queue key 0 value 4 entries 2 name " + n("q")},
		{args: "map push pinned {P}/q value 1 0 0 0"},
		{args: "map pop pinned {P}/q"},
		{args: "map show", mine: true},
		{args: "map show id {ID:a}"},
	}
	runSession(t, tool, kernel, user, steps)
}

// TestBpftoolKernelMaps checks that kernel maps keep working in a
// preloaded bpftool: a kernel map pinned in bpffs is shown, updated,
// deleted from, frozen, dumped and listed next to a user-space map, with
// the results of bpftool without the library. Each side has its own kernel
// map, made alike, so that the state-changing steps compare too.
func TestBpftoolKernelMaps(t *testing.T) {
	tool := bpftool(t)
	kernel := kernelWorld(t)
	user := userWorld(t)
	pre := &world{name: "kernel-preloaded", pin: bpffsDir(t), env: user.env, ids: map[string]bool{}}
	name := "k" + sfx
	for _, w := range []*world{kernel, pre} {
		// Created without the library, which would make a user-space
		// map.
		r := kernel.run(t, tool, "map", "create", filepath.Join(w.pin, "k"), "type", "hash", "key", "4", "value", "4", "entries", "8", "name", name, "flags", "0x40")
		if r.code != 0 {
			t.Fatalf("kernel map create: %s", r)
		}
	}
	r := user.run(t, tool, "map", "create", filepath.Join(user.pin, "u"), "type", "array", "key", "4", "value", "4", "entries", "2", "name", "u"+sfx)
	if r.code != 0 {
		t.Fatalf("user map create under preload: %s", r)
	}
	var steps []step
	for _, s := range []string{
		"map show pinned {P}/k",
		"-j map show pinned {P}/k",
		"map show id {ID:k}",
		"map update pinned {P}/k key 1 0 0 0 value 1 1 1 1",
		"map update pinned {P}/k key 2 0 0 0 value 2 2 2 2",
		"map update pinned {P}/k key 2 0 0 0 value 2 2 2 2 noexist",
		"map lookup pinned {P}/k key 2 0 0 0",
		"map lookup pinned {P}/k key 3 0 0 0",
		"map dump pinned {P}/k",
		"map getnext pinned {P}/k",
		"map delete pinned {P}/k key 1 0 0 0",
		"map delete pinned {P}/k key 1 0 0 0",
		"map dump pinned {P}/k",
		"map freeze pinned {P}/k",
		"map freeze pinned {P}/k",
		"map update pinned {P}/k key 3 0 0 0 value 3 3 3 3",
		"map delete pinned {P}/k key 2 0 0 0",
		"-j map show pinned {P}/k",
		"-f map show pinned {P}/k",
	} {
		steps = append(steps, step{args: s})
	}
	runSession(t, tool, kernel, pre, steps)
	// A listing under preload has the kernel map and the user map; the
	// kernel's own listing has the kernel map only.
	all := pre.run(t, tool, "map", "show")
	if !strings.Contains(all.stdout, ": hash  name "+name) || !strings.Contains(all.stdout, ": array  name u"+sfx) {
		t.Errorf("map show under preload lacks the kernel or the user map:\n%s", all)
	}
	if k := kernel.run(t, tool, "map", "show"); strings.Contains(k.stdout, "u"+sfx) {
		t.Errorf("the kernel lists a user-space map:\n%s", k)
	}
}

// TestMapFDs runs testdata/fds.c against the kernel and under the preload
// library, whose outputs must be the same: invalid attr pointers (EFAULT,
// with and without a map fd open), failed and successful dup2/dup3 over map
// fds (a map whose last fd is replaced is gone at once, object file
// included), duplicates made with syscall(), a map fd inherited across exec
// and one received over SCM_RIGHTS, and a MAP_CREATE described by BTF type
// ids with btf_fd 0. No map object is left afterwards.
func TestMapFDs(t *testing.T) {
	prog := ccProg(t, "fds")
	kernel := kernelWorld(t)
	user := userWorld(t)
	for _, mode := range []string{"faults", "dup", "exec", "scm", "btf"} {
		t.Run(mode, func(t *testing.T) {
			kr := kernel.run(t, prog, mode)
			if kr.code != 0 {
				t.Fatalf("kernel run failed:\n%s", kr)
			}
			if ur := user.run(t, prog, mode); kr != ur {
				t.Errorf("fds %s differs\n=== kernel\n%s=== bpfmap\n%s", mode, kr, ur)
			}
		})
	}
	maps := filepath.Join(filepath.Dir(user.pin), ".bpfmap", "maps")
	if left, err := os.ReadDir(maps); err == nil && len(left) != 0 {
		t.Errorf("%d map objects left in %s after every fd was closed", len(left), maps)
	}
}

// cc compiles the libbpf test program.
func cc(t *testing.T) string {
	return ccProg(t, "libbpfprog")
}

// ccProg compiles testdata/<name>.c with libbpf.
func ccProg(t *testing.T, name string) string {
	t.Helper()
	gcc, err := exec.LookPath("gcc")
	need(t, err == nil, "gcc not installed")
	if _, err := os.Stat("/usr/include/bpf/bpf.h"); err != nil {
		need(t, false, "libbpf headers not installed (apt install libbpf-dev)")
	}
	dir, err := publicTempDir("bpfmap-preload-cc-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	out := filepath.Join(dir, name)
	args := []string{"-O1", "-Wall", "-pthread", "-o", out, "testdata/" + name + ".c"}
	if pc, err := exec.Command("pkg-config", "--cflags", "--libs", "libbpf").Output(); err == nil {
		args = append(args, strings.Fields(string(pc))...)
	} else {
		args = append(args, "-lbpf")
	}
	b, err := exec.Command(gcc, args...).CombinedOutput()
	need(t, err == nil, "cannot build testdata/%s.c with libbpf: %v\n%s", name, err, b)
	return out
}

// TestLibbpfProgram runs a libbpf C program against the kernel and under
// the preload library; the outputs must be the same. It runs a third time
// under the preload library with BPFMAP_CREATE=kernel and a bpffs pin
// directory: the library then passes everything through.
func TestLibbpfProgram(t *testing.T) {
	prog := cc(t)
	kernel := kernelWorld(t)
	user := userWorld(t)
	kr := kernel.run(t, prog, kernel.pin, "zero")
	ur := user.run(t, prog, user.pin, "zero")
	if kr.code != 0 {
		t.Fatalf("kernel run failed:\n%s", kr)
	}
	if kr != ur {
		t.Errorf("libbpf program output differs\n=== kernel\n%s=== bpfmap\n%s", kr, ur)
	}
	pass := &world{name: "kernel-passthrough", pin: kernel.pin, env: append(append([]string(nil), user.env...), "BPFMAP_CREATE=kernel")}
	if pr := pass.run(t, prog, kernel.pin, "zero"); pr != kr {
		t.Errorf("libbpf program under preload with BPFMAP_CREATE=kernel differs\n=== kernel\n%s=== preloaded\n%s", kr, pr)
	}
}

// TestLibbpfProgramNobody runs the libbpf program without privileges under
// the preload library, compared with the kernel run as root.
func TestLibbpfProgramNobody(t *testing.T) {
	prog := cc(t)
	kernel := kernelWorld(t)
	user := userWorld(t)
	asNobody(t, user)
	kr := kernel.run(t, prog, kernel.pin)
	ur := user.run(t, prog, user.pin)
	if kr.code != 0 {
		t.Fatalf("kernel run failed:\n%s", kr)
	}
	if kr != ur {
		t.Errorf("libbpf program output differs\n=== kernel (root)\n%s=== bpfmap (nobody)\n%s", kr, ur)
	}
}

// TestThreads runs threads that create, use and close user-space maps
// while the numbers of closed map fds are reused by ordinary files at
// once, next to a kernel map (when the kernel is available). Closing a
// map's last fd frees it, as in the kernel: no map object is left.
func TestThreads(t *testing.T) {
	prog := ccProg(t, "stress")
	user := userWorld(t)
	args := []string{prog}
	if tool, err := exec.LookPath("bpftool"); err == nil && os.Geteuid() == 0 {
		kernel := kernelWorld(t)
		pin := filepath.Join(kernel.pin, "k")
		for _, a := range [][]string{
			{"map", "create", pin, "type", "hash", "key", "4", "value", "4", "entries", "4", "name", "k" + sfx},
			{"map", "update", "pinned", pin, "key", "1", "0", "0", "0", "value", "1", "0", "0", "0"},
		} {
			if r := kernel.run(t, append([]string{tool}, a...)...); r.code != 0 {
				t.Fatalf("bpftool %v: %s", a, r)
			}
		}
		args = append(args, pin)
	}
	if r := user.run(t, args...); r.code != 0 {
		t.Fatalf("stress under preload: %s", r)
	}
	maps := filepath.Join(filepath.Dir(user.pin), ".bpfmap", "maps")
	left, err := os.ReadDir(maps)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("%d map objects left in %s after every fd was closed", len(left), maps)
	}
}

//go:build linux && cgo

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The tests build libbpfmap.so once (go build -buildmode=c-shared) into a
// temporary directory and run unmodified programs under LD_PRELOAD with
// BPFMAP_ROOT set to a per-test directory. What they need from the host
// (root, a bpffs, bpftool, gcc with libbpf) is checked by need: missing
// pieces skip the test, or fail it when BPFMAP_REQUIRE_KERNEL is set to a
// value other than "" and "0".

var (
	libOnce sync.Once
	libPath string
	libErr  error
	libDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if libDir != "" {
		os.RemoveAll(libDir)
	}
	os.Exit(code)
}

// requireKernel reports whether missing prerequisites fail tests.
func requireKernel() bool {
	v := os.Getenv("BPFMAP_REQUIRE_KERNEL")
	return v != "" && v != "0"
}

// need skips t (or fails it under BPFMAP_REQUIRE_KERNEL) when ok is false.
func need(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if requireKernel() {
		t.Fatalf("%s (BPFMAP_REQUIRE_KERNEL=%q)", msg, os.Getenv("BPFMAP_REQUIRE_KERNEL"))
	}
	t.Skip(msg)
}

// publicTempDir makes a temporary directory that other users can enter
// (for the tests that run as nobody).
func publicTempDir(prefix string) (string, error) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		return "", err
	}
	return dir, os.Chmod(dir, 0o755)
}

// lib builds the preload library once per test binary.
func lib(t *testing.T) string {
	t.Helper()
	libOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			goTool = "go" // the build below reports it
		}
		libDir, libErr = publicTempDir("bpfmap-preload-lib-")
		if libErr != nil {
			return
		}
		out := filepath.Join(libDir, "libbpfmap.so")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goTool, "build", "-buildmode=c-shared", "-o", out, ".")
		if b, err := cmd.CombinedOutput(); err != nil {
			libErr = fmt.Errorf("go build -buildmode=c-shared: %v\n%s", err, b)
			return
		}
		libPath = out
	})
	if libErr != nil {
		t.Fatal(libErr)
	}
	return libPath
}

func bpftool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("bpftool")
	if err != nil {
		for _, c := range []string{"/usr/sbin/bpftool", "/sbin/bpftool"} {
			if _, e := os.Stat(c); e == nil {
				p, err = c, nil
				break
			}
		}
	}
	need(t, err == nil, "bpftool not installed (apt install bpftool)")
	return p
}

const bpfFSMagic = 0xcafe4a11

// bpffsDir returns a new directory in the bpffs at /sys/fs/bpf (mounting
// it if needed), removed at the end of the test.
func bpffsDir(t *testing.T) string {
	t.Helper()
	need(t, os.Geteuid() == 0, "kernel comparison needs root (running as uid %d)", os.Geteuid())
	const mnt = "/sys/fs/bpf"
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil || st.Type != bpfFSMagic {
		err = unix.Mount("bpf", mnt, "bpf", 0, "")
		need(t, err == nil, "no bpffs at %s and mounting one failed: %v", mnt, err)
	}
	dir, err := os.MkdirTemp(mnt, "bpfmap-preload-")
	need(t, err == nil, "cannot make a directory in %s: %v", mnt, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// nsRoot returns a fresh namespace root for the user-space maps of a test.
func nsRoot(t *testing.T) string {
	t.Helper()
	dir, err := publicTempDir("bpfmap-preload-ns-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// baseEnv is the test's environment without the variables the tests set.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "LD_PRELOAD", "BPFMAP_ROOT", "BPFMAP_CREATE":
			continue
		}
		env = append(env, kv)
	}
	return env
}

// world is one side of a comparison: how programs run (with or without the
// preload library, as which user) and where its pins live.
type world struct {
	name   string
	pin    string   // directory of the session's pins
	env    []string // environment of every program
	prefix []string // command prefix (setpriv for another user)
	ids    map[string]bool
}

func kernelWorld(t *testing.T) *world {
	return &world{name: "kernel", pin: bpffsDir(t), env: baseEnv(), ids: map[string]bool{}}
}

func userWorld(t *testing.T, extraEnv ...string) *world {
	root := nsRoot(t)
	pin := filepath.Join(root, "pins")
	if err := os.Mkdir(pin, 0o755); err != nil {
		t.Fatal(err)
	}
	env := append(baseEnv(), "LD_PRELOAD="+lib(t), "BPFMAP_ROOT="+root)
	return &world{name: "bpfmap", pin: pin, env: append(env, extraEnv...), ids: map[string]bool{}}
}

// asNobody makes w run its programs as uid/gid 65534 with no groups.
func asNobody(t *testing.T, w *world) {
	t.Helper()
	need(t, os.Geteuid() == 0, "running as another user needs root")
	sp, err := exec.LookPath("setpriv")
	need(t, err == nil, "setpriv not installed (util-linux)")
	root := filepath.Dir(w.pin)
	for _, p := range []string{root, w.pin} {
		if err := os.Chown(p, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	w.name += "-nobody"
	w.prefix = []string{sp, "--reuid=65534", "--regid=65534", "--clear-groups"}
	// The library is preloaded into the program only, not into setpriv:
	// the Go runtime's threads exist from the moment the library loads,
	// and glibc aborts a process whose threads disagree on a set*id call
	// (setpriv keeps capabilities in its main thread only).
	var env []string
	for _, kv := range w.env {
		if strings.HasPrefix(kv, "LD_PRELOAD=") {
			w.prefix = append(w.prefix, "env", kv)
			continue
		}
		env = append(env, kv)
	}
	w.env = env
}

// result is what one program run printed and returned.
type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// run runs argv in w.
func (w *world) run(t *testing.T, argv ...string) result {
	t.Helper()
	argv = append(append([]string(nil), w.prefix...), argv...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = w.env
	cmd.Dir = "/"
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	r := result{stdout: o.String(), stderr: e.String()}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok || ctx.Err() != nil {
			t.Fatalf("%s: %v: %v\n%s", w.name, argv, err, r)
		}
		r.code = ee.ExitCode()
		if r.code < 0 {
			t.Fatalf("%s: %v: killed by a signal (%v)\n%s", w.name, argv, ee, r)
		}
	}
	return r
}

var (
	reShowID = regexp.MustCompile(`(?m)^(\d+): `)
	reJSONID = regexp.MustCompile(`"id": ?(\d+)`)
	rePids   = regexp.MustCompile(`(?m)^\s*pids .*\n`)
	reIDWord = regexp.MustCompile(`\bid (\d+)`)
)

// idsIn returns the map ids a bpftool output names.
func idsIn(s string) []string {
	var ids []string
	for _, re := range []*regexp.Regexp{reShowID, reJSONID} {
		for _, m := range re.FindAllStringSubmatch(s, -1) {
			ids = append(ids, m[1])
		}
	}
	return ids
}

// normalizer rewrites one world's outputs for comparison: ids become
// ID<n> in order of first appearance (also as the u32 bytes of map-in-map
// values), the pin directory becomes PIN, pids lines are dropped. Memlock
// figures are compared as they are: bpfmap reports the kernel's.
type normalizer struct {
	w     *world
	label map[string]string
}

func newNormalizer(w *world) *normalizer {
	return &normalizer{w: w, label: map[string]string{}}
}

func (n *normalizer) id(s string) string {
	l, ok := n.label[s]
	if !ok {
		l = fmt.Sprintf("ID%d", len(n.label)+1)
		n.label[s] = l
	}
	return l
}

func (n *normalizer) norm(s string) string {
	s = strings.ReplaceAll(s, n.w.pin, "PIN")
	// Map-in-map values are inner map ids: u32 bytes in dumps, in plain
	// hex or as JSON strings.
	for id, l := range n.label {
		v, _ := strconv.ParseUint(id, 10, 32)
		b := []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
		plain := fmt.Sprintf("%02x %02x %02x %02x", b[0], b[1], b[2], b[3])
		s = strings.ReplaceAll(s, plain, "<"+l+">")
		for _, sep := range []string{`","`, `", "`} {
			j := fmt.Sprintf(`"0x%02x`+sep+`0x%02x`+sep+`0x%02x`+sep+`0x%02x"`, b[0], b[1], b[2], b[3])
			s = strings.ReplaceAll(s, j, "<"+l+">")
		}
	}
	s = reShowID.ReplaceAllStringFunc(s, func(m string) string {
		return n.id(strings.TrimSuffix(m, ": ")) + ": "
	})
	s = reJSONID.ReplaceAllStringFunc(s, func(m string) string {
		sub := reJSONID.FindStringSubmatch(m)
		return strings.Replace(m, sub[1], n.id(sub[1]), 1)
	})
	s = reIDWord.ReplaceAllStringFunc(s, func(m string) string {
		return "id " + n.id(strings.TrimPrefix(m, "id "))
	})
	s = rePids.ReplaceAllString(s, "")
	return s
}

// step is one command of a session: bpftool's arguments with
// placeholders {P} (the pin directory) and {ID:name} (the id of the map
// pinned at {P}/name), and how to compare it.
type step struct {
	args string
	// mine filters a listing of all maps down to the session's maps.
	mine bool
	// intended, when set, names an intended difference; check then
	// decides what must still hold for the two results.
	intended string
	check    func(t *testing.T, kernel, user result)
}

// expand substitutes the placeholders of args for w.
func (w *world) expand(t *testing.T, tool, args string) []string {
	t.Helper()
	var out []string
	for _, f := range strings.Fields(args) {
		f = strings.ReplaceAll(f, "{P}", w.pin)
		if strings.HasPrefix(f, "{ID:") && strings.HasSuffix(f, "}") {
			name := f[4 : len(f)-1]
			r := w.run(t, tool, "-j", "map", "show", "pinned", filepath.Join(w.pin, name))
			var v struct{ ID int }
			if r.code != 0 || json.Unmarshal([]byte(r.stdout), &v) != nil || v.ID == 0 {
				t.Fatalf("%s: id of %s: %s", w.name, name, r)
			}
			f = strconv.Itoa(v.ID)
		}
		out = append(out, f)
	}
	return out
}

// filterMine keeps the entries of a map listing (plain or JSON) whose ids
// the session's maps have.
func filterMine(s string, ids map[string]bool) string {
	t := strings.TrimSpace(s)
	if strings.HasPrefix(t, "[") {
		var all []json.RawMessage
		if err := json.Unmarshal([]byte(t), &all); err != nil {
			return s
		}
		var keep []string
		for _, e := range all {
			var v struct{ ID int }
			if json.Unmarshal(e, &v) == nil && ids[strconv.Itoa(v.ID)] {
				keep = append(keep, string(e))
			}
		}
		return "[" + strings.Join(keep, ",") + "]\n"
	}
	var b strings.Builder
	keep := false
	for _, line := range strings.SplitAfter(s, "\n") {
		if m := reShowID.FindStringSubmatch(line); m != nil {
			keep = ids[m[1]]
		}
		if keep {
			b.WriteString(line)
		}
	}
	return b.String()
}

// runSession runs the steps in both worlds (user first, so that its maps
// cannot be confused with the kernel world's, which never sees them) and
// compares the normalised results step by step.
func runSession(t *testing.T, tool string, kernel, user *world, steps []step) {
	t.Helper()
	type outcome struct {
		argv []string
		res  result
	}
	exec := func(w *world) []outcome {
		var outs []outcome
		for _, s := range steps {
			argv := append([]string{tool}, w.expand(t, tool, s.args)...)
			r := w.run(t, argv...)
			if s.mine {
				r.stdout = filterMine(r.stdout, w.ids)
			} else {
				for _, id := range idsIn(r.stdout) {
					w.ids[id] = true
				}
			}
			outs = append(outs, outcome{argv, r})
		}
		return outs
	}
	uo := exec(user)
	ko := exec(kernel)
	un, kn := newNormalizer(user), newNormalizer(kernel)
	for i, s := range steps {
		k, u := ko[i].res, uo[i].res
		k.stdout, k.stderr = kn.norm(k.stdout), kn.norm(k.stderr)
		u.stdout, u.stderr = un.norm(u.stdout), un.norm(u.stderr)
		if s.intended != "" {
			if s.check != nil {
				s.check(t, k, u)
			}
			continue
		}
		if k != u {
			t.Errorf("step %d: bpftool %s\n=== %s\n%s=== %s\n%s", i, s.args, kernel.name, k, user.name, u)
		}
	}
}

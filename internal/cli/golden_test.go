package cli

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/namespace"
)

// result is one command's observable outcome.
type result struct {
	stdout, stderr string
	code           int
}

// bpftoolPath finds the real bpftool, or skips (fails under
// BPFMAP_REQUIRE_KERNEL) without one.
func bpftoolPath(t *testing.T) string {
	t.Helper()
	kbpf.Need(t)
	for _, p := range []string{"bpftool", "/usr/sbin/bpftool", "/sbin/bpftool"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := "bpftool not installed (apt-get install bpftool)"
	if v := os.Getenv("BPFMAP_REQUIRE_KERNEL"); v != "" && v != "0" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// bpffsDir makes a fresh directory on a bpf file system, mounting one at
// /sys/fs/bpf if none is there.
func bpffsDir(t *testing.T) string {
	t.Helper()
	if !isBPFFS("/sys/fs/bpf") {
		if out, err := exec.Command("mount", "-t", "bpf", "bpf", "/sys/fs/bpf").CombinedOutput(); err != nil {
			t.Fatalf("mount bpffs: %v %s", err, out)
		}
	}
	dir, err := os.MkdirTemp("/sys/fs/bpf", "bpfmap-golden-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func runBpftool(path string, args []string) result {
	cmd := exec.Command(path, args...)
	cmd.Args[0] = "bpftool"
	var out, errw bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errw
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		code = -1000
	}
	return result{out.String(), errw.String(), code}
}

func runBpfmap(args []string) result {
	var out, errw bytes.Buffer
	code := Run("bpftool", args, &out, &errw)
	return result{out.String(), errw.String(), code}
}

// script reads testdata/golden.txt: one command per line, '#' comments.
func script(t *testing.T) []string {
	f, err := os.Open("testdata/golden.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(stripComment(sc.Text())); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

var (
	reIDLine   = regexp.MustCompile(`(?m)^\d+: `)
	reIDJSON   = regexp.MustCompile(`"id": ?\d+`)
	reUserLine = regexp.MustCompile(`\n\tuser_space namespace [^\n]*`)
	reUserJSON = regexp.MustCompile(`,\s*"user_space_namespace": ?"[^"]*"`)
	reObjects  = regexp.MustCompile(`OBJECT := \{[^}]*\}`)
)

// normalise replaces what legitimately differs between runs: the pin
// directory, the name prefix and map ids. Memlock figures are compared as
// they are: bpfmap reports the kernel's. For user-space maps it also drops the one intended
// difference, the "user_space namespace" line or field.
func normalise(s, dir, name string, user bool) string {
	s = strings.ReplaceAll(s, dir, "{P}")
	s = strings.ReplaceAll(s, name, "{N}")
	s = reIDLine.ReplaceAllString(s, "ID: ")
	s = reIDJSON.ReplaceAllStringFunc(s, func(m string) string {
		if strings.Contains(m, ": ") {
			return `"id": ID`
		}
		return `"id":ID`
	})
	// Intended: bpfmap's main help lists the one object it has, "map".
	s = reObjects.ReplaceAllString(s, "OBJECT := {…}")
	if user {
		s = reUserLine.ReplaceAllString(s, "")
		s = reUserJSON.ReplaceAllString(s, "")
	}
	return s
}

// runScript runs every line of the script with the given options, pins
// under dir and names prefixed with name.
func runScript(lines []string, opts []string, dir, name string, run func([]string) result, user bool) []result {
	var out []result
	for _, l := range lines {
		l = strings.ReplaceAll(l, "{P}", dir)
		l = strings.ReplaceAll(l, "{N}", name)
		words, _ := splitLine(l)
		r := run(append(append([]string{}, opts...), words...))
		r.stdout = normalise(r.stdout, dir, name, user)
		r.stderr = normalise(r.stderr, dir, name, user)
		out = append(out, r)
	}
	return out
}

// TestGoldenAgainstBpftool runs the golden script through the real bpftool
// on kernel maps, and through bpfmap on user-space maps and on kernel maps,
// in plain, JSON and pretty JSON modes: stdout, stderr and exit codes must
// be identical after normalisation.
func TestGoldenAgainstBpftool(t *testing.T) {
	bpftool := bpftoolPath(t)
	lines := script(t)
	kdir := bpffsDir(t)
	ns, err := namespace.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		name string
		opts []string
	}{{"plain", nil}, {"json", []string{"-j"}}, {"pretty", []string{"-p"}}} {
		t.Run(mode.name, func(t *testing.T) {
			prefix := fmt.Sprintf("g%04x", rand.IntN(1<<16))
			dirs := map[string]string{}
			for run, parent := range map[string]string{"bpftool/kernel": kdir, "bpfmap/kernel": kdir, "bpfmap/user": ns.Root()} {
				d, err := os.MkdirTemp(parent, mode.name+"-")
				if err != nil {
					t.Fatal(err)
				}
				dirs[run] = d
			}
			// Names differ per run so that "name" lookups, which see both
			// worlds, find one map each.
			want := runScript(lines, mode.opts, dirs["bpftool/kernel"], prefix+"a",
				func(a []string) result { return runBpftool(bpftool, a) }, false)
			for _, run := range []string{"bpfmap/kernel", "bpfmap/user"} {
				name := prefix + "b"
				if run == "bpfmap/user" {
					name = prefix + "c"
				}
				got := runScript(lines, mode.opts, dirs[run], name, runBpfmap, run == "bpfmap/user")
				for i := range lines {
					if got[i] != want[i] {
						t.Errorf("%s: %s\n got: code %d\nstdout:\n%s\nstderr:\n%s\nwant (bpftool): code %d\nstdout:\n%s\nstderr:\n%s",
							run, lines[i], got[i].code, got[i].stdout, got[i].stderr,
							want[i].code, want[i].stdout, want[i].stderr)
					}
				}
			}
		})
	}
}

// TestGoldenBatch runs a batch file through bpftool and bpfmap, in plain and
// JSON modes; the batch stops at its failing lookup.
func TestGoldenBatch(t *testing.T) {
	bpftool := bpftoolPath(t)
	raw, err := os.ReadFile("testdata/batch.txt")
	if err != nil {
		t.Fatal(err)
	}
	kdir := bpffsDir(t)
	ns, err := namespace.Default()
	if err != nil {
		t.Fatal(err)
	}
	for _, opts := range [][]string{nil, {"-j"}, {"-p"}} {
		prefix := fmt.Sprintf("b%04x", rand.IntN(1<<16))
		write := func(dir, name string) string {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				t.Fatal(err)
			}
			s := strings.ReplaceAll(string(raw), "{P}", dir)
			s = strings.ReplaceAll(s, "{N}", name)
			f := filepath.Join(t.TempDir(), "batch.txt")
			if err := os.WriteFile(f, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
			return f
		}
		kd, ud := filepath.Join(kdir, prefix), filepath.Join(ns.Root(), prefix)
		kf, uf := write(kd, prefix+"k"), write(ud, prefix+"u")
		args := func(f string) []string { return append(append([]string{}, opts...), "batch", "file", f) }
		want := runBpftool(bpftool, args(kf))
		got := runBpfmap(args(uf))
		for _, r := range []*result{&want, &got} {
			r.stdout = strings.ReplaceAll(r.stdout, kf, "{F}")
			r.stdout = strings.ReplaceAll(r.stdout, uf, "{F}")
		}
		want.stdout = normalise(want.stdout, kd, prefix+"k", false)
		want.stderr = normalise(want.stderr, kd, prefix+"k", false)
		got.stdout = normalise(got.stdout, ud, prefix+"u", true)
		got.stderr = normalise(got.stderr, ud, prefix+"u", true)
		if got != want {
			t.Errorf("batch %v:\n got: code %d\n%s\n%s\nwant: code %d\n%s\n%s", opts,
				got.code, got.stdout, got.stderr, want.code, want.stdout, want.stderr)
		}
	}
}

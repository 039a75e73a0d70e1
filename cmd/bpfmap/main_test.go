package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// TestProcesses runs the built command: a map one process creates is
// reachable by the next, and exit statuses are bpftool's.
func TestProcesses(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("user-space maps are shared between processes on Linux only")
	}
	bin := filepath.Join(t.TempDir(), "bpfmap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := t.TempDir()
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BPFMAP_ROOT="+root)
		out, err := cmd.Output()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return string(out), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return string(out), 0
	}
	for _, step := range []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"map", "create", "m", "type", "hash", "key", "2", "value", "2", "entries", "4", "name", "m"}, "", 0},
		{[]string{"map", "update", "pinned", "m", "key", "1", "2", "value", "3", "4"}, "", 0},
		{[]string{"map", "lookup", "pinned", root + "/m", "key", "1", "2"}, "key: 01 02  value: 03 04\n", 0},
		{[]string{"map", "lookup", "pinned", "m", "key", "9", "9"}, "key:\n09 09\n\nNot found\n", 254},
		{[]string{"map", "update", "pinned", "m", "key", "1", "2", "value", "3", "4", "noexist"}, "", 239},
		{[]string{"map", "lookup", "pinned", "m", "key", "1"}, "", 255},
		{[]string{"-j", "map", "delete", "pinned", "m", "key", "1", "2"}, "null\n", 0},
	} {
		out, code := run(step.args...)
		if out != step.out || code != step.code {
			t.Errorf("%q: exit %d, stdout %q; want %d, %q", step.args, code, out, step.code, step.out)
		}
	}
}

// TestWithoutRoot runs the command as an unprivileged user (when the test
// runs as root and setpriv exists): user-space maps need no privilege, and
// the kernel's refusal to list its maps just leaves them out.
func TestWithoutRoot(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("needs root to switch to an unprivileged user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv not installed")
	}
	dir, err := os.MkdirTemp("", "bpfmap-nonroot-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "bpfmap")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	root := filepath.Join(dir, "ns")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{dir, bin} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chown(root, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (string, string, int) {
		cmd := exec.Command(setpriv, append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", bin}, args...)...)
		cmd.Env = []string{"BPFMAP_ROOT=" + root, "PATH=/usr/bin:/bin"}
		var out, errw strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errw
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return out.String(), errw.String(), ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return out.String(), errw.String(), 0
	}
	if out, errs, code := run("map", "create", "q", "type", "stack", "key", "0", "value", "1", "entries", "2", "name", "nobodys"); code != 0 {
		t.Fatalf("create as nobody: %d %q %q", code, out, errs)
	}
	if _, errs, code := run("map", "push", "pinned", "q", "value", "7"); code != 0 {
		t.Fatalf("push: %d %q", code, errs)
	}
	out, errs, code := run("map", "show")
	if code != 0 || !strings.Contains(out, "stack  name nobodys") || errs != "" {
		t.Fatalf("show as nobody: %d %q %q", code, out, errs)
	}
	for _, l := range strings.Split(out, "\n") {
		if id, _, ok := strings.Cut(l, ": "); ok && !strings.HasPrefix(l, "\t") {
			if n, err := strconv.ParseUint(id, 10, 32); err != nil || n < 1<<30 {
				t.Errorf("show as nobody lists %q, not a user-space map", l)
			}
		}
	}
	if out, _, code := run("map", "pop", "name", "nobodys"); code != 0 || out != "value: 07\n" {
		t.Fatalf("pop by name: %d %q", code, out)
	}
}

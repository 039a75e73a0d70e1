package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
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

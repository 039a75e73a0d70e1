//go:build linux

package sys_test

import (
	"fmt"
	"os"
	"testing"
)

// TestMain gives the tests a namespace of their own (BPFMAP_ROOT, set
// before the default namespace is first opened) and runs the child roles
// of the re-executed test binary.
func TestMain(m *testing.M) {
	if role := os.Getenv("BPFMAP_SYS_CHILD"); role != "" {
		os.Exit(child(role))
	}
	if os.Getenv("BPFMAP_SYS_KEEP_ROOT") == "" {
		// tmpfs, where the default namespace lives too: creating map
		// objects on a disk file system costs a journal write each.
		dir := ""
		if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
			dir = "/dev/shm"
		}
		root, err := os.MkdirTemp(dir, "bpfmap-sys-test-")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Setenv("BPFMAP_ROOT", root)
		code := m.Run()
		os.RemoveAll(root)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

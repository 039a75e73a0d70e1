package cli

import (
	"fmt"
	"os"
	"testing"

	"github.com/bpfmap/bpfmap/internal/namespace"
)

// TestMain gives the package's tests a default namespace of their own.
func TestMain(m *testing.M) {
	root, err := os.MkdirTemp("", "bpfmap-cli-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv(namespace.EnvRoot, root)
	// Opening it makes root a namespace (where the platform has them), so
	// pins under it are user-space pins.
	_, _ = namespace.Default()
	code := m.Run()
	os.RemoveAll(root)
	os.Exit(code)
}

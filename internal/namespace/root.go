package namespace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// EnvRoot names the environment variable that sets the namespace root.
const EnvRoot = "BPFMAP_ROOT"

// internalDir is the root's subdirectory for the namespace's own files.
const internalDir = ".bpfmap"

// DefaultRoot returns the namespace root chosen by the rule in the package
// documentation.
func DefaultRoot() string {
	if r := os.Getenv(EnvRoot); r != "" {
		return filepath.Clean(r)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" && isDir(d) {
		return filepath.Join(d, "bpfmap")
	}
	if isDir("/dev/shm") {
		return fmt.Sprintf("/dev/shm/bpfmap-%d", os.Getuid())
	}
	return filepath.Join(os.TempDir(), fmt.Sprintf("bpfmap-%d", os.Getuid()))
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

var (
	defaultOnce sync.Once
	defaultNS   *NS
	defaultErr  error
	opened      sync.Map // root → *NS
)

// Default returns the namespace at DefaultRoot, opened once per process.
func Default() (*NS, error) {
	defaultOnce.Do(func() { defaultNS, defaultErr = Open(DefaultRoot()) })
	return defaultNS, defaultErr
}

// Open returns the namespace rooted at root, creating its directories (mode
// 0700) if needed. A process opens each root once; later calls return the
// same *NS.
func Open(root string) (*NS, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if ns, ok := opened.Load(abs); ok {
		return ns.(*NS), nil
	}
	ns, err := open(abs)
	if err != nil {
		return nil, err
	}
	if prev, loaded := opened.LoadOrStore(abs, ns); loaded {
		ns.close()
		return prev.(*NS), nil
	}
	return ns, nil
}

// Root returns the namespace's root directory.
func (ns *NS) Root() string { return ns.root }

// ErrOutside reports a pin path outside the namespace (EPERM, as the kernel
// answers for a pin target outside a bpffs).
var ErrOutside = errors.New("path is not in the bpfmap pin namespace")

// Resolve returns the absolute path of a pin: a relative path is taken
// relative to the root. Paths outside the root, the root itself, the
// namespace's internal directory and names with a '.' below the root (which
// bpffs refuses) are refused.
func (ns *NS) Resolve(path string) (string, error) {
	if path == "" {
		return "", fmt.Errorf("%w: empty path", ErrOutside)
	}
	if !filepath.IsAbs(path) {
		path = filepath.Join(ns.root, path)
	}
	path = filepath.Clean(path)
	rel, err := filepath.Rel(ns.root, path)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%w (%s): %s", ErrOutside, ns.root, path)
	}
	if rel == internalDir || strings.HasPrefix(rel, internalDir+string(filepath.Separator)) {
		return "", fmt.Errorf("%w: %s is the namespace's own directory", ErrOutside, path)
	}
	// bpffs refuses every name with a dot in it (its lookup answers
	// EPERM, for pins and gets alike), so below the root we do too.
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		if strings.Contains(c, ".") {
			return "", fmt.Errorf("%w: a bpffs name cannot contain '.': %s", ErrOutside, path)
		}
	}
	return path, nil
}

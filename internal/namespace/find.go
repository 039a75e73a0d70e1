package namespace

import (
	"os"
	"path/filepath"
)

// Find returns the namespace whose root holds path: the nearest ancestor
// directory of path with a namespace's internal directory. A relative path
// is taken relative to the default namespace's root. ok is false if no
// ancestor is a namespace root.
func Find(path string) (root string, ok bool) {
	if !filepath.IsAbs(path) {
		return DefaultRoot(), true
	}
	for dir := filepath.Dir(filepath.Clean(path)); ; dir = filepath.Dir(dir) {
		if fi, err := os.Stat(filepath.Join(dir, internalDir, "maps")); err == nil && fi.IsDir() {
			return dir, true
		}
		if parent := filepath.Dir(dir); parent == dir {
			return "", false
		}
	}
}

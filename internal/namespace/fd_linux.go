//go:build linux

package namespace

import (
	"path/filepath"
	"strconv"
)

// ObjectPath returns the path of map id's object file,
// <root>/.bpfmap/maps/<id> (which need not exist).
func (ns *NS) ObjectPath(id uint32) string { return ns.objectPath(id) }

// MapsDir returns the directory of the namespace's map object files.
func (ns *NS) MapsDir() string { return ns.maps }

// ParseObjectPath reports whether path names a map object file of a
// namespace, <root>/.bpfmap/maps/<id> with id in the user-space range, and
// returns the root and id. It looks at the path only.
func ParseObjectPath(path string) (root string, id uint32, ok bool) {
	path = filepath.Clean(path)
	dir, base := filepath.Split(path)
	dir = filepath.Clean(dir)
	if filepath.Base(dir) != "maps" || filepath.Base(filepath.Dir(dir)) != internalDir {
		return "", 0, false
	}
	n, err := strconv.ParseUint(base, 10, 32)
	if err != nil || !ValidID(uint32(n)) || strconv.FormatUint(n, 10) != base {
		return "", 0, false
	}
	return filepath.Dir(filepath.Dir(dir)), uint32(n), true
}

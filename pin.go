package bpfmap

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// NamespaceRoot returns the directory of the default pin namespace: the
// directory that plays bpffs's part for bpfmap maps. It is $BPFMAP_ROOT if
// set, otherwise $XDG_RUNTIME_DIR/bpfmap, /dev/shm/bpfmap-<uid> or
// <os.TempDir()>/bpfmap-<uid>, the first whose parent directory exists.
// Maps are shared objects of a namespace (on Linux): another process
// reaches them through a pin (LoadPinnedMap) or by id (NewMapFromID).
func NamespaceRoot() string { return namespace.DefaultRoot() }

// namespaceOf opens the namespace a MapOptions or path names.
func openNamespace(root string) (*namespace.NS, error) {
	if root == "" {
		return namespace.Default()
	}
	return namespace.Open(root)
}

// pathError turns a command-layer pin or open error into the public error.
func pathError(o op, err error) error {
	var pe *command.PathError
	if errors.As(err, &pe) {
		errno, _ := pe.Errno.(syscall.Errno)
		return &Error{Op: opNames[o], Errno: errno, Path: pe.Path, Detail: pe.Err.Error()}
	}
	var ce *command.CorruptError
	if errors.As(err, &ce) {
		return &Error{Op: opNames[o], Errno: uapi.EINVAL, Detail: ce.Error()}
	}
	return wrap(o, err)
}

// Pin links the map at path in its pin namespace, so that it outlives
// this process and other processes can open it with LoadPinnedMap, as
// (*ebpf.Map).Pin pins a kernel map on bpffs. A relative path is taken
// relative to the namespace's root; an absolute one must lie inside it.
//
// The kernel's errnos: EEXIST if something is at path, ENOENT if its
// directory does not exist, EPERM for a path outside the namespace (or a
// private map, which cannot be pinned). Pinning a pinned map again moves the
// pin, as ebpf's Pin does. Pins are files of mode 0600.
func (m *Map) Pin(path string) error {
	defer runtime.KeepAlive(m)
	if m.pinnedPath != "" {
		return m.repin(path)
	}
	p, err := m.h.Pin(path)
	if err != nil {
		return pathError(opPin, err)
	}
	m.pinnedPath = p
	return nil
}

func (m *Map) repin(path string) error {
	ns := m.h.Namespace()
	p, err := ns.Resolve(path)
	if err != nil {
		return &Error{Op: opNames[opPin], Errno: uapi.EPERM, Path: path, Detail: err.Error()}
	}
	if p == m.pinnedPath {
		return nil
	}
	if _, err := m.h.Pin(p); err != nil {
		return pathError(opPin, err)
	}
	if err := m.h.Unpin(m.pinnedPath); err != nil && !errors.Is(err, uapi.ENOENT) {
		return pathError(opPin, err)
	}
	m.pinnedPath = p
	return nil
}

// Unpin removes the map's pin. The map lives on while handles to it are
// open anywhere; it is freed when the last one closes. Unpinning a map
// that is not pinned does nothing, as ebpf's Unpin.
func (m *Map) Unpin() error {
	defer runtime.KeepAlive(m)
	if m.pinnedPath == "" {
		return nil
	}
	if err := m.h.Unpin(m.pinnedPath); err != nil && !errors.Is(err, uapi.ENOENT) {
		return pathError(opUnpin, err)
	}
	m.pinnedPath = ""
	return nil
}

// IsPinned reports whether this handle pinned the map or was loaded from a
// pin (and has not unpinned it since).
func (m *Map) IsPinned() bool { return m.pinnedPath != "" }

// LoadPinnedMap opens the map pinned at path, as ebpf.LoadPinnedMap opens a
// kernel map pinned on bpffs: the same map, shared with every process that
// has it open. opts may ask for a read-only or write-only handle (nil: read
// and write). A relative path is taken relative to the default namespace
// root; an absolute path may lie in any namespace.
//
// Errors carry the kernel's errnos: ENOENT if nothing is pinned at path,
// EACCES for a directory, EINVAL for a file that is not a bpfmap map (or a
// map of an incompatible layout version, or a damaged one — the error says
// which), EINVAL for both ReadOnly and WriteOnly.
func LoadPinnedMap(path string, opts *ebpf.LoadPinOptions) (*Map, error) {
	var flags uint32
	if opts != nil {
		if opts.ReadOnly {
			flags |= uapi.FRdonly
		}
		if opts.WriteOnly {
			flags |= uapi.FWronly
		}
	}
	root, ok := namespace.Find(path)
	if !ok {
		return nil, &Error{Op: opNames[opLoadPinned], Errno: uapi.EINVAL, Path: path,
			Detail: "not in a bpfmap pin namespace (no .bpfmap directory above it)"}
	}
	ns, err := namespace.Open(root)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opNames[opLoadPinned], err)
	}
	h, err := command.OpenPinned(ns, path, flags)
	if err != nil {
		return nil, pathError(opLoadPinned, err)
	}
	m := newMap(h)
	if p, err := ns.Resolve(path); err == nil {
		m.pinnedPath = p
	}
	return m, nil
}

// NewMapFromID opens the map with the given id in the default namespace,
// as ebpf.NewMapFromID opens a kernel map: ENOENT if no such map lives.
func NewMapFromID(id ebpf.MapID) (*Map, error) {
	return NewMapFromIDWithOptions(id, MapOptions{})
}

// NewMapFromIDWithOptions is NewMapFromID in the namespace opts names.
func NewMapFromIDWithOptions(id ebpf.MapID, opts MapOptions) (*Map, error) {
	ns, err := openNamespace(opts.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opNames[opFromID], err)
	}
	h, err := command.OpenID(ns, uint32(id), 0)
	if err != nil {
		return nil, wrap(opFromID, err)
	}
	return newMap(h), nil
}

// MapGetNextID returns the smallest id of a live map in the default
// namespace greater than startID, as ebpf.MapGetNextID does for kernel
// maps: ENOENT (ebpf.ErrKeyNotExist... as os.ErrNotExist) when there is
// none. Private maps are not listed.
func MapGetNextID(startID ebpf.MapID) (ebpf.MapID, error) {
	return MapGetNextIDWithOptions(startID, MapOptions{})
}

// MapGetNextIDWithOptions is MapGetNextID in the namespace opts names.
func MapGetNextIDWithOptions(startID ebpf.MapID, opts MapOptions) (ebpf.MapID, error) {
	ns, err := openNamespace(opts.Namespace)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", opNames[opNextID], err)
	}
	id, err := command.NextID(ns, uint32(startID))
	if err != nil {
		return 0, wrap(opNextID, err)
	}
	return ebpf.MapID(id), nil
}

// createPinned is NewMapWithOptions for a spec with Pinning PinByName: it
// opens the map pinned at PinPath/Name if there is one (ErrMapIncompatible
// if it does not match spec), else creates the map and pins it there.
func createPinned(spec *ebpf.MapSpec, opts MapOptions) (*Map, error) {
	if spec.Name == "" {
		return nil, argError(opCreate, "pin by name: the spec has no name", uapi.EINVAL)
	}
	ns, err := openNamespace(opts.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", opNames[opCreate], err)
	}
	path := filepath.Join(opts.PinPath, spec.Name)
	if !filepath.IsAbs(path) {
		path = filepath.Join(ns.Root(), path)
	}
	for {
		h, err := command.OpenPinned(ns, path, 0)
		if err == nil {
			m := newMap(h)
			m.pinnedPath = path
			if err := compatible(spec, m); err != nil {
				m.Close()
				return nil, err
			}
			return m, nil
		}
		if !errors.Is(err, uapi.ENOENT) {
			return nil, pathError(opLoadPinned, err)
		}
		plain := *spec
		plain.Pinning = ebpf.PinNone
		o := opts
		o.Private = false
		m, err := NewMapWithOptions(&plain, o)
		if err != nil {
			return nil, err
		}
		if err := m.Pin(path); err != nil {
			m.Close()
			if errors.Is(err, uapi.EEXIST) {
				continue // another process pinned it first: open that one
			}
			return nil, err
		}
		return m, nil
	}
}

// compatible is ebpf's MapSpec.Compatible check of a pinned map.
func compatible(spec *ebpf.MapSpec, m *Map) error {
	valueSize := spec.ValueSize
	if (spec.Type == ebpf.ArrayOfMaps || spec.Type == ebpf.HashOfMaps) && valueSize == 0 {
		valueSize = 4
	}
	switch {
	case m.typ != spec.Type:
		return fmt.Errorf("expected type %v, got %v: %w", spec.Type, m.typ, ebpf.ErrMapIncompatible)
	case m.keySize != spec.KeySize:
		return fmt.Errorf("expected key size %v, got %v: %w", spec.KeySize, m.keySize, ebpf.ErrMapIncompatible)
	case m.valueSize != valueSize:
		return fmt.Errorf("expected value size %v, got %v: %w", valueSize, m.valueSize, ebpf.ErrMapIncompatible)
	case m.maxEntries != spec.MaxEntries && spec.Type != ebpf.PerfEventArray:
		return fmt.Errorf("expected max entries %v, got %v: %w", spec.MaxEntries, m.maxEntries, ebpf.ErrMapIncompatible)
	case m.flags != spec.Flags&^(uapi.FRdonly|uapi.FWronly):
		return fmt.Errorf("expected flags %v, got %v: %w", spec.Flags, m.flags, ebpf.ErrMapIncompatible)
	}
	return nil
}

package bpfmap

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Memory is the value area of a BPF_F_MMAPABLE array, shared with the map:
// element i's value starts at i*round_up(ValueSize, 8), and a write through
// Memory is visible to Lookup at once and the other way round. It mirrors
// *ebpf.Memory.
//
// A writable Memory blocks Freeze (EBUSY), as a writable mmap of a kernel
// map does, until Close.
type Memory struct {
	mu      sync.Mutex
	b       []byte
	ro      bool
	keep    any // keeps the map's region mapped while the Memory is used
	release func()
}

// ErrReadOnly is returned when writing to a read-only Memory; it is
// ebpf.ErrReadOnly.
var ErrReadOnly = ebpf.ErrReadOnly

// Memory returns the value area of a BPF_F_MMAPABLE array, as ebpf's Memory
// maps a kernel map: writable, or read-only where the map refuses a
// writable mapping (frozen, or BPF_F_RDONLY_PROG). Handles without both
// read and write access cannot map it (EINVAL for read-only, EACCES for
// write-only handles), and maps without the flag fail with an error wrapping
// ebpf.ErrNotSupported and the kernel's errno (EINVAL for arrays, ENOTSUPP
// for other types).
func (m *Map) Memory() (*Memory, error) {
	defer runtime.KeepAlive(m)
	b, release, err := m.h.Memory(true)
	if errors.Is(err, uapi.EPERM) || errors.Is(err, uapi.EACCES) {
		// As cilium/ebpf: a map that cannot be mapped writable (frozen, or
		// BPF_F_RDONLY_PROG) is mapped read-only.
		if b, release, err = m.h.Memory(false); err != nil {
			return nil, fmt.Errorf("%w: %w", ebpf.ErrNotSupported, wrap(opMemory, err))
		}
		return &Memory{b: b, ro: true, keep: m.h.KeepAlive(), release: release}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ebpf.ErrNotSupported, wrap(opMemory, err))
	}
	return &Memory{b: b, keep: m.h.KeepAlive(), release: release}, nil
}

// Size is the size of the area in bytes (page-aligned, as the kernel maps it).
func (mm *Memory) Size() uint32 { return uint32(len(mm.b)) }

// ReadOnly reports whether the area is read-only.
func (mm *Memory) ReadOnly() bool { return mm.ro }

// ReadAt implements io.ReaderAt.
func (mm *Memory) ReadAt(p []byte, off int64) (int, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if mm.b == nil {
		return 0, errors.New("memory closed")
	}
	if off < 0 || off >= int64(len(mm.b)) {
		return 0, errors.New("read offset out of range")
	}
	n := copy(p, mm.b[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// WriteAt implements io.WriterAt.
func (mm *Memory) WriteAt(p []byte, off int64) (int, error) {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if mm.b == nil {
		return 0, errors.New("memory closed")
	}
	if mm.ro {
		return 0, fmt.Errorf("memory not writable: %w", ErrReadOnly)
	}
	if off < 0 || off >= int64(len(mm.b)) {
		return 0, errors.New("write offset out of range")
	}
	n := copy(mm.b[off:], p)
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// Close releases the view; a writable view no longer blocks Freeze.
func (mm *Memory) Close() error {
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if mm.b != nil {
		mm.release()
		mm.b, mm.keep = nil, nil
	}
	return nil
}

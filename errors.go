package bpfmap

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// ENOTSUPP is the kernel-internal errno 524 that BPF commands return for
// operations a map type does not support. It is distinct from EOPNOTSUPP.
const ENOTSUPP = uapi.ENOTSUPP

// Error is a failed map command: the operation and the kernel's errno.
// errors.Is matches both the errno (unix.ENOENT, …) and, where cilium/ebpf
// has one, its sentinel (ebpf.ErrKeyNotExist for ENOENT, ebpf.ErrKeyExist
// for EEXIST, ebpf.ErrNotSupported for ENOTSUPP).
type Error struct {
	Op    string
	Errno syscall.Errno
	// Path is the pin path of a pin or open by path, if any.
	Path string
	// Detail says more where the errno alone is not enough (why a file is
	// not a usable map, for instance).
	Detail string
}

func (e *Error) Error() string {
	s := e.Op
	if e.Path != "" {
		s += " " + e.Path
	}
	switch {
	case sentinel(e.Errno) != nil:
		s += ": " + sentinel(e.Errno).Error()
	case e.Errno == uapi.ENOTSUPP:
		s += ": operation not supported by map type (ENOTSUPP)"
	default:
		s += ": " + e.Errno.Error()
	}
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

// Unwrap returns the errno and the cilium/ebpf sentinel, if any.
func (e *Error) Unwrap() []error {
	if s := sentinel(e.Errno); s != nil {
		return []error{e.Errno, s}
	}
	return []error{e.Errno}
}

func sentinel(errno syscall.Errno) error {
	switch errno {
	case uapi.ENOENT:
		return ebpf.ErrKeyNotExist
	case uapi.EEXIST:
		return ebpf.ErrKeyExist
	case uapi.ENOTSUPP:
		return ebpf.ErrNotSupported
	}
	return nil
}

// op names a command in error messages.
type op uint8

const (
	opCreate op = iota
	opLookup
	opUpdate
	opDelete
	opNextKey
	opLookupAndDelete
	opFreeze
	opBatchLookup
	opBatchLookupAndDelete
	opBatchUpdate
	opBatchDelete
	opInfo
	opClone
	opClose
	opMemory
	opPin
	opUnpin
	opLoadPinned
	opFromID
	opNextID
	numOps
)

var opNames = [numOps]string{
	"create", "lookup", "update", "delete", "next key", "lookup and delete",
	"freeze", "batch lookup", "batch lookup and delete", "batch update",
	"batch delete", "info", "clone", "close", "memory",
	"pin", "unpin", "load pinned map", "map from id", "next map id",
}

// common holds preallocated errors for the errnos that hot paths return, so
// a missing key or a full map costs no allocation.
var common = func() (t [numOps][5]*Error) {
	for o := range numOps {
		for i, e := range []syscall.Errno{uapi.ENOENT, uapi.EEXIST, uapi.E2BIG, uapi.EPERM, uapi.EINVAL} {
			t[o][i] = &Error{Op: opNames[o], Errno: e}
		}
	}
	return t
}()

// wrap turns a command-layer error into the public error for o.
func wrap(o op, err error) error {
	if err == nil {
		return nil
	}
	errno, ok := err.(syscall.Errno) // errors.As would make its target escape
	if !ok {
		var ute *command.UnsupportedTypeError
		if errors.As(err, &ute) {
			return fmt.Errorf("%s: %w: %s", opNames[o], ebpf.ErrNotSupported, ute.Error())
		}
		return fmt.Errorf("%s: %w", opNames[o], err)
	}
	switch errno {
	case uapi.ENOENT:
		return common[o][0]
	case uapi.EEXIST:
		return common[o][1]
	case uapi.E2BIG:
		return common[o][2]
	case uapi.EPERM:
		return common[o][3]
	case uapi.EINVAL:
		return common[o][4]
	}
	return &Error{Op: opNames[o], Errno: errno}
}

// argError reports a caller's marshalling mistake for o; it wraps EINVAL.
func argError(o op, what string, err error) error {
	return fmt.Errorf("%s: %s: %w", opNames[o], what, err)
}

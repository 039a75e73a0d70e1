//go:build linux && cgo

package main

/*
#include <stdlib.h>
#include "shim.h"
*/
import "C"

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
	"github.com/bpfmap/bpfmap/sys"
)

func main() {}

// pass is what the Go half answers for a command that is not bpfmap's: the
// C half then hands it to the kernel (PASS in shim.c).
const pass = -2

// bpf(2) commands the Go half looks into.
const (
	cmdMapCreate   = 0
	cmdObjPin      = 6
	cmdObjGet      = 7
	cmdMapNextID   = 12
	cmdMapFDByID   = 14
	cmdInfoByFD    = 15
	cmdLookupBatch = 24
	cmdDeleteBatch = 27
)

// attrMax is the largest attr the kernel reads (PAGE_SIZE); larger ones
// are E2BIG whoever answers.
const attrMax = 4096

var ne = binary.NativeEndian

// attr is a zero-extended copy of the head of a bpf_attr: the fields the
// routing reads.
type attr [128]byte

// readAttr copies the head of the size bytes at p and touches the last of
// them (all of them lie on at most two pages, size being at most attrMax),
// so that an attr the kernel could not read faults here, under guarded.
func readAttr(p unsafe.Pointer, size uintptr) *attr {
	var a attr
	if p != nil && size > 0 {
		copy(a[:], unsafe.Slice((*byte)(p), min(size, uintptr(len(a)))))
		if size > uintptr(len(a)) {
			_ = *(*byte)(unsafe.Add(p, size-1))
		}
	}
	return &a
}

func (a *attr) u32(off int) uint32 { return ne.Uint32(a[off:]) }

// ptr is the user pointer (an __aligned_u64) at off.
func (a *attr) ptr(off int) unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(nil), uintptr(ne.Uint64(a[off:])))
}

// createMode is $BPFMAP_CREATE: "kernel" sends every MAP_CREATE to the
// kernel; anything else (the default, "auto") applies the selection rule.
var createMode = sync.OnceValue(func() string { return os.Getenv("BPFMAP_CREATE") })

//export bpfmapGoBPF
func bpfmapGoBPF(cmd C.int, p unsafe.Pointer, size C.uint, errOut *C.int) C.long {
	r, err := dispatch(int(cmd), p, uintptr(size))
	if err != nil {
		*errOut = C.int(errnoOf(err))
		return -1
	}
	return C.long(r)
}

// guarded runs read, which reads memory at addresses the caller of bpf(2)
// gave, and turns a fault into EFAULT, the kernel's answer. Only the
// library's own reads are guarded this way: sys may fault while it holds
// a map's lock, and recovering there would leave the lock held, so a bad
// pointer that reaches sys ends the process, as sys documents.
func guarded(read func()) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			err = syscall.EFAULT
		}
	}()
	read()
	return nil
}

// errnoOf is the errno the kernel would return for a bpfmap error (the
// command layer's mapping; EINVAL for an error that carries none).
func errnoOf(err error) syscall.Errno {
	if e, ok := command.ErrnoOf(err); ok {
		return e
	}
	return syscall.EINVAL
}

// dispatch runs one bpf(2) command the C half thinks may be bpfmap's, or
// answers pass.
func dispatch(cmd int, p unsafe.Pointer, size uintptr) (int, error) {
	if size > attrMax {
		// The kernel's first check, before it reads anything.
		return -1, syscall.E2BIG
	}
	var a *attr
	if err := guarded(func() { a = readAttr(p, size) }); err != nil {
		return -1, err
	}
	if p == nil && size > 0 {
		return -1, syscall.EFAULT
	}
	switch cmd {
	case cmdMapCreate:
		if !wantCreate(a) {
			return pass, nil
		}
		return sys.BPF(cmd, p, size)
	case cmdObjGet, cmdObjPin:
		if cmd == cmdObjPin && !sys.IsMapFD(int(int32(a.u32(8)))) {
			return pass, nil
		}
		return pathCommand(cmd, p, size, a)
	case cmdMapFDByID:
		// Ids from namespace.MinID up are user-space ids.
		if a.u32(0) < namespace.MinID {
			return pass, nil
		}
		return sys.BPF(cmd, p, size)
	case cmdMapNextID:
		if p != nil && a.u32(0) < namespace.MinID {
			// Kernel ids first; its end (ENOENT) or refusal (EPERM: no
			// privilege) hands over to the user-space ids, all of
			// which are larger.
			r, _, e := syscall.Syscall(unix.SYS_BPF, uintptr(cmd), uintptr(p), size)
			if e == 0 {
				return int(r), nil
			}
			if e != syscall.ENOENT && e != syscall.EPERM {
				return -1, e
			}
		}
		return sys.BPF(cmd, p, size)
	}
	off := 0
	if cmd >= cmdLookupBatch && cmd <= cmdDeleteBatch {
		off = 36
	}
	// The fd's bit says it was a bpfmap fd; sys checks that it still is
	// (one fstat). Only when sys refuses the fd the way it refuses one
	// that is not its own — then nothing has happened — is the bit asked
	// about again: a stale one (the fd was closed behind the library's
	// back and its number reused) sends the command to the kernel.
	r, err := sys.BPF(cmd, p, size)
	if err != nil {
		if e := errnoOf(err); (e == syscall.EINVAL || e == syscall.EBADF || e == uapi.EBADFD) &&
			!sys.IsMapFD(int(int32(a.u32(off)))) {
			return pass, nil
		}
	}
	return r, err
}

// wantCreate is the selection rule of MAP_CREATE (see doc.go).
func wantCreate(a *attr) bool {
	if createMode() == "kernel" {
		return false
	}
	t := uapi.MapType(a.u32(0))
	if !command.Implemented(t) {
		return false
	}
	const (
		offFlags     = 16
		offInnerFD   = 20
		offIfindex   = 44
		offBTFFD     = 48
		offKeyTypeID = 52
		offValTypeID = 56
		offVmlinuxID = 60
		offValBTFFD  = 72
		offTokenFD   = 76
	)
	if a.u32(offIfindex) != 0 || // offloaded to a device
		a.u32(offBTFFD) != 0 || a.u32(offKeyTypeID) != 0 || a.u32(offValTypeID) != 0 ||
		a.u32(offVmlinuxID) != 0 || a.u32(offValBTFFD) != 0 || // described by kernel BTF
		a.u32(offFlags)&uapi.FTokenFD != 0 || a.u32(offTokenFD) != 0 { // a kernel BPF token
		return false
	}
	if t == uapi.MapTypeArrayOfMaps || t == uapi.MapTypeHashOfMaps {
		// The inner map template decides: user-space outer maps hold
		// user-space maps only.
		return sys.IsMapFD(int(int32(a.u32(offInnerFD))))
	}
	return true
}

// pathCommand runs OBJ_PIN or OBJ_GET in bpfmap: a pin of a bpfmap fd
// always (bpfmap answers EPERM for a target outside its namespaces, as the
// kernel does outside a bpffs), a get when its path, resolved as the kernel
// resolves it (sys.PathInNamespace), lies in a namespace.
func pathCommand(cmd int, p unsafe.Pointer, size uintptr, a *attr) (int, error) {
	const (
		offFlags  = 12
		offPathFD = 16
	)
	ptr := a.ptr(0) // attr.pathname, from the guarded copy
	if ptr == nil {
		if cmd == cmdObjPin {
			return sys.BPF(cmd, p, size)
		}
		return pass, nil
	}
	dirfd := unix.AT_FDCWD
	if a.u32(offFlags)&uapi.FPathFD != 0 {
		dirfd = int(int32(a.u32(offPathFD)))
	}
	// Read here, where a bad pathname is EFAULT; sys would fault on it.
	var name string
	if err := guarded(func() { name = cString(ptr) }); err != nil {
		return -1, err
	}
	if cmd == cmdObjGet && !sys.PathInNamespace(name, dirfd) {
		return pass, nil
	}
	// The namespace refuses names bpffs refuses (a '.' below the root:
	// EPERM) itself.
	return sys.BPF(cmd, p, size)
}

// cString reads the NUL-terminated string at p (at most PATH_MAX bytes, as
// the kernel reads a path).
func cString(p unsafe.Pointer) string {
	var b []byte
	for i := 0; i < 4096; i++ {
		c := *(*byte)(unsafe.Add(p, i))
		if c == 0 {
			break
		}
		b = append(b, c)
	}
	return string(b)
}

// inNamespace reports whether path (relative paths from the working
// directory) is the root of a bpfmap pin namespace or lies below one: what
// statfs and mount treat as a bpffs. The root itself is no pin path; its
// internal directory, which every root has, stands for it.
func inNamespace(path string) bool {
	if path == "" {
		return false
	}
	return sys.PathInNamespace(path, unix.AT_FDCWD) ||
		sys.PathInNamespace(strings.TrimRight(path, "/")+"/"+namespace.InternalDir, unix.AT_FDCWD)
}

// defaultRoot is the default namespace's root, absolute.
var defaultRoot = sync.OnceValue(func() string {
	r, err := filepath.Abs(namespace.DefaultRoot())
	if err != nil {
		return ""
	}
	return r
})

//export bpfmapGoNameProbe
func bpfmapGoNameProbe() C.int {
	if createMode() == "kernel" {
		return 0
	}
	return 1
}

//export bpfmapGoMmapErrno
func bpfmapGoMmapErrno(fd, writable C.int) (e C.int) {
	defer func() {
		if recover() != nil {
			e = C.int(syscall.ENODEV)
		}
	}()
	if !sys.IsMapFD(int(fd)) {
		return 0
	}
	return C.int(errnoOf(sys.MmapErrno(int(fd), writable != 0)))
}

//export bpfmapGoClose
func bpfmapGoClose(fd C.int, errOut *C.int) C.int {
	if err := sys.Close(int(fd)); err != nil {
		*errOut = C.int(errnoOf(err))
		return -1
	}
	return 0
}

//export bpfmapGoForget
func bpfmapGoForget(fd C.int) {
	sys.Forget(int(fd))
}

//export bpfmapGoDup
func bpfmapGoDup(oldfd, newfd C.int) (ok C.int) {
	defer func() {
		if recover() != nil {
			ok = 0
		}
	}()
	// sys adopts a descriptor of a map object file on first sight.
	if sys.IsMapFD(int(newfd)) {
		return 1
	}
	return 0
}

//export bpfmapGoIsMapFD
func bpfmapGoIsMapFD(fd C.int) (ok C.int) {
	defer func() {
		if recover() != nil {
			ok = 0
		}
	}()
	if sys.IsMapFD(int(fd)) {
		return 1
	}
	return 0
}

//export bpfmapGoFDInfo
func bpfmapGoFDInfo(fd C.int, buf *C.char, n C.int) (ret C.int) {
	defer func() {
		if recover() != nil {
			ret = -1
		}
	}()
	s, ok := sys.FDInfo(int(fd))
	if !ok {
		return -1
	}
	return C.int(copy(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n)), s))
}

//export bpfmapGoInNamespace
func bpfmapGoInNamespace(path *C.char) (ret C.int) {
	defer func() {
		if recover() != nil {
			ret = 0
		}
	}()
	if inNamespace(C.GoString(path)) {
		return 1
	}
	return 0
}

//export bpfmapGoMountRoot
func bpfmapGoMountRoot(buf *C.char, n C.int) (ret C.int) {
	defer func() {
		if recover() != nil {
			ret = 0
		}
	}()
	r := defaultRoot()
	if r == "" || int(n) <= len(r) || !inNamespace(r) {
		return 0
	}
	b := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n))
	copy(b, r)
	b[len(r)] = 0
	return C.int(len(r))
}

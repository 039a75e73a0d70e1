//go:build linux

package sys

import (
	"encoding/binary"
	"unsafe"
)

// ne is the byte order of the kernel ABI on this machine.
var ne = binary.NativeEndian

// maxUser caps the length of a user buffer built from an address and a
// count, below the largest slice the runtime accepts; a command that needs
// more than that fails with EFAULT, as the kernel would at the end of the
// address space.
const maxUser = 1 << 40

// userPtr returns user address p as a pointer.
func userPtr(p uint64) unsafe.Pointer {
	// unsafe: the attr carries plain process addresses; reinterpreting the
	// integer's bits as a pointer (instead of converting a uintptr
	// expression) keeps vet's and checkptr's pointer-arithmetic rules out
	// of it. Sound as long as the caller passed a valid address, which is
	// the contract of BPF (see the package documentation).
	return *(*unsafe.Pointer)(unsafe.Pointer(&p))
}

// userBytes returns the n bytes at user address p: nil for NULL (0), a
// non-nil empty slice for a non-NULL address and n == 0.
func userBytes(p uint64, n uint64) []byte {
	if p == 0 {
		return nil
	}
	if n > maxUser {
		n = maxUser
	}
	// unsafe: p is a caller-supplied address of at least n bytes (the
	// size the kernel would read or write there); see userPtr.
	return unsafe.Slice((*byte)(userPtr(p)), n)
}

// userString reads the NUL-terminated string at user address p, as the
// kernel's getname: EFAULT for NULL, ENAMETOOLONG when no NUL comes within
// PATH_MAX bytes.
func userString(p uint64) (string, error) {
	if p == 0 {
		return "", errFault
	}
	const pathMax = 4096
	base := userPtr(p)
	for n := 0; n < pathMax; n++ {
		// unsafe: each byte up to and including the NUL belongs to the
		// caller's string.
		if *(*byte)(unsafe.Add(base, n)) == 0 {
			return string(unsafe.Slice((*byte)(base), n)), nil
		}
	}
	return "", errNameTooLong
}

// attrBytes returns the first n bytes of the caller's attr.
func attrBytes(attr unsafe.Pointer, n uintptr) []byte {
	// unsafe: attr points to the size bytes the caller passed to BPF
	// (n ≤ size).
	return unsafe.Slice((*byte)(attr), n)
}

// putAttr32 writes v at offset off of the caller's attr, as the kernel's
// put_user into uattr: EFAULT for a NULL attr. Like the kernel it writes the
// field even when the size the caller gave ends before it.
func putAttr32(attr unsafe.Pointer, off uintptr, v uint32) error {
	if attr == nil {
		return errFault
	}
	// unsafe: the field lies inside union bpf_attr, which the caller's
	// attr is (the kernel writes there regardless of size, and so do we).
	ne.PutUint32(unsafe.Slice((*byte)(unsafe.Add(attr, off)), 4), v)
	return nil
}

// putUser copies b to user address p (non-NULL).
//
// (Not inlined: go1.26's SSA backend crashes on an inlined copy from a
// fixed-size array to a slice built from an address.)
//
//go:noinline
func putUser(p uint64, b []byte) {
	copy(userBytes(p, uint64(len(b))), b)
}

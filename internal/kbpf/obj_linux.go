//go:build linux

package kbpf

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// bpf(2) commands on objects and ids (include/uapi/linux/bpf.h).
const (
	cmdObjPin       = 6
	cmdObjGet       = 7
	cmdMapGetNextID = 12
	cmdMapGetFDByID = 14
	objAttrSize     = 20 // pathname, bpf_fd, file_flags, path_fd
	objAttrFlagsOff = 12
	nextIDAttrSize  = 8  // start_id, next_id
	fdByIDAttrSize  = 12 // map_id, next_id, open_flags
)

// cString returns path as a NUL-terminated byte slice.
func cString(path string) []byte {
	b := make([]byte, len(path)+1)
	copy(b, path)
	return b
}

// obj runs BPF_OBJ_PIN or BPF_OBJ_GET with the 20-byte object attr.
func obj(cmd uint32, path string, fd int, flags uint32) (int, syscall.Errno) {
	var ps pins
	defer ps.p.Unpin()
	attr := make([]byte, objAttrSize)
	ne.PutUint64(attr[0:], ps.addr(cString(path)))
	ne.PutUint32(attr[8:], uint32(fd))
	ne.PutUint32(attr[objAttrFlagsOff:], flags)
	return Raw(cmd, attr)
}

// ObjPin runs BPF_OBJ_PIN: it pins the object behind fd at path (flags is
// file_flags, passed verbatim).
func ObjPin(fd int, path string, flags uint32) syscall.Errno {
	_, e := obj(cmdObjPin, path, fd, flags)
	return e
}

// ObjGet runs BPF_OBJ_GET: a new fd for the object pinned at path, with
// file_flags flags (BPF_F_RDONLY, BPF_F_WRONLY), or the errno.
func ObjGet(path string, flags uint32) (fd int, errno syscall.Errno) {
	r, e := obj(cmdObjGet, path, 0, flags)
	if e != 0 {
		return -1, e
	}
	return r, 0
}

// MapGetNextID runs BPF_MAP_GET_NEXT_ID: the smallest live map id greater
// than start, or the errno.
func MapGetNextID(start uint32) (uint32, syscall.Errno) {
	attr := make([]byte, nextIDAttrSize)
	ne.PutUint32(attr[0:], start)
	if _, e := Raw(cmdMapGetNextID, attr); e != 0 {
		return 0, e
	}
	return ne.Uint32(attr[4:]), 0
}

// MapGetFDByID runs BPF_MAP_GET_FD_BY_ID with open_flags flags: a new fd
// for the map with the given id, or the errno.
func MapGetFDByID(id uint32, flags uint32) (fd int, errno syscall.Errno) {
	attr := make([]byte, fdByIDAttrSize)
	ne.PutUint32(attr[0:], id)
	ne.PutUint32(attr[8:], flags)
	r, e := Raw(cmdMapGetFDByID, attr)
	if e != 0 {
		return -1, e
	}
	return r, 0
}

// Mmap maps length bytes of map fd's memory (a BPF_F_MMAPABLE array) shared,
// with protection prot (unix.PROT_READ, unix.PROT_WRITE); the errno is the
// kernel's.
func Mmap(fd int, length int, prot int) ([]byte, syscall.Errno) {
	b, err := unix.Mmap(fd, 0, length, prot, unix.MAP_SHARED)
	if err != nil {
		e, ok := err.(syscall.Errno)
		if !ok {
			e = syscall.EINVAL
		}
		return nil, e
	}
	return b, 0
}

// Munmap unmaps memory returned by Mmap.
func Munmap(b []byte) error { return unix.Munmap(b) }

// cmdBTFGetFDByID is BPF_BTF_GET_FD_BY_ID.
const cmdBTFGetFDByID = 19

// BTFByID returns the raw BTF (header, types and strings) of the kernel's
// BTF object id, as libbpf's btf__load_from_kernel_by_id reads it:
// BPF_BTF_GET_FD_BY_ID, then BPF_OBJ_GET_INFO_BY_FD with struct
// bpf_btf_info, growing the buffer to the size the kernel reports.
func BTFByID(id uint32) ([]byte, syscall.Errno) {
	attr := make([]byte, 12) // btf_id, next_id, open_flags
	ne.PutUint32(attr, id)
	fd, e := Raw(cmdBTFGetFDByID, attr)
	if e != 0 {
		return nil, e
	}
	defer unix.Close(fd)
	size := uint32(4096)
	for {
		buf, got, e := btfInfo(fd, size)
		if e != 0 {
			return nil, e
		}
		if got <= size {
			return buf[:got], 0
		}
		size = got
	}
}

// btfInfo runs BPF_OBJ_GET_INFO_BY_FD on a BTF fd with a size-byte buffer
// and returns it with the BTF's full size.
func btfInfo(fd int, size uint32) ([]byte, uint32, syscall.Errno) {
	var ps pins
	defer ps.p.Unpin()
	buf := make([]byte, size)
	info := make([]byte, 32) // struct bpf_btf_info: btf, btf_size, id, name, name_len, kernel_btf
	ne.PutUint64(info[0:], ps.addr(buf))
	ne.PutUint32(info[8:], size)
	attr := make([]byte, infoAttrSize)
	ne.PutUint32(attr[0:], uint32(fd))
	ne.PutUint32(attr[infoLenOffset:], uint32(len(info)))
	ne.PutUint64(attr[8:], ps.addr(info))
	if _, e := Raw(cmdObjGetInfoByFD, attr); e != 0 {
		return nil, 0, e
	}
	return buf, ne.Uint32(info[8:]), 0
}

//go:build linux

package sys

import (
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

var (
	errFault        error = unix.EFAULT
	errNameTooLong  error = unix.ENAMETOOLONG
	errInval        error = unix.EINVAL
	errBadF         error = unix.EBADF
	errNoEnt        error = unix.ENOENT
	errPerm         error = unix.EPERM
	errE2BIG        error = unix.E2BIG
	errAccess       error = unix.EACCES
	errBadFD        error = uapi.EBADFD
	errNoMem        error = unix.ENOMEM
	errNotDir       error = unix.ENOTDIR
	errExist        error = unix.EEXIST
	errNoNamespace  error = unix.ENOMEM
	errUnknownError error = unix.EINVAL
)

// defaultNS is the namespace of new maps and of ids (a variable so that
// tests can choose one).
var defaultNS = namespace.Default

// BPF is bpf(2) for user-space maps: cmd is a BPF_* command, attr points
// to size bytes of union bpf_attr (nil with size 0 is an all-zero attr).
// It returns the new file descriptor for BPF_MAP_CREATE, BPF_OBJ_GET and
// BPF_MAP_GET_FD_BY_ID and 0 for the other commands, or -1 and the
// kernel's syscall.Errno. See the package documentation for the envelope,
// the file descriptors and the deviations.
func BPF(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	r, err := bpf(cmd, attr, size)
	if err != nil {
		return -1, toErrno(err)
	}
	return r, nil
}

func bpf(cmd int, attr unsafe.Pointer, size uintptr) (int, error) {
	// The envelope (bpf_check_uarg_tail_zero, then the copy of the attr).
	// The kernel's size argument is an unsigned int.
	size = uintptr(uint32(size))
	if size > PageSize {
		return 0, errE2BIG
	}
	if size > 0 && attr == nil {
		return 0, errFault
	}
	var a [AttrSize]byte
	n := size
	if n > AttrSize {
		if !zero(attrBytes(attr, size)[AttrSize:]) {
			return 0, errE2BIG
		}
		n = AttrSize
	}
	if n > 0 {
		copy(a[:], attrBytes(attr, n))
	}
	switch cmd {
	case BPF_MAP_CREATE:
		return mapCreate(&a)
	case BPF_MAP_LOOKUP_ELEM, BPF_MAP_LOOKUP_AND_DELETE_ELEM:
		return 0, lookupElem(cmd, &a)
	case BPF_MAP_UPDATE_ELEM:
		return 0, updateElem(&a)
	case BPF_MAP_DELETE_ELEM:
		return 0, deleteElem(&a)
	case BPF_MAP_GET_NEXT_KEY:
		return 0, getNextKey(&a)
	case BPF_MAP_FREEZE:
		return 0, freeze(&a)
	case BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH, BPF_MAP_UPDATE_BATCH, BPF_MAP_DELETE_BATCH:
		return 0, batch(cmd, attr, &a)
	case BPF_OBJ_PIN:
		return 0, objPin(&a)
	case BPF_OBJ_GET:
		return objGet(&a)
	case BPF_MAP_GET_NEXT_ID:
		return 0, getNextID(attr, &a)
	case BPF_MAP_GET_FD_BY_ID:
		return getFDByID(&a)
	case BPF_OBJ_GET_INFO_BY_FD:
		return 0, objGetInfo(attr, &a)
	}
	return 0, errInval
}

func zero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// checkAttr is CHECK_ATTR: every byte after the command's last field is
// zero.
func checkAttr(a *[AttrSize]byte, end int) error {
	if !zero(a[end:]) {
		return errInval
	}
	return nil
}

// toErrno turns an error of the command layer or of this package into the
// kernel's errno.
func toErrno(err error) error {
	if errno, ok := command.ErrnoOf(err); ok {
		return errno
	}
	return errUnknownError
}

func u32(a *[AttrSize]byte, off int) uint32 { return ne.Uint32(a[off:]) }
func u64(a *[AttrSize]byte, off int) uint64 { return ne.Uint64(a[off:]) }

func mapCreate(a *[AttrSize]byte) (int, error) {
	if err := checkAttr(a, MapCreateAttrSize); err != nil {
		return 0, err
	}
	ca := command.CreateAttr{
		MapType: u32(a, 0), KeySize: u32(a, 4), ValueSize: u32(a, 8), MaxEntries: u32(a, 12),
		MapFlags: u32(a, 16), InnerMapFD: u32(a, 20), NumaNode: u32(a, 24),
		MapIfindex: u32(a, 44), BTFFD: u32(a, 48), BTFKeyTypeID: u32(a, 52), BTFValueTypeID: u32(a, 56),
		BTFVmlinuxValueTypeID: u32(a, 60), MapExtra: u64(a, 64),
		ValueTypeBTFObjFD: int32(u32(a, 72)), MapTokenFD: int32(u32(a, 76)),
		ExclProgHash: u64(a, 80), ExclProgHashSize: u32(a, 88),
	}
	copy(ca.MapName[:], a[28:44])
	if t := uapi.MapType(ca.MapType); t == uapi.MapTypeArrayOfMaps || t == uapi.MapTypeHashOfMaps {
		// inner_map_fd: a map of ours is the template; otherwise the
		// command layer answers for "not open" (EBADF: a non-zero fd it
		// cannot resolve) or "not a map" (EINVAL: fd 0).
		e, err := resolve(int(int32(ca.InnerMapFD)))
		switch {
		case err == nil:
			defer e.put() // the template is read until Create returns
			ca.InnerMap = e.h
		case err == errBadF:
			ca.InnerMapFD = ^uint32(0)
		default:
			ca.InnerMapFD = 0
		}
	}
	ns, err := defaultNS()
	if err != nil {
		return 0, errNoNamespace
	}
	h, err := command.Create(&ca, command.Options{Namespace: ns})
	if err != nil {
		return 0, err
	}
	return newFD(h)
}

// elemFD resolves the map_fd of an element command.
func elemFD(a *[AttrSize]byte) (*entry, error) { return resolve(int(int32(u32(a, 0)))) }

// onMap is the prologue of a command on map_fd: the attr check up to the
// command's last field (size), then the fd; do runs with the fd's entry,
// which stays referenced until it returns.
func onMap(a *[AttrSize]byte, size int, do func(e *entry) error) error {
	if err := checkAttr(a, size); err != nil {
		return err
	}
	e, err := elemFD(a)
	if err != nil {
		return err
	}
	defer e.put()
	return do(e)
}

func lookupElem(cmd int, a *[AttrSize]byte) error {
	if err := checkAttr(a, MapElemAttrSize); err != nil {
		return err
	}
	flags := u64(a, 24)
	if err := command.CheckLookupFlags(flags); err != nil {
		return err
	}
	e, err := elemFD(a)
	if err != nil {
		return err
	}
	defer e.put()
	key := userBytes(u64(a, 8), uint64(e.ks))
	value := userBytes(u64(a, 16), uint64(e.vs))
	if cmd == BPF_MAP_LOOKUP_AND_DELETE_ELEM {
		return e.h.LookupAndDelete(key, value, flags)
	}
	return e.h.Lookup(key, value, flags)
}

func updateElem(a *[AttrSize]byte) error {
	return onMap(a, MapElemAttrSize, func(e *entry) error {
		key := userBytes(u64(a, 8), uint64(e.ks))
		value := userBytes(u64(a, 16), uint64(e.vs))
		if e.mim {
			return e.h.UpdateFD(key, value, u64(a, 24), innerFD)
		}
		return e.h.Update(key, value, u64(a, 24))
	})
}

// innerFD resolves the fd in a map-in-map value to a new handle of the
// inner map (which the command layer closes).
func innerFD(fd uint32) (*command.Handle, error) {
	e, err := resolve(int(int32(fd)))
	if err != nil {
		return nil, err
	}
	defer e.put()
	return e.h.Dup()
}

func deleteElem(a *[AttrSize]byte) error {
	return onMap(a, MapDeleteAttrSize, func(e *entry) error {
		return e.h.Delete(userBytes(u64(a, 8), uint64(e.ks)))
	})
}

func getNextKey(a *[AttrSize]byte) error {
	return onMap(a, MapNextKeyAttrSize, func(e *entry) error {
		return e.h.GetNextKey(userBytes(u64(a, 8), uint64(e.ks)), userBytes(u64(a, 16), uint64(e.ks)))
	})
}

func freeze(a *[AttrSize]byte) error {
	return onMap(a, MapFreezeAttrSize, func(e *entry) error { return e.h.Freeze() })
}

func batch(cmd int, attr unsafe.Pointer, a *[AttrSize]byte) error {
	if err := checkAttr(a, MapBatchAttrSize); err != nil {
		return err
	}
	e, err := resolve(int(int32(u32(a, 36))))
	if err != nil {
		return err
	}
	defer e.put()
	count := u32(a, 32)
	b := command.Batch{
		Keys:      userBytes(u64(a, 16), uint64(count)*uint64(e.ks)),
		Count:     count,
		ElemFlags: u64(a, 40),
		Flags:     u64(a, 48),
	}
	if cmd != BPF_MAP_DELETE_BATCH {
		b.Values = userBytes(u64(a, 24), uint64(count)*uint64(e.vs))
	}
	switch cmd {
	case BPF_MAP_LOOKUP_BATCH, BPF_MAP_LOOKUP_AND_DELETE_BATCH:
		cs := uint64(e.h.BatchCursorSize(cmd == BPF_MAP_LOOKUP_AND_DELETE_BATCH))
		b.InBatch = userBytes(u64(a, 0), cs)
		b.OutBatch = userBytes(u64(a, 8), cs)
	}
	switch cmd {
	case BPF_MAP_LOOKUP_BATCH:
		err = e.h.LookupBatch(&b)
	case BPF_MAP_LOOKUP_AND_DELETE_BATCH:
		err = e.h.LookupAndDeleteBatch(&b)
	case BPF_MAP_UPDATE_BATCH:
		if e.mim {
			b.InnerFD = innerFD
		}
		err = e.h.UpdateBatch(&b)
	case BPF_MAP_DELETE_BATCH:
		err = e.h.DeleteBatch(&b)
	}
	if b.Count != count {
		// The kernel writes attr.batch.count back; an unchanged count
		// reads the same whether it was written or not.
		if perr := putAttr32(attr, 32, b.Count); perr != nil && err == nil {
			err = perr
		}
	}
	return err
}

func getNextID(attr unsafe.Pointer, a *[AttrSize]byte) error {
	if err := checkAttr(a, GetNextIDAttrSize); err != nil {
		return err
	}
	if err := command.CheckNextIDStart(u32(a, 0)); err != nil {
		return err
	}
	ns, err := defaultNS()
	if err != nil {
		return errNoEnt
	}
	sweep() // maps closed with close(2) are gone first, as in the kernel
	id, err := command.NextID(ns, u32(a, 0))
	if err != nil {
		return err
	}
	return putAttr32(attr, 4, id)
}

func getFDByID(a *[AttrSize]byte) (int, error) {
	if err := checkAttr(a, GetFDByIDAttrSize); err != nil {
		return 0, err
	}
	id, flags := u32(a, 0), u32(a, 8)
	ns, err := defaultNS()
	if err != nil {
		return 0, errNoEnt
	}
	if namespace.ValidID(id) {
		sweepID(id)
	} // a map closed with close(2) is gone first, as in the kernel
	h, err := command.OpenID(ns, id, flags)
	if err != nil {
		return 0, err
	}
	return newFD(h)
}

func objPin(a *[AttrSize]byte) error {
	if err := checkAttr(a, ObjAttrSize); err != nil {
		return err
	}
	flags, pathFD := u32(a, 12), int32(u32(a, 16))
	if flags&^uint32(BPF_F_PATH_FD) != 0 || flags&BPF_F_PATH_FD == 0 && pathFD != 0 {
		return errInval
	}
	// The object first: anything that is not one of our maps is EINVAL,
	// a descriptor that is not open included (bpf_fd_probe_obj).
	e, err := resolve(int(int32(u32(a, 8))))
	if err != nil {
		return errInval
	}
	defer e.put()
	name, err := userString(u64(a, 0))
	if err != nil {
		return err
	}
	p, err := pinTarget(name, flags&BPF_F_PATH_FD != 0, pathFD)
	if err != nil {
		return err
	}
	_, err = e.h.Pin(p)
	return err
}

func objGet(a *[AttrSize]byte) (int, error) {
	if err := checkAttr(a, ObjAttrSize); err != nil {
		return 0, err
	}
	bpfFD, flags, pathFD := u32(a, 8), u32(a, 12), int32(u32(a, 16))
	if bpfFD != 0 || flags&^uint32(uapi.FAccessMask|BPF_F_PATH_FD) != 0 || flags&BPF_F_PATH_FD == 0 && pathFD != 0 {
		return 0, errInval
	}
	// bpf_get_file_flag runs before the path is looked up.
	if err := command.CheckOpenFlags(flags & uapi.FAccessMask); err != nil {
		return 0, err
	}
	name, err := userString(u64(a, 0))
	if err != nil {
		return 0, err
	}
	ns, p, err := getTarget(name, flags&BPF_F_PATH_FD != 0, pathFD)
	if err != nil {
		return 0, err
	}
	h, err := command.OpenPinned(ns, p, flags&uapi.FAccessMask)
	if err != nil {
		return 0, err
	}
	return newFD(h)
}

func objGetInfo(attr unsafe.Pointer, a *[AttrSize]byte) error {
	if err := checkAttr(a, InfoAttrSize); err != nil {
		return err
	}
	e, err := resolve(int(int32(u32(a, 0))))
	if err == errBadF {
		return errBadFD // the kernel's answer for an fd that is not open
	}
	if err != nil {
		return err
	}
	defer e.put()
	n, uinfo := u32(a, 4), u64(a, 8)
	if n > PageSize {
		return errE2BIG
	}
	if n > mapInfoTail {
		if uinfo == 0 {
			return errFault
		}
		if !zero(userBytes(uinfo, uint64(n))[mapInfoTail:]) {
			return errE2BIG
		}
	}
	n = min(n, MapInfoSize)
	var buf [MapInfoSize]byte
	if n > 0 {
		if uinfo == 0 {
			return errFault
		}
		copy(buf[:], userBytes(uinfo, uint64(n)))
	}
	info, err := e.h.Info()
	if err != nil {
		return err
	}
	// The fields the kernel fills; the others keep what the caller
	// passed in, as the kernel leaves them.
	ne.PutUint32(buf[0:], uint32(info.Type))
	ne.PutUint32(buf[4:], info.ID)
	ne.PutUint32(buf[8:], info.KeySize)
	ne.PutUint32(buf[12:], info.ValueSize)
	ne.PutUint32(buf[16:], info.MaxEntries)
	ne.PutUint32(buf[20:], info.MapFlags)
	copy(buf[24:40], info.Name[:])
	ne.PutUint32(buf[44:], 0) // btf_vmlinux_value_type_id
	ne.PutUint64(buf[80:], info.MapExtra)
	if hash, hashSize := ne.Uint64(buf[88:]), ne.Uint32(buf[96:]); hash != 0 {
		sum, err := e.h.Hash(hashSize)
		if err != nil {
			return err
		}
		putUser(hash, sum[:])
	} else if hashSize != 0 {
		return errInval
	}
	if n > 0 {
		putUser(uinfo, buf[:n])
	}
	return putAttr32(attr, 4, n)
}

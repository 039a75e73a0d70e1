package cli

import (
	"path/filepath"
	"strings"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// mapInfo is what the commands print about a map: struct bpf_map_info and
// the fdinfo lines bpftool reads, for a kernel map or a user-space one.
type mapInfo struct {
	typ, id                     uint32
	keySize, valueSize, maxEnts uint32
	flags                       uint32
	name                        string
	ifindex                     uint32
	netnsDev, netnsIno          uint64
	btfID                       uint32
	btfKeyType, btfValueType    uint32 // btf_key_type_id, btf_value_type_id
	btfVmlinuxValueType         uint32 // btf_vmlinux_value_type_id
	memlock                     string // fdinfo "memlock", "" if absent
	frozen                      int
	ncpu                        int    // possible CPUs of a per-CPU map's values
	root                        string // namespace root of a user-space map; "" for a kernel map
}

// perCPU reports whether the map's values are per CPU (bpftool's list).
func (i *mapInfo) perCPU() bool {
	switch uapi.MapType(i.typ) {
	case uapi.MapTypePercpuHash, uapi.MapTypePercpuArray, uapi.MapTypeLRUPercpuHash, uapi.MapTypePercpuCgroupStor:
		return true
	}
	return false
}

func (i *mapInfo) mapOfMaps() bool {
	t := uapi.MapType(i.typ)
	return t == uapi.MapTypeArrayOfMaps || t == uapi.MapTypeHashOfMaps
}

// valueBufSize is the size of the value buffer of an element command.
func (i *mapInfo) valueBufSize() int {
	if i.perCPU() {
		return int((i.valueSize+7)&^7) * i.ncpu
	}
	return int(i.valueSize)
}

// bpfMap is an open map, like a map fd: a kernel map (through bpf(2)) or a
// user-space map (through bpfmap's command layer). Every method returns the
// errno the kernel or bpfmap gave, untouched.
type bpfMap interface {
	info() (mapInfo, syscall.Errno)
	lookup(key, value []byte) syscall.Errno
	update(key, value []byte, flags uint64) syscall.Errno
	updateInner(key []byte, inner bpfMap, flags uint64) syscall.Errno
	delete(key []byte) syscall.Errno
	nextKey(key, next []byte) syscall.Errno
	lookupAndDelete(key, value []byte) syscall.Errno
	freeze() syscall.Errno
	pin(path string) syscall.Errno
	close()
}

// errnoOf extracts the errno from an error of the command layer.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	if errno, ok := command.ErrnoOf(err); ok {
		return errno
	}
	return syscall.EINVAL
}

// kernelMap is a map fd of the running kernel.
type kernelMap struct{ fd int }

func (k *kernelMap) info() (mapInfo, syscall.Errno) {
	ki, e := kbpf.Info(k.fd)
	if e != 0 {
		return mapInfo{}, e
	}
	i := mapInfo{
		typ: ki.Type, id: ki.ID, keySize: ki.KeySize, valueSize: ki.ValueSize,
		maxEnts: ki.MaxEntries, flags: ki.MapFlags, name: ki.NameString(),
		ifindex: ki.Ifindex, netnsDev: ki.NetnsDev, netnsIno: ki.NetnsIno,
		btfID: ki.BTFID, ncpu: command.PossibleCPUs(),
		btfKeyType: ki.BTFKeyTypeID, btfValueType: ki.BTFValueTypeID,
		btfVmlinuxValueType: ki.BTFVmlinuxValueTypeID,
	}
	i.memlock = fdinfo(k.fd, "memlock")
	i.frozen = atoi(fdinfo(k.fd, "frozen"))
	return i, 0
}

func (k *kernelMap) lookup(key, value []byte) syscall.Errno {
	return kbpf.Lookup(k.fd, key, value, 0)
}
func (k *kernelMap) update(key, value []byte, flags uint64) syscall.Errno {
	return kbpf.Update(k.fd, key, value, flags)
}
func (k *kernelMap) updateInner(key []byte, inner bpfMap, flags uint64) syscall.Errno {
	in, ok := inner.(*kernelMap)
	if !ok {
		return syscall.EINVAL // the kernel's answer for an fd that is not a BPF map
	}
	v := make([]byte, 4)
	nativeEndian.PutUint32(v, uint32(in.fd))
	return kbpf.Update(k.fd, key, v, flags)
}
func (k *kernelMap) delete(key []byte) syscall.Errno { return kbpf.Delete(k.fd, key) }
func (k *kernelMap) nextKey(key, next []byte) syscall.Errno {
	return kbpf.GetNextKey(k.fd, key, next)
}
func (k *kernelMap) lookupAndDelete(key, value []byte) syscall.Errno {
	return kbpf.LookupAndDelete(k.fd, key, value, 0)
}
func (k *kernelMap) freeze() syscall.Errno { return kbpf.Freeze(k.fd) }
func (k *kernelMap) pin(path string) syscall.Errno {
	return kbpf.ObjPin(k.fd, path, 0)
}
func (k *kernelMap) close() { _ = kbpf.Close(k.fd) }

// userMap is a user-space map of a bpfmap pin namespace.
type userMap struct{ h *command.Handle }

func (u *userMap) info() (mapInfo, syscall.Errno) {
	ci, err := u.h.Info()
	if err != nil {
		return mapInfo{}, errnoOf(err)
	}
	i := mapInfo{
		typ: uint32(ci.Type), id: ci.ID, keySize: ci.KeySize, valueSize: ci.ValueSize,
		maxEnts: ci.MaxEntries, flags: ci.MapFlags, name: cString(ci.Name[:]),
		memlock: itoa(ci.Memlock), ncpu: ci.PossibleCPUs,
	}
	if ci.Frozen {
		i.frozen = 1
	}
	if ns := u.h.Namespace(); ns != nil {
		i.root = ns.Root()
	}
	return i, 0
}

func (u *userMap) lookup(key, value []byte) syscall.Errno {
	return errnoOf(u.h.Lookup(key, value, 0))
}
func (u *userMap) update(key, value []byte, flags uint64) syscall.Errno {
	return errnoOf(u.h.Update(key, value, flags))
}
func (u *userMap) updateInner(key []byte, inner bpfMap, flags uint64) syscall.Errno {
	in, ok := inner.(*userMap)
	if !ok {
		return syscall.EINVAL
	}
	return errnoOf(u.h.UpdateMap(key, in.h, flags))
}
func (u *userMap) delete(key []byte) syscall.Errno { return errnoOf(u.h.Delete(key)) }
func (u *userMap) nextKey(key, next []byte) syscall.Errno {
	return errnoOf(u.h.GetNextKey(key, next))
}
func (u *userMap) lookupAndDelete(key, value []byte) syscall.Errno {
	return errnoOf(u.h.LookupAndDelete(key, value, 0))
}
func (u *userMap) freeze() syscall.Errno { return errnoOf(u.h.Freeze()) }
func (u *userMap) pin(path string) syscall.Errno {
	_, err := u.h.Pin(path)
	return errnoOf(err)
}
func (u *userMap) close() { _ = u.h.Close() }

// kernelOff keeps the command away from the kernel's maps: kernel ids,
// bpffs paths and kernel creates all behave as on a host without BPF. The
// fuzz tests set it, so that random commands can never touch a real map.
var kernelOff bool

// defaultNS is the user-space namespace that ids, names and relative paths
// refer to, or nil where none can be opened.
func defaultNS() *namespace.NS {
	ns, err := namespace.Default()
	if err != nil {
		return nil
	}
	return ns
}

// userPath reports whether a pin path belongs to a user-space namespace,
// and which: a relative path, or one under the default root (which need
// not exist yet), belongs to the default one.
func userPath(path string) (root string, ok bool) {
	def := namespace.DefaultRoot()
	if !filepath.IsAbs(path) {
		return def, true
	}
	if rel, err := filepath.Rel(def, filepath.Clean(path)); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && rel != "." {
		return def, true
	}
	return namespace.Find(path)
}

// openPinned is BPF_OBJ_GET of path: in a user-space namespace or on bpffs.
func openPinned(path string) (bpfMap, syscall.Errno) {
	if root, ok := userPath(path); ok {
		ns, err := namespace.Open(root)
		if err != nil {
			return nil, syscall.ENOENT
		}
		h, err := command.OpenPinned(ns, path, 0)
		if err != nil {
			return nil, errnoOf(err)
		}
		return &userMap{h}, 0
	}
	if kernelOff {
		return nil, syscall.ENOENT
	}
	fd, e := kbpf.ObjGet(path, 0)
	if e != 0 {
		return nil, e
	}
	return &kernelMap{fd}, 0
}

// openID is BPF_MAP_GET_FD_BY_ID: user-space ids and kernel ids have
// separate ranges (namespace.MinID).
func openID(id uint32) (bpfMap, syscall.Errno) {
	if namespace.ValidID(id) {
		ns := defaultNS()
		if ns == nil {
			return nil, syscall.ENOENT
		}
		h, err := command.OpenID(ns, id, 0)
		if err != nil {
			return nil, errnoOf(err)
		}
		return &userMap{h}, 0
	}
	if kernelOff {
		return nil, syscall.ENOENT
	}
	fd, e := kbpf.MapGetFDByID(id, 0)
	if e != 0 {
		return nil, e
	}
	return &kernelMap{fd}, 0
}

// nextID is BPF_MAP_GET_NEXT_ID over both worlds: the kernel's ids (all
// below namespace.MinID), then the default namespace's. A kernel that
// refuses the command (no privilege, no BPF) contributes no maps.
func nextID(start uint32) (uint32, syscall.Errno) {
	if start < namespace.MinID && !kernelOff {
		id, e := kbpf.MapGetNextID(start)
		if e == 0 && id < namespace.MinID {
			return id, 0
		}
		if e != 0 && e != syscall.ENOENT && e != syscall.EPERM && e != syscall.ENOSYS && e != syscall.EINVAL {
			return 0, e
		}
	}
	if start < namespace.MinID {
		start = namespace.MinID - 1
	}
	ns := defaultNS()
	if ns == nil {
		return 0, syscall.ENOENT
	}
	id, err := command.NextID(ns, start)
	if err != nil {
		return 0, errnoOf(err)
	}
	return id, 0
}

// absPin returns the path a pin argument names: a relative path lies in the
// default namespace.
func absPin(path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(namespace.DefaultRoot(), path)
}

func cString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}

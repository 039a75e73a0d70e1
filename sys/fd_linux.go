//go:build linux

package sys

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// entry is what the table knows of one map file descriptor: the file it
// was when the entry was made (dev, ino and the open file's access mode),
// and our handle of its map.
type entry struct {
	dev, ino uint64
	mode     int // O_ACCMODE of the open file (F_GETFL)
	id       uint32
	h        *command.Handle
	ks, vs   uint32 // key bytes and value bytes the element commands move
	mim      bool   // map-in-map: UPDATE values are fds

	// refs counts the table's reference (while the entry is in the
	// table) and one per command using the entry; the handle is closed
	// when the last one is put.
	refs atomic.Int32
}

// table maps file descriptors to entries. An entry is valid while its fd
// still refers to the same file with the same access mode; a stale entry
// (the fd was closed with close(2), or closed and reused, or dup2'ed over)
// is released when it is met, at the amortised sweeps, and for an id before
// GET_FD_BY_ID.
var table struct {
	mu      sync.RWMutex
	e       []*entry         // by fd
	byID    map[uint32][]int // fds with an entry, by map id
	n       int              // entries
	sweepAt int              // sweep when n grows past this
}

// minSweep is the table size below which growth does not trigger a sweep.
const minSweep = 64

// testHook, when set (by tests only), is called at the named points of fd
// resolution: "adopt" before an adopted handle is inserted, "resolved"
// when resolve returns an entry.
var testHook func(point string)

func statFD(fd int, st *unix.Stat_t) bool {
	return fd >= 0 && unix.Fstat(fd, st) == nil
}

// accMode is the access mode (O_ACCMODE) of the file open at fd.
func accMode(fd int) (int, bool) {
	fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0)
	return fl & unix.O_ACCMODE, err == nil
}

// is reports whether e is the entry of a file with stat st and access mode
// mode.
func (e *entry) is(st *unix.Stat_t, mode int) bool {
	return e.dev == uint64(st.Dev) && e.ino == uint64(st.Ino) && e.mode == mode
}

// current reports whether fd still is the file of e.
func (e *entry) current(fd int) bool {
	var st unix.Stat_t
	if !statFD(fd, &st) {
		return false
	}
	mode, ok := accMode(fd)
	return ok && e.is(&st, mode)
}

// put drops a reference to e (a command's, or the table's when the entry
// left the table), closing the handle with the last one.
func (e *entry) put() {
	if e.refs.Add(-1) == 0 {
		_ = e.h.Close()
	}
}

// resolve is the kernel's map fd lookup: EBADF when fd is not open, EINVAL
// when it is open but not a map of ours. The entry comes with a reference
// for the caller, which puts it when its command is done: a Close or a
// sweep meanwhile does not release the handle under the command.
func resolve(fd int) (*entry, error) {
	var st unix.Stat_t
	if !statFD(fd, &st) {
		return nil, errBadF
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errInval // kernel map fds among others: one fstat
	}
	mode, ok := accMode(fd)
	if !ok {
		return nil, errBadF
	}
	table.mu.RLock()
	if fd < len(table.e) {
		if e := table.e[fd]; e != nil && e.is(&st, mode) {
			// Under the lock: the entry cannot leave the table (and
			// lose the table's reference) before this one is taken.
			e.refs.Add(1)
			table.mu.RUnlock()
			if testHook != nil {
				testHook("resolved")
			}
			return e, nil
		}
	}
	table.mu.RUnlock()
	e, err := adopt(fd, &st, mode)
	if err == nil && testHook != nil {
		testHook("resolved")
	}
	return e, err
}

// adopt makes an entry for an fd we did not hand out (inherited through
// fork/exec, opened by path, or a dup): it must be a map object file of a
// namespace, the very file the namespace has for that id. The map is
// opened with the access mode of the open file (mode).
func adopt(fd int, st *unix.Stat_t, mode int) (*entry, error) {
	path, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		return nil, errInval
	}
	root, id, ok := namespace.ParseObjectPath(path)
	if !ok {
		// A pin (a hard link to the object file) opened by path.
		if root, ok = namespace.Find(path); !ok || !filepath.IsAbs(path) {
			return nil, errInval
		}
		if id = headerID(fd); id == 0 {
			return nil, errInval
		}
	}
	ns, err := nsFor(root)
	if err != nil {
		return nil, errInval
	}
	var ost unix.Stat_t
	if unix.Stat(ns.ObjectPath(id), &ost) != nil || ost.Dev != st.Dev || ost.Ino != st.Ino {
		return nil, errInval
	}
	var flags uint32
	switch mode {
	case unix.O_RDONLY:
		flags = uapi.FRdonly
	case unix.O_WRONLY:
		flags = uapi.FWronly
	}
	// The open file description holds the map from now on (a no-op when
	// it already does, as a description made by this package does).
	if unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB) != nil {
		return nil, errInval // being freed by its last closer
	}
	h, err := command.OpenID(ns, id, flags)
	if err != nil {
		return nil, errInval
	}
	if testHook != nil {
		testHook("adopt")
	}
	return insert(fd, st, mode, h), nil
}

// headerID reads the map id from the region header of the file fd is open
// on (through a descriptor of its own, since fd may be write-only).
func headerID(fd int) uint32 {
	rfd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(fd), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(rfd)
	buf := make([]byte, region.HeaderSize)
	if n, _ := unix.Pread(rfd, buf, 0); n != len(buf) {
		return 0
	}
	h := region.DecodeHeader(buf)
	if string(h.Magic[:]) != region.Magic {
		return 0
	}
	return h.ID
}

// newFD makes the file descriptor of a new handle h: the map's object
// file opened with the handle's access mode and O_CLOEXEC, holding a shared
// flock, so that the open file description keeps the map alive.
func newFD(h *command.Handle) (int, error) {
	ns := h.Namespace()
	info, err := h.Info()
	if err != nil || ns == nil {
		_ = h.Close()
		return 0, errNoMem
	}
	mode := unix.O_RDWR
	switch {
	case !info.Writable:
		mode = unix.O_RDONLY
	case !info.Readable:
		mode = unix.O_WRONLY
	}
	fd, err := unix.Open(ns.ObjectPath(info.ID), mode|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		_ = h.Close()
		return 0, err
	}
	var st unix.Stat_t
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil || unix.Fstat(fd, &st) != nil {
		_ = unix.Close(fd)
		_ = h.Close()
		return 0, errNoMem
	}
	insert(fd, &st, mode, h).put()
	return fd, nil
}

// insert records h as the handle of fd (whose stat is st and access mode
// mode) and returns its entry with a reference for the caller. If fd
// already has an entry for the same file and mode (another thread adopted
// it first), that entry is kept and h closed; any other entry fd had is
// released. The table is swept when it has doubled since the last sweep.
func insert(fd int, st *unix.Stat_t, mode int, h *command.Handle) *entry {
	info, _ := h.Info()
	e := &entry{
		dev: uint64(st.Dev), ino: uint64(st.Ino), mode: mode, id: info.ID, h: h,
		ks: info.KeySize, vs: h.SysValueSize(), mim: h.IsMapInMap(),
	}
	e.refs.Store(2) // the table's and the caller's
	table.mu.Lock()
	if fd >= len(table.e) {
		n := max(2*len(table.e), fd+1, 64)
		table.e = append(table.e, make([]*entry, n-len(table.e))...)
	}
	old := table.e[fd]
	if old != nil && old.is(st, mode) {
		old.refs.Add(1)
		table.mu.Unlock()
		_ = h.Close()
		return old
	}
	if old != nil {
		removeLocked(fd, old)
	}
	table.e[fd] = e
	table.n++
	if table.byID == nil {
		table.byID = map[uint32][]int{}
	}
	table.byID[e.id] = append(table.byID[e.id], fd)
	full := table.n > max(table.sweepAt, minSweep)
	table.mu.Unlock()
	if old != nil {
		old.put()
	}
	if full {
		sweep()
	}
	return e
}

// removeLocked removes e, the entry of fd (table lock held).
func removeLocked(fd int, e *entry) {
	table.e[fd] = nil
	table.n--
	fds := table.byID[e.id]
	for i, f := range fds {
		if f == fd {
			fds[i] = fds[len(fds)-1]
			fds = fds[:len(fds)-1]
			break
		}
	}
	if len(fds) == 0 {
		delete(table.byID, e.id)
	} else {
		table.byID[e.id] = fds
	}
}

// take removes and returns fd's entry, if any, with the table's reference.
func take(fd int) *entry {
	table.mu.Lock()
	defer table.mu.Unlock()
	if fd < 0 || fd >= len(table.e) || table.e[fd] == nil {
		return nil
	}
	e := table.e[fd]
	removeLocked(fd, e)
	return e
}

// sweep releases every stale entry.
func sweep() {
	table.mu.Lock()
	var dead []*entry
	for fd, e := range table.e {
		if e != nil && !e.current(fd) {
			removeLocked(fd, e)
			dead = append(dead, e)
		}
	}
	table.sweepAt = 2 * table.n
	if len(table.e) > 4*max(table.n, minSweep) {
		// Give back the slots of a table that has shrunk.
		last := 0
		for fd, e := range table.e {
			if e != nil {
				last = fd + 1
			}
		}
		table.e = append([]*entry(nil), table.e[:max(last, minSweep)]...)
	}
	table.mu.Unlock()
	for _, e := range dead {
		e.put()
	}
}

// sweepID releases the stale entries of map id.
func sweepID(id uint32) {
	table.mu.Lock()
	var dead []*entry
	for _, fd := range append([]int(nil), table.byID[id]...) {
		if e := table.e[fd]; e != nil && !e.current(fd) {
			removeLocked(fd, e)
			dead = append(dead, e)
		}
	}
	table.mu.Unlock()
	for _, e := range dead {
		e.put()
	}
}

// Close closes fd, a map file descriptor of this package or any other file,
// and releases the package's handle of it. With the last descriptor of an
// unpinned map goes the map, before Close returns, as with close(2) on a
// kernel map fd (or, when commands on fd are running in other threads,
// when the last of them returns). Closing a map fd with close(2) directly also works (see
// the package documentation) but frees the map only when the package next
// notices.
func Close(fd int) error {
	e := take(fd)
	err := unix.Close(fd)
	if e != nil {
		// After the close, so that our object's last-close check sees
		// that no descriptor holds the map any more.
		e.put()
	}
	if err != nil {
		return toErrno(err)
	}
	return nil
}

// Forget drops the package's handle of fd without closing fd, for a caller
// that closes fd itself (with close(2)) right after.
func Forget(fd int) {
	if e := take(fd); e != nil {
		e.put()
	}
}

// IsMapFD reports whether fd is a file descriptor of a user-space map: one
// BPF handed out, or a descriptor of a map object file opened otherwise
// (inherited, dup'ed, opened by path). Descriptors that are not regular
// files (kernel BPF maps among them) are answered with one fstat(2).
func IsMapFD(fd int) bool {
	e, err := resolve(fd)
	if err != nil {
		return false
	}
	e.put()
	return true
}

// FDInfo returns what /proc/self/fdinfo/<fd> shows for a kernel map fd,
// for the user-space map fd: the pos, flags, mnt_id and ino lines of the
// file, then map_type, key_size, value_size, max_entries, map_flags,
// map_extra, memlock, map_id and frozen. ok is false if fd is not a map fd.
func FDInfo(fd int) (text string, ok bool) {
	e, err := resolve(fd)
	if err != nil {
		return "", false
	}
	defer e.put()
	info, err := e.h.Info()
	if err != nil {
		return "", false
	}
	raw, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return "", false
	}
	var b strings.Builder
	for _, line := range strings.Split(string(raw), "\n") {
		k, v, found := strings.Cut(line, ":")
		if !found {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "pos", "mnt_id", "ino":
			fmt.Fprintf(&b, "%s:\t%s\n", k, v)
		case "flags":
			// A kernel map file has only the access mode, O_CLOEXEC and
			// what fcntl(F_SETFL) set; not the flags of a regular file.
			f, _ := strconv.ParseUint(v, 8, 32)
			f &= unix.O_ACCMODE | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_APPEND | unix.O_ASYNC | unix.O_DIRECT | unix.O_NOATIME
			fmt.Fprintf(&b, "flags:\t0%o\n", f)
		}
	}
	frozen := 0
	if info.Frozen {
		frozen = 1
	}
	fmt.Fprintf(&b, "map_type:\t%d\nkey_size:\t%d\nvalue_size:\t%d\nmax_entries:\t%d\n",
		info.Type, info.KeySize, info.ValueSize, info.MaxEntries)
	fmt.Fprintf(&b, "map_flags:\t0x%x\nmap_extra:\t0x%x\nmemlock:\t%d\nmap_id:\t%d\nfrozen:\t%d\n",
		info.MapFlags, info.MapExtra, info.Memlock, info.ID, frozen)
	return b.String(), true
}

// nsFor returns the namespace at root: the default one when root is its
// directory, else the namespace opened at root.
func nsFor(root string) (*namespace.NS, error) {
	if d, err := defaultNS(); err == nil {
		if d.Root() == root {
			return d, nil
		}
		a, err1 := os.Stat(d.Root())
		b, err2 := os.Stat(root)
		if err1 == nil && err2 == nil && os.SameFile(a, b) {
			return d, nil
		}
	}
	return namespace.Open(root)
}

// inNamespace finds the namespace of absolute path p and returns it with p
// spelled under its root; an error if p is not a pin path of a namespace.
func inNamespace(p string) (*namespace.NS, string, error) {
	root, ok := namespace.Find(p)
	if !ok {
		return nil, "", namespace.ErrOutside
	}
	ns, err := nsFor(root)
	if err != nil {
		return nil, "", err
	}
	rel, err := filepath.Rel(root, p)
	if err != nil {
		return nil, "", namespace.ErrOutside
	}
	q, err := ns.Resolve(filepath.Join(ns.Root(), rel))
	if err != nil {
		return nil, "", err
	}
	return ns, q, nil
}

// MmapErrno is the answer mmap(2) of a map fd gets: the command layer's
// rule for the fd's map and access mode (command.Handle.Memory: EACCES,
// ENOTSUPP, EINVAL, EPERM in the kernel's order), and ENODEV where the
// kernel would map the map, because a user-space map fd is its object
// file and mapping it would not show what a kernel map's mapping shows.
// A ring buffer, which the kernel maps, is ENODEV too. writable is whether
// the mapping is shared and writable. An fd that is not a user-space map
// is EBADF.
func MmapErrno(fd int, writable bool) error {
	e, err := resolve(fd)
	if err != nil {
		return unix.EBADF
	}
	defer e.put()
	if info, err := e.h.Info(); err == nil && info.Type == uapi.MapTypeRingbuf {
		// A ring buffer maps its pages in its own way (the ringbuf
		// package reads the region directly), not through Memory.
		return unix.ENODEV
	}
	_, release, err := e.h.Memory(writable)
	if err != nil {
		if errno, ok := command.ErrnoOf(err); ok {
			return errno
		}
		return unix.EINVAL
	}
	release()
	return unix.ENODEV
}

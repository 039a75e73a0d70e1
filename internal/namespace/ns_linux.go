//go:build linux

package namespace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/region"
)

// NS is an open pin namespace. Its methods are safe for concurrent use.
type NS struct {
	root, maps string
	ids        *region.Region // u32 counter at 0: the last id handed out
	procs      *procTable
	lastSweep  atomic.Int64 // unix nanoseconds
	sweepMu    sync.Mutex

	staleChecked atomic.Bool // StaleIDs ran
}

func open(root string) (*NS, error) {
	ns := &NS{root: root, maps: filepath.Join(root, internalDir, "maps")}
	if err := os.MkdirAll(ns.maps, 0o700); err != nil {
		return nil, fmt.Errorf("bpfmap namespace %s: %w", root, err)
	}
	var err error
	if ns.ids, err = mapSmallFile(filepath.Join(root, internalDir, "ids"), 4096); err != nil {
		return nil, fmt.Errorf("bpfmap namespace %s: id allocator: %w", root, err)
	}
	if ns.procs, err = openProcs(filepath.Join(root, internalDir, "procs")); err != nil {
		return nil, fmt.Errorf("bpfmap namespace %s: process table: %w", root, err)
	}
	ns.Sweep()
	return ns, nil
}

// close is for an NS that lost the race to be the process's instance.
func (ns *NS) close() { ns.procs.close() }

// mapSmallFile opens (creating) a namespace file of size bytes and maps it.
func mapSmallFile(path string, size int64) (*region.Region, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Size < size {
		// Racing creators truncate to the same size; contents stay zero.
		if err := unix.Ftruncate(fd, size); err != nil {
			return nil, err
		}
	}
	return region.MapFile(fd, uint64(size))
}

// Object is one process's hold on a map object: the open file with its
// shared flock. Close it once, with the object's region.
type Object struct {
	ns   *NS
	fd   int
	id   uint32
	size int64 // file size
	dev  uint64
	ino  uint64
}

// ID returns the object's map id.
func (o *Object) ID() uint32 { return o.id }

// Fd returns the object file's descriptor (owned by the Object).
func (o *Object) Fd() int { return o.fd }

// FileSize returns the object file's size in bytes.
func (o *Object) FileSize() int64 { return o.size }

// NS returns the namespace holding the object.
func (o *Object) NS() *NS { return o.ns }

func (ns *NS) objectPath(id uint32) string {
	return filepath.Join(ns.maps, strconv.FormatUint(uint64(id), 10))
}

// Create makes a new map object of size bytes (zeroed) with a fresh id.
// The caller writes the region header before anyone can open the object by
// path (it has no pin yet); until the header is written, sweeps leave the
// file alone for a while.
func (ns *NS) Create(size int64) (*Object, error) {
	if time.Now().UnixNano()-ns.lastSweep.Load() > int64(time.Second) {
		ns.Sweep()
	}
	counter := ns.ids.Uint32(0)
	for range 1 << 16 {
		id := atomic.AddUint32(counter, 1)
		if !ValidID(id) {
			atomic.CompareAndSwapUint32(counter, id, MinID-1)
			continue
		}
		fd, err := unix.Open(ns.objectPath(id), unix.O_RDWR|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o600)
		if errors.Is(err, unix.EEXIST) {
			continue // a live map still has this id
		}
		if err != nil {
			return nil, err
		}
		o := &Object{ns: ns, fd: fd, id: id}
		// References left by a dead map that had this id before (the
		// counter wrapped) are not the new map's.
		ns.DropRefs(id)
		if err := unix.Flock(fd, unix.LOCK_SH); err == nil {
			if err = unix.Ftruncate(fd, size); err == nil {
				if err = o.stat(); err == nil {
					return o, nil
				}
			}
		}
		_ = unix.Unlink(ns.objectPath(id))
		_ = unix.Close(fd)
		return nil, err
	}
	return nil, unix.ENOSPC
}

func (o *Object) stat() error {
	var st unix.Stat_t
	if err := unix.Fstat(o.fd, &st); err != nil {
		return err
	}
	o.size, o.dev, o.ino = st.Size, uint64(st.Dev), uint64(st.Ino)
	if st.Nlink == 0 {
		return unix.ENOENT // died while we were opening it
	}
	return nil
}

// ReadHeader reads the object's region header from the file.
func (o *Object) ReadHeader() (region.Header, error) {
	var h region.Header
	if o.size < region.HeaderSize {
		return h, errors.New("file too short for a bpfmap map header")
	}
	buf := make([]byte, region.HeaderSize)
	if _, err := unix.Pread(o.fd, buf, 0); err != nil {
		return h, err
	}
	return region.DecodeHeader(buf), nil
}

// OpenID opens the live map object with the given id: ENOENT if there is
// none.
func (ns *NS) OpenID(id uint32) (*Object, error) {
	if !ValidID(id) {
		return nil, unix.ENOENT
	}
	// An object that no process holds and no pin links is dead (its last
	// pin was unlinked by hand, say); remove it rather than bring it back.
	// So are the maps only a dead map-in-map's slots held.
	ns.sweepRefs()
	ns.sweepOne(id)
	o, err := ns.openFile(ns.objectPath(id))
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EISDIR) {
			return nil, unix.ENOENT
		}
		return nil, err
	}
	o.id = id
	return o, nil
}

// OpenPin opens the map object pinned at path (already resolved): ENOENT if
// nothing is there, EACCES for a directory, EINVAL for a file that is not a
// map object of this namespace.
func (ns *NS) OpenPin(path string) (*Object, error) {
	fi, err := os.Lstat(path)
	switch {
	case err != nil:
		if errors.Is(err, os.ErrNotExist) {
			return nil, unix.ENOENT
		}
		return nil, err
	case fi.IsDir():
		return nil, unix.EACCES
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("%s is not a bpfmap map: %w", path, unix.EINVAL)
	}
	o, err := ns.openFile(path)
	if err != nil {
		return nil, err
	}
	h, err := o.ReadHeader()
	if err != nil || string(h.Magic[:]) != region.Magic {
		o.drop()
		return nil, fmt.Errorf("%s is not a bpfmap map: %w", path, unix.EINVAL)
	}
	// The pin must be a link to the object the header names; a copy of a
	// pin file is not the map.
	var st unix.Stat_t
	if h.ID == 0 || unix.Stat(ns.objectPath(h.ID), &st) != nil || uint64(st.Dev) != o.dev || uint64(st.Ino) != o.ino {
		o.drop()
		return nil, fmt.Errorf("%s is not a map object of namespace %s (a copy?): %w", path, ns.root, unix.EINVAL)
	}
	o.id = h.ID
	return o, nil
}

func (ns *NS) openFile(path string) (*Object, error) {
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			return nil, unix.EACCES
		}
		return nil, err
	}
	o := &Object{ns: ns, fd: fd}
	if err := unix.Flock(fd, unix.LOCK_SH); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	if err := o.stat(); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	return o, nil
}

// drop closes the object's descriptor without the lifetime protocol (for
// an object that was never handed out).
func (o *Object) drop() { _ = unix.Close(o.fd) }

// Close ends this process's hold on the object. If no other process holds
// it and no pin links it, the object dies: its pages are punched out of the
// file (r, this process's mapping, reads zeroes afterwards) and the file is
// unlinked, so its id is gone when Close returns. dead reports that.
func (o *Object) Close(r *region.Region) (dead bool, err error) {
	defer unix.Close(o.fd)
	// Upgrading to an exclusive lock succeeds only when no other process
	// holds the object open. (A failed upgrade drops our shared lock; we
	// are closing anyway.)
	if unix.Flock(o.fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return false, r.Release()
	}
	var st unix.Stat_t
	if err := unix.Fstat(o.fd, &st); err != nil || st.Nlink > 1 {
		return false, r.Release() // pinned (or linked by an outer map)
	}
	err = r.Free()
	if uerr := unix.Unlink(o.ns.objectPath(o.id)); uerr != nil && !errors.Is(uerr, unix.ENOENT) && err == nil {
		err = uerr
	}
	// A dead map-in-map drops the references its slots held.
	o.ns.DropRefs(o.id)
	return true, err
}

// Pin links the object at path (already resolved): EEXIST if something is
// there, ENOENT if the directory does not exist.
func (o *Object) Pin(path string) error {
	err := unix.Link(o.ns.objectPath(o.id), path)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EEXIST), errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return err
	}
	return fmt.Errorf("pin %s: %w", path, err)
}

// Unpin removes the pin at path (already resolved), which must be a pin of
// this object. The object itself dies when its last holder closes it.
func (o *Object) Unpin(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return err
	}
	if uint64(st.Dev) != o.dev || uint64(st.Ino) != o.ino {
		return fmt.Errorf("%s is not a pin of map %d: %w", path, o.id, unix.EINVAL)
	}
	return unix.Unlink(path)
}

// Pins counts the object's links other than the object file: its pins
// and the map-in-map slots that hold it.
func (o *Object) Pins() int {
	var st unix.Stat_t
	if unix.Fstat(o.fd, &st) != nil || st.Nlink == 0 {
		return 0
	}
	return int(st.Nlink) - 1
}

// IDs returns the ids of the namespace's live map objects in increasing
// order, after a sweep.
func (ns *NS) IDs() []uint32 {
	ns.Sweep()
	ents, _ := os.ReadDir(ns.maps)
	ids := make([]uint32, 0, len(ents))
	for _, e := range ents {
		if id, err := strconv.ParseUint(e.Name(), 10, 32); err == nil && ValidID(uint32(id)) {
			ids = append(ids, uint32(id))
		}
	}
	slices.Sort(ids)
	return ids
}

// NextID returns the smallest live id greater than start, or ENOENT.
func (ns *NS) NextID(start uint32) (uint32, error) {
	for _, id := range ns.IDs() {
		if id > start {
			return id, nil
		}
	}
	return 0, unix.ENOENT
}

// unborn is how long a created object file may stay without a valid header
// before a sweep takes it for the leftover of a creator that died.
const unborn = 10 * time.Second

// Sweep removes the objects that died with their last holder: files that
// no process holds open and no pin links.
func (ns *NS) Sweep() {
	if !ns.sweepMu.TryLock() {
		return
	}
	defer ns.sweepMu.Unlock()
	ns.lastSweep.Store(time.Now().UnixNano())
	ents, _ := os.ReadDir(ns.maps)
	for _, e := range ents {
		id, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || id == 0 {
			continue
		}
		ns.sweepOne(uint32(id))
	}
	ns.sweepRefs()
}

func (ns *NS) sweepOne(id uint32) {
	path := ns.objectPath(id)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return
	}
	defer unix.Close(fd)
	if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return // held open by a process
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Nlink != 1 {
		return
	}
	buf := make([]byte, 8)
	n, _ := unix.Pread(fd, buf, 0)
	born := n == 8 && string(buf) == region.Magic
	if !born && time.Since(time.Unix(st.Mtim.Unix())) < unborn {
		return
	}
	if born && st.Size > 0 {
		// Return the pages before the name: a concurrent opener that got
		// the file by id finds it unlinked (link count 0) and gives up.
		_ = unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, 0, st.Size)
	}
	_ = unix.Unlink(path)
	ns.DropRefs(id)
}

// Drop closes an object that was opened but never used: no other process
// can have lost a reference through it, so the lifetime protocol is not run
// (a sweep removes the object if it was the last hold).
func (o *Object) Drop() { o.drop() }

// Discard removes an object whose creation failed before it was usable.
func (o *Object) Discard() error {
	err := unix.Unlink(o.ns.objectPath(o.id))
	o.drop()
	return err
}

// ReserveID takes an id for a map that is not an object of the namespace
// (a private map), so that ids stay unique among the maps a process sees.
func (ns *NS) ReserveID() uint32 {
	for {
		id := atomic.AddUint32(ns.ids.Uint32(0), 1)
		if ValidID(id) {
			return id
		}
		atomic.CompareAndSwapUint32(ns.ids.Uint32(0), id, MinID-1)
	}
}

// Map maps the object file shared: all of it, or with ringData non-zero as
// a ring (region.MapRingFile: the last ringData bytes mapped twice).
//
// It maps a descriptor with an open file description of its own: a mapping
// keeps its file description alive, and a flock(2) lives as long as the
// description that took it, so mapping the locked descriptor would keep
// this process's hold on the object until the mapping goes away.
func (o *Object) Map(ringData uint64) (*region.Region, error) {
	fd, err := unix.Open("/proc/self/fd/"+strconv.Itoa(o.fd), unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	if ringData != 0 {
		return region.MapRingFile(fd, uint64(o.size)-ringData, ringData)
	}
	return region.MapFile(fd, uint64(o.size))
}

// StaleIDs returns, once per namespace and process (later calls return
// nil), the ids of the map objects whose header says this process's slot has
// them open: the previous process in the slot died with them open, and the
// caller must repair them, since other processes take the slot's holder
// for alive.
func (ns *NS) StaleIDs() []uint32 {
	if !ns.staleChecked.CompareAndSwap(false, true) {
		return nil
	}
	slot := ns.procs.slot
	var ids []uint32
	buf := make([]byte, region.HeaderSize)
	for _, id := range ns.IDs() {
		fd, err := unix.Open(ns.objectPath(id), unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			continue
		}
		n, _ := unix.Pread(fd, buf, 0)
		_ = unix.Close(fd)
		if n != len(buf) {
			continue
		}
		h := region.DecodeHeader(buf)
		if string(h.Magic[:]) == region.Magic && h.Attached[slot/64]&(1<<(slot%64)) != 0 {
			ids = append(ids, id)
		}
	}
	return ids
}

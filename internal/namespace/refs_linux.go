//go:build linux

package namespace

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/region"
)

// References of map-in-map slots.
//
// A slot of a map-in-map (ARRAY_OF_MAPS, HASH_OF_MAPS) holds its inner map
// alive, as the kernel's slot holds a reference. Here a slot's reference is
// a hard link to the inner map's object file,
//
//	<root>/.bpfmap/refs/<outer id>/<slot name>
//
// so it raises the inner object's link count exactly as a pin does: the
// last-close protocol (Object.Close) and sweeps keep an object with more
// than one link. The slot name is derived from the slot's key (SlotName),
// so changing a slot's inner map is one rename(2) of a new link over the
// old one. The writer of the outer map creates the new link before it
// stores the new id in the slot and replaces or removes the old link
// after, so a process killed in between leaves an extra link (the inner
// map lives a little too long) and never a slot whose id names a dead map;
// the outer map's next writer reconciles the links with the slots
// (internal/command). When the outer map dies, its reference directory
// goes (DropRefs) and the inner maps it held are swept.

func (ns *NS) refsDir(outer uint32) string {
	return filepath.Join(ns.root, internalDir, "refs", strconv.FormatUint(uint64(outer), 10))
}

// PrepareRef creates a new reference link from outer to inner's object
// under a temporary name, which CommitRef then moves over the slot's link
// (or AbortRef removes). inner must be held open by the caller.
func (ns *NS) PrepareRef(outer uint32, inner *Object) (string, error) {
	dir := ns.refsDir(outer)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := filepath.Join(dir, tmpPrefix+hex.EncodeToString(rnd[:]))
	if err := unix.Link(ns.objectPath(inner.id), tmp); err != nil {
		return "", err
	}
	return tmp, nil
}

// CommitRef makes tmp (from PrepareRef) the reference link of slot, in
// place of the slot's previous link, if any.
func (ns *NS) CommitRef(outer uint32, slot, tmp string) error {
	err := unix.Rename(tmp, filepath.Join(ns.refsDir(outer), slot))
	// Renaming a link over another link of the same file does nothing:
	// the slot already referenced this map, and tmp is one link too many.
	_ = unix.Unlink(tmp)
	return err
}

// AbortRef removes a reference link made by PrepareRef and not committed.
func (ns *NS) AbortRef(tmp string) { _ = unix.Unlink(tmp) }

// DropRef removes the reference link of slot, if there is one.
func (ns *NS) DropRef(outer uint32, slot string) {
	_ = unix.Unlink(filepath.Join(ns.refsDir(outer), slot))
}

// RefNames lists the reference links of outer (slot names and leftover
// temporary links).
func (ns *NS) RefNames(outer uint32) []string {
	ents, _ := os.ReadDir(ns.refsDir(outer))
	names := make([]string, 0, len(ents))
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// RefIsTo reports whether the reference link of slot links inner's object.
func (ns *NS) RefIsTo(outer uint32, slot string, inner uint32) bool {
	var a, b unix.Stat_t
	if unix.Stat(filepath.Join(ns.refsDir(outer), slot), &a) != nil ||
		unix.Stat(ns.objectPath(inner), &b) != nil {
		return false
	}
	return a.Dev == b.Dev && a.Ino == b.Ino
}

// RefInner returns the id of the map a reference link (a name from
// RefNames) links, read from its header; 0 if it is not a map.
func (ns *NS) RefInner(outer uint32, name string) uint32 {
	return headerID(filepath.Join(ns.refsDir(outer), name))
}

func headerID(path string) uint32 {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		return 0
	}
	defer unix.Close(fd)
	buf := make([]byte, region.HeaderSize)
	if n, _ := unix.Pread(fd, buf, 0); n != len(buf) {
		return 0
	}
	h := region.DecodeHeader(buf)
	if string(h.Magic[:]) != region.Magic {
		return 0
	}
	return h.ID
}

// SweepID removes map id if it is dead: no process holds it and no pin or
// reference links it. Its id is gone when SweepID returns.
func (ns *NS) SweepID(id uint32) { ns.sweepOne(id) }

// DropRefs removes every reference link of outer, a dead map, and the
// maps that only those links kept alive.
func (ns *NS) DropRefs(outer uint32) {
	dir := ns.refsDir(outer)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var inner []uint32
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if id := headerID(p); id != 0 {
			inner = append(inner, id)
		}
		_ = unix.Unlink(p)
	}
	_ = unix.Rmdir(dir)
	for _, id := range inner {
		ns.sweepOne(id)
	}
}

// sweepRefs drops the reference directories of outer maps that are dead:
// their object file is gone (a process died between the object's unlink
// and DropRefs), or no process holds them and no pin links them (their
// last pin was unlinked by hand), which sweeps them now.
func (ns *NS) sweepRefs() {
	ents, _ := os.ReadDir(filepath.Join(ns.root, internalDir, "refs"))
	for _, e := range ents {
		id, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil || id == 0 {
			continue
		}
		if _, err := os.Lstat(ns.objectPath(uint32(id))); errors.Is(err, os.ErrNotExist) {
			ns.DropRefs(uint32(id))
		} else {
			ns.sweepOne(uint32(id))
		}
	}
}

package command

import (
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Lookup is BPF_MAP_LOOKUP_ELEM.
func (h *Handle) Lookup(key, value []byte, flags uint64) error {
	// Fast path: every generic check of lookup is known to pass.
	if h.fast.Load()&fastRead != 0 && flags == 0 && uint32(len(key)) == h.ks && (h.ks != 0 || key == nil) &&
		uint32(len(value)) >= h.vs {
		return h.ops.Lookup(key, value[:h.vs])
	}
	return h.lookup(key, value, flags)
}

func (h *Handle) lookup(key, value []byte, flags uint64) error {
	if err := CheckLookupFlags(flags); err != nil {
		return err
	}
	m, err := h.live()
	if err != nil {
		return err
	}
	if !h.canRead() {
		return uapi.EPERM
	}
	if flags&uapi.FLock != 0 {
		return uapi.EINVAL // no value holds a bpf_spin_lock
	}
	if key, err = m.copyKey(key); err != nil {
		return err
	}
	if m.traits.LookupValueIn {
		// The value is the probe: copied in first, never copied out.
		if uint32(len(value)) < m.sysVal {
			return uapi.EFAULT
		}
		return m.ops.Lookup(key, value[:m.sysVal])
	}
	if uint32(len(value)) < m.sysVal {
		// The kernel looks up into its own buffer and faults copying out.
		if err := m.ops.Lookup(key, make([]byte, m.sysVal)); err != nil {
			return err
		}
		return uapi.EFAULT
	}
	return m.ops.Lookup(key, value[:m.sysVal])
}

// LookupTouch is the lookup a BPF program makes (bpf_map_lookup_elem from
// a program), with the syscall's argument rules: for LRU hash maps it also
// marks the element referenced, which a syscall lookup never does; for
// every other type it is Lookup.
func (h *Handle) LookupTouch(key, value []byte) error {
	m, err := h.live()
	if err != nil {
		return err
	}
	pl, ok := m.ops.(mapops.ProgLookuper)
	if !ok || !h.canRead() || uint32(len(value)) < m.sysVal || uint32(len(key)) < m.keySize || m.keySize == 0 {
		return h.lookup(key, value, 0)
	}
	return pl.LookupTouch(key[:m.keySize], value[:m.sysVal])
}

// Update is BPF_MAP_UPDATE_ELEM.
func (h *Handle) Update(key, value []byte, flags uint64) error {
	// Fast path: every generic check of update is known to pass.
	if h.fast.Load()&fastWrite != 0 && flags <= uapi.Exist && uint32(len(key)) == h.ks &&
		uint32(len(value)) >= h.vs && atomic.LoadUint32(h.frozen) == 0 {
		return h.ops.Update(key, value[:h.vs], flags)
	}
	return h.update(key, value, flags)
}

// beginUpdate is the generic start of BPF_MAP_UPDATE_ELEM, in the kernel's
// order: a live handle, write permission (EPERM), no BPF_F_LOCK (no map
// here has a spin lock: EINVAL), and the key copied in.
func (h *Handle) beginUpdate(key []byte, flags uint64) (*Map, []byte, error) {
	m, err := h.live()
	if err != nil {
		return nil, nil, err
	}
	if !h.canWrite() {
		return nil, nil, uapi.EPERM
	}
	if flags&uapi.FLock != 0 {
		return nil, nil, uapi.EINVAL
	}
	if key, err = m.copyKey(key); err != nil {
		return nil, nil, err
	}
	return m, key, nil
}

func (h *Handle) update(key, value []byte, flags uint64) error {
	m, key, err := h.beginUpdate(key, flags)
	if err != nil {
		return err
	}
	if uint32(len(value)) < m.sysVal {
		return uapi.EFAULT
	}
	if m.inner != nil {
		return m.updateByID(key, value, flags)
	}
	if err := m.checkUpdateFlags(flags); err != nil {
		return err
	}
	return m.ops.Update(key, value[:m.sysVal], flags)
}

// Delete is BPF_MAP_DELETE_ELEM.
func (h *Handle) Delete(key []byte) error {
	m, err := h.live()
	if err != nil {
		return err
	}
	if !h.canWrite() {
		return uapi.EPERM
	}
	if key, err = m.copyKey(key); err != nil {
		return err
	}
	if m.inner != nil {
		return m.deleteSlot(key)
	}
	return m.ops.Delete(key)
}

// GetNextKey is BPF_MAP_GET_NEXT_KEY; a nil key asks for the first key.
// key and next may share memory.
func (h *Handle) GetNextKey(key, next []byte) error {
	m, err := h.live()
	if err != nil {
		return err
	}
	if !h.canRead() {
		return uapi.EPERM
	}
	if key != nil {
		if key, err = m.copyKey(key); err != nil {
			return err
		}
	}
	if uint32(len(next)) < m.keySize || (m.keySize > 0 && next == nil) {
		if err := m.ops.GetNextKey(key, make([]byte, m.keySize)); err != nil {
			return err
		}
		return uapi.EFAULT
	}
	next = next[:m.keySize]
	if region.Overlap(key, next) {
		key = append([]byte(nil), key...)
	}
	return m.ops.GetNextKey(key, next)
}

// LookupAndDelete is BPF_MAP_LOOKUP_AND_DELETE_ELEM.
func (h *Handle) LookupAndDelete(key, value []byte, flags uint64) error {
	if err := CheckLookupFlags(flags); err != nil {
		return err
	}
	m, err := h.live()
	if err != nil {
		return err
	}
	if !h.canRead() || !h.canWrite() {
		return uapi.EPERM
	}
	if flags != 0 && (m.typ == uapi.MapTypeQueue || m.typ == uapi.MapTypeStack) {
		return uapi.EINVAL
	}
	if flags&uapi.FLock != 0 {
		return uapi.EINVAL
	}
	if key, err = m.copyKey(key); err != nil {
		return err
	}
	if uint32(len(value)) < m.sysVal {
		// The element is removed before the copy out faults, as in the kernel.
		if err := m.ops.LookupAndDelete(key, make([]byte, m.sysVal)); err != nil {
			return err
		}
		return uapi.EFAULT
	}
	return m.ops.LookupAndDelete(key, value[:m.sysVal])
}

// Freeze is BPF_MAP_FREEZE: afterwards no handle may write. Freezing twice is
// EPERM (a frozen map's handles have lost write permission).
func (h *Handle) Freeze() error {
	m, err := h.live()
	if err != nil {
		return err
	}
	if !h.canWrite() {
		return uapi.EPERM
	}
	if !casFrozen(m.frozen) {
		return uapi.EBUSY
	}
	// Memory counts a writable view before it checks frozen, and Freeze sets
	// frozen before it checks the views, so one of them sees the other.
	if atomic.LoadUint32(m.mmaps) != 0 {
		atomic.StoreUint32(m.frozen, 0)
		return uapi.EBUSY
	}
	return nil
}

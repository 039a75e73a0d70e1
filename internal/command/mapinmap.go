package command

import (
	"encoding/binary"
	"sync"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// Map-in-map (ARRAY_OF_MAPS, HASH_OF_MAPS): the command layer's part.
//
// Template. BPF_MAP_CREATE takes the inner-map template as
// CreateAttr.InnerMap, a handle (there are no file descriptors: a nil
// InnerMap with InnerMapFD 0 is the kernel's fd 0, not a map, EINVAL; with
// another InnerMapFD, a descriptor that is not open, EBADF; a closed handle
// is EBADF). A template that is itself a map-in-map is EINVAL. Only its
// metadata is kept — type, key_size, value_size, stored map_flags,
// max_entries — in the outer map's region header (region.InnerMeta), so
// every process that opens the outer map checks inner maps the same way.
//
// Values. The kernel's UPDATE takes an inner map's fd and LOOKUP returns
// its id. Handle.UpdateMap takes the inner map as a handle (the Go API's
// Update with a *bpfmap.Map value). Without descriptors, the raw
// Handle.Update and the UPDATE batch take the inner map's id instead of an
// fd (documented deviation): an id of no live map of the outer map's
// namespace is EBADF, like an fd that is not open. LOOKUP and the lookup
// batches return ids, as the kernel's.
//
// Inner maps. The inner map must be compatible with the template
// (bpf_map_meta_equal: same type, key_size, value_size and stored
// map_flags; ARRAY inners also the same max_entries unless the template
// has BPF_F_INNER_MAP — PERCPU_ARRAY inners need not, on the live kernel),
// else EINVAL. An outer map
// shared through a namespace takes only inner maps of the same namespace
// (a private inner map, or one of another namespace, is EINVAL: no other
// process could reach it). A private outer map takes any inner map and
// holds it through a handle of its own.
//
// References. A slot holds its inner map alive (internal/namespace
// refs_linux.go: a hard link per slot to the inner map's object file). The
// writers of one outer map are serialised (a mutex in the process and an
// open-file-description lock across processes) and change a slot as:
// InnerOp := our token; link the new inner map under a temporary name;
// change the slot; rename the link over the slot's link (or unlink it for
// a delete); InnerOp := 0; sweep the old inner map, which dies there if
// nothing else holds it. A writer killed in the middle leaves InnerOp set,
// and the next writer — or the next process to open the outer map —
// reconciles: every occupied slot gets a link to its inner map (a slot
// whose inner map is already dead, which the order above never produces,
// is emptied), and every other link goes. The outer map's death drops all
// its links and sweeps the inner maps (namespace.DropRefs).

// crashPoint, when set (by tests), is called at the points of a slot change
// where a writer's death leaves the references to be reconciled: after the
// new link is made ("prepared"), after the slot changed and before its link
// did ("updated", "deleted").
var crashPoint func(stage string)

// isMapInMap reports whether t is a map-in-map type.
func isMapInMap(t uapi.MapType) bool {
	return t == uapi.MapTypeArrayOfMaps || t == uapi.MapTypeHashOfMaps
}

// mimState is a map-in-map's writer state in this process.
type mimState struct {
	mu sync.Mutex // writers of this process; the object's lock for others
	// local holds, for a private outer map, a handle per occupied slot
	// (by namespace.SlotName).
	local map[string]*Handle
}

// template resolves BPF_MAP_CREATE's inner_map_fd (bpf_map_meta_alloc).
func template(a *CreateAttr) (region.InnerMeta, error) {
	h := a.InnerMap
	if h == nil {
		if a.InnerMapFD == 0 {
			return region.InnerMeta{}, uapi.EINVAL
		}
		return region.InnerMeta{}, uapi.EBADF
	}
	m, err := h.live()
	if err != nil {
		return region.InnerMeta{}, err
	}
	if m.inner != nil {
		return region.InnerMeta{}, uapi.EINVAL // no more than one level
	}
	return m.meta(), nil
}

func (m *Map) meta() region.InnerMeta {
	return region.InnerMeta{
		MapType: uint32(m.typ), KeySize: m.keySize, ValueSize: m.valSize,
		MapFlags: m.flags, MaxEntries: m.maxEnt,
	}
}

// fits is the template's map_meta_equal against a candidate inner map.
func fits(t *region.InnerMeta, c *Map) bool {
	if c.inner != nil {
		return false
	}
	cm := c.meta()
	if t.MapType != cm.MapType || t.KeySize != cm.KeySize || t.ValueSize != cm.ValueSize || t.MapFlags != cm.MapFlags {
		return false
	}
	// The array types' ops compare max_entries too (array_map_meta_equal),
	// unless the template has BPF_F_INNER_MAP (which only ARRAY takes).
	// Linux 6.18.44 refuses a PERCPU_ARRAY of another size (EINVAL, live);
	// earlier 6.18 kernels let its max_entries differ.
	arr := uapi.MapType(t.MapType) == uapi.MapTypeArray || uapi.MapType(t.MapType) == uapi.MapTypePercpuArray
	return !arr || t.MapFlags&uapi.FInnerMap != 0 || t.MaxEntries == cm.MaxEntries
}

// InnerTemplate returns the inner-map template of a map-in-map; ok is false
// for other maps.
func (h *Handle) InnerTemplate() (t region.InnerMeta, ok bool) {
	if h.m.inner == nil {
		return t, false
	}
	return *h.m.inner, true
}

// UpdateMap is BPF_MAP_UPDATE_ELEM on a map-in-map with the inner map given
// as a handle: inner stands for the fd in the value. A nil inner is the
// kernel's fd 0 (EINVAL); a closed one EBADF.
func (h *Handle) UpdateMap(key []byte, inner *Handle, flags uint64) error {
	m, key, err := h.beginUpdate(key, flags)
	if err != nil {
		return err
	}
	if m.inner == nil {
		// Not a map-in-map: the value is the fd number, which has no
		// meaning here.
		return uapi.EINVAL
	}
	return m.updateSlot(key, flags, func() (*Handle, error) {
		if inner == nil {
			return nil, uapi.EINVAL
		}
		return inner.Dup()
	})
}

// updateByID is the raw UPDATE of a map-in-map: value holds an inner map's
// id (see the deviation above).
func (m *Map) updateByID(key, value []byte, flags uint64) error {
	return m.updateSlot(key, flags, func() (*Handle, error) {
		id := binary.LittleEndian.Uint32(value)
		ns := m.namespace()
		if ns == nil || id == 0 {
			return nil, uapi.EBADF
		}
		h, err := OpenID(ns, id, 0)
		if err != nil {
			return nil, uapi.EBADF
		}
		return h, nil
	})
}

// namespace is where a map-in-map's raw ids resolve: its own namespace, or
// for a private map the default one.
func (m *Map) namespace() *namespace.NS {
	if m.obj != nil {
		return m.obj.NS()
	}
	ns, _ := namespace.Default()
	return ns
}

// updateSlot is bpf_fd_array_map_update_elem / bpf_fd_htab_map_update_elem
// in the kernel's order, then the reference protocol. resolve returns a
// handle of the inner map, which updateSlot closes.
func (m *Map) updateSlot(key []byte, flags uint64, resolve func() (*Handle, error)) error {
	arr := m.typ == uapi.MapTypeArrayOfMaps
	if arr {
		if err := m.checkUpdateFlags(flags); err != nil {
			return err
		}
		if binary.LittleEndian.Uint32(key) >= m.maxEnt {
			return uapi.E2BIG
		}
	}
	ih, err := resolve()
	if err != nil {
		return err
	}
	defer ih.Close()
	im := ih.m
	if !fits(m.inner, im) {
		return uapi.EINVAL
	}
	if m.obj != nil && (im.obj == nil || im.obj.NS() != m.obj.NS()) {
		return uapi.EINVAL // the inner map must be reachable by every process
	}
	if !arr {
		if err := m.checkUpdateFlags(flags); err != nil {
			return err
		}
	}
	var val [4]byte
	binary.LittleEndian.PutUint32(val[:], im.id)
	slot := namespace.SlotName(key)

	unlock := m.lockWriters()
	defer unlock()
	old := m.slotID(key)
	if m.obj == nil {
		if err := m.ops.Update(key, val[:], flags); err != nil {
			return err
		}
		d, _ := ih.Dup()
		prev := m.mim.local[slot]
		m.mim.local[slot] = d
		if prev != nil {
			_ = prev.Close()
		}
		return nil
	}
	ns := m.obj.NS()
	m.setIntent()
	tmp, err := ns.PrepareRef(m.id, im.obj)
	if err != nil {
		m.clearIntent()
		return uapi.ENOMEM
	}
	if crashPoint != nil {
		crashPoint("prepared")
	}
	if err := m.ops.Update(key, val[:], flags); err != nil {
		ns.AbortRef(tmp)
		m.clearIntent()
		return err
	}
	if crashPoint != nil {
		crashPoint("updated")
	}
	cerr := ns.CommitRef(m.id, slot, tmp)
	m.clearIntent()
	if cerr != nil {
		m.reconcile() // keeps the slot's inner map linked
	}
	if old != 0 && old != im.id {
		ns.SweepID(old)
	}
	return nil
}

// deleteSlot is DELETE on a map-in-map: the slot empties and drops its
// reference.
func (m *Map) deleteSlot(key []byte) error {
	unlock := m.lockWriters()
	defer unlock()
	old := m.slotID(key)
	if m.obj == nil {
		if err := m.ops.Delete(key); err != nil {
			return err
		}
		slot := namespace.SlotName(key)
		if h := m.mim.local[slot]; h != nil {
			delete(m.mim.local, slot)
			_ = h.Close()
		}
		return nil
	}
	m.setIntent()
	err := m.ops.Delete(key)
	if err == nil && crashPoint != nil {
		crashPoint("deleted")
	}
	if err == nil {
		m.obj.NS().DropRef(m.id, namespace.SlotName(key))
	}
	m.clearIntent()
	if err == nil && old != 0 {
		m.obj.NS().SweepID(old)
	}
	return err
}

// slotID returns the id in slot key, 0 if empty.
func (m *Map) slotID(key []byte) uint32 {
	var v [4]byte
	if m.ops.Lookup(key, v[:]) != nil {
		return 0
	}
	return binary.LittleEndian.Uint32(v[:])
}

// lockWriters serialises the writers of a map-in-map, in this process and
// across processes, and reconciles the references first if the previous
// writer died in the middle of a change.
func (m *Map) lockWriters() func() {
	m.mim.mu.Lock()
	if m.obj == nil {
		return m.mim.mu.Unlock
	}
	unlock := m.obj.LockWriters()
	if atomic.LoadUint32(&m.r.Header().InnerOp) != 0 {
		m.reconcile()
		atomic.StoreUint32(&m.r.Header().InnerOp, 0)
	}
	return func() {
		unlock()
		m.mim.mu.Unlock()
	}
}

func (m *Map) setIntent() {
	atomic.StoreUint32(&m.r.Header().InnerOp, m.obj.NS().Token())
}

func (m *Map) clearIntent() { atomic.StoreUint32(&m.r.Header().InnerOp, 0) }

// reconcile makes the outer map's reference links match its slots (writer
// lock held): each occupied slot links its inner map, nothing else is
// linked, and the maps that lose their last link are swept. A slot whose
// inner map is dead is emptied.
func (m *Map) reconcile() {
	ns := m.obj.NS()
	want := map[string]uint32{}
	var sweep []uint32
	for _, k := range m.slotKeys() {
		if id := m.slotID(k); id != 0 {
			slot := namespace.SlotName(k)
			want[slot] = id
			if !ns.RefIsTo(m.id, slot, id) {
				if old := ns.RefInner(m.id, slot); old != 0 {
					sweep = append(sweep, old) // the link goes over to id
				}
				m.relink(k, slot, id)
			}
		}
	}
	for _, name := range ns.RefNames(m.id) {
		if _, ok := want[name]; ok && !namespace.IsTemp(name) {
			continue
		}
		if id := ns.RefInner(m.id, name); id != 0 {
			sweep = append(sweep, id)
		}
		ns.DropRef(m.id, name)
	}
	for _, id := range sweep {
		ns.SweepID(id)
	}
}

// slotKeys returns the keys of the occupied slots (writer lock held, so
// the walk sees no change).
func (m *Map) slotKeys() [][]byte {
	var keys [][]byte
	var key []byte
	next := make([]byte, m.keySize)
	for range uint64(m.maxEnt) + 1 {
		if m.ops.GetNextKey(key, next) != nil {
			break
		}
		key = append([]byte(nil), next...)
		if m.slotID(key) != 0 {
			keys = append(keys, key)
		}
	}
	return keys
}

// relink links slot's inner map id, or empties the slot if that map is
// dead.
func (m *Map) relink(key []byte, slot string, id uint32) {
	ns := m.obj.NS()
	obj, err := ns.OpenID(id)
	if err != nil {
		_ = m.ops.Delete(key)
		ns.DropRef(m.id, slot)
		return
	}
	defer obj.Drop()
	if tmp, err := ns.PrepareRef(m.id, obj); err == nil {
		_ = ns.CommitRef(m.id, slot, tmp)
	}
}

// lookupAndDeleteBatchInner is the hash LOOKUP_AND_DELETE batch of a
// HASH_OF_MAPS: the deleted elements' references go.
func (m *Map) lookupAndDeleteBatchInner(b *Batch) error {
	unlock := m.lockWriters()
	defer unlock()
	if m.obj != nil {
		m.setIntent()
	}
	err := m.bucketBatch(b, true)
	if err == uapi.EINVAL {
		return err // refused before anything was deleted (count untouched)
	}
	if err == uapi.EFAULT {
		// Elements may have been deleted without being copied out.
		if m.obj != nil {
			m.reconcile()
			m.clearIntent()
		} else {
			m.reconcileLocal()
		}
		return err
	}
	ks := uint64(m.keySize)
	var sweep []uint32
	for i := uint64(0); i < uint64(b.Count); i++ {
		k := b.Keys[i*ks : (i+1)*ks]
		slot := namespace.SlotName(k)
		if m.obj == nil {
			if h := m.mim.local[slot]; h != nil {
				delete(m.mim.local, slot)
				_ = h.Close()
			}
			continue
		}
		m.obj.NS().DropRef(m.id, slot)
		sweep = append(sweep, binary.LittleEndian.Uint32(b.Values[i*4:]))
	}
	if m.obj != nil {
		m.clearIntent()
		for _, id := range sweep {
			m.obj.NS().SweepID(id)
		}
	}
	return err
}

// reconcileLocal drops a private map-in-map's handles of slots that are
// empty.
func (m *Map) reconcileLocal() {
	occupied := map[string]bool{}
	for _, k := range m.slotKeys() {
		occupied[namespace.SlotName(k)] = true
	}
	for slot, h := range m.mim.local {
		if !occupied[slot] {
			delete(m.mim.local, slot)
			_ = h.Close()
		}
	}
}

// closeLocal drops a private map-in-map's references when it dies.
func (m *Map) closeLocal() {
	if m.mim == nil {
		return
	}
	m.mim.mu.Lock()
	local := m.mim.local
	m.mim.local = nil
	m.mim.mu.Unlock()
	for _, h := range local {
		_ = h.Close()
	}
}

// LookupMap is LOOKUP on a map-in-map followed by opening the inner map
// whose id the slot holds (BPF_MAP_GET_FD_BY_ID), as cilium/ebpf's Lookup
// into a **Map does. For a private map-in-map the slot's own reference is
// duplicated, so private inner maps are reachable too.
func (h *Handle) LookupMap(key []byte, flags uint64) (*Handle, error) {
	m, err := h.live()
	if err != nil {
		return nil, err
	}
	if m.inner == nil {
		return nil, uapi.EINVAL
	}
	var v [4]byte
	if err := h.Lookup(key, v[:], flags); err != nil {
		return nil, err
	}
	id := binary.LittleEndian.Uint32(v[:])
	if m.obj != nil {
		return OpenID(m.obj.NS(), id, 0)
	}
	m.mim.mu.Lock()
	defer m.mim.mu.Unlock()
	if ih := m.mim.local[namespace.SlotName(key[:m.keySize])]; ih != nil && ih.m.id == id {
		return ih.Dup()
	}
	return nil, uapi.ENOENT // changed since the lookup
}

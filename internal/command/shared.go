package command

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/region"
	"github.com/bpfmap/bpfmap/internal/robust"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// newRegion allocates a map's region: a new object in ns, or private
// memory when ns is nil.
func newRegion(ns *namespace.NS, lay mapops.Layout) (*region.Region, *namespace.Object, error) {
	body := region.HeaderSize + lay.BodySize
	if ns == nil {
		if lay.RingData != 0 {
			r, _, err := region.NewRing(body-lay.RingData, 0, lay.RingData)
			return r, nil, err
		}
		r, err := region.New(body)
		return r, nil, err
	}
	size := (body + 4095) &^ 4095
	obj, err := ns.Create(int64(size))
	if err != nil {
		return nil, nil, err
	}
	r, err := mapObject(obj, lay)
	if err != nil {
		_ = obj.Discard()
		return nil, nil, err
	}
	return r, obj, nil
}

func mapObject(obj *namespace.Object, lay mapops.Layout) (*region.Region, error) {
	return obj.Map(lay.RingData)
}

// open runs the family's Open over m's region with the map's lock owner and
// registers the map's repair; for a shared map it then attaches this
// process to it.
//
// With loaded (a map another process wrote), the family first validates the
// words its operations follow (mapops.Validator) if no other live process
// has the map open.
func (m *Map) open(fam mapops.Family, a *mapops.Attr, lay mapops.Layout, loaded bool) error {
	var host robust.Host
	if m.obj != nil {
		host = m.obj.NS()
	}
	m.locker = robust.New(host)
	a.Locks = m.locker
	ops, err := fam.Open(m.r, a, lay)
	if err != nil {
		return err
	}
	// Validation and attaching happen under the map's repair lock, so that
	// two processes opening a map at once do not both find themselves
	// alone, and no repair runs while the map is validated.
	var unlock func()
	if m.obj != nil {
		unlock = m.obj.LockRecovery()
		defer unlock()
	}
	if v, ok := ops.(mapops.Validator); ok && loaded && m.alone() {
		if err := v.Validate(); err != nil {
			_ = ops.Close()
			return corrupt("damaged body: %v", err)
		}
	}
	m.ops = ops
	m.refs.Store(1)
	if m.obj == nil {
		return nil
	}
	if rep, ok := ops.(mapops.Repairer); ok {
		m.locker.SetRepair(func(dead *uint32) {
			unlock := m.obj.LockRecovery()
			defer unlock()
			if m.locker.Dead(dead) {
				rep.Repair()
			}
		})
	}
	m.attach()
	return nil
}

// attach records this process in the map's header, and repairs the map if
// a process recorded there has died (it may have died in the middle of an
// operation without holding a lock anyone waits for). The caller holds the
// map's repair lock.
func (m *Map) attach() {
	ns := m.obj.NS()
	slot := ns.Slot()
	words := &m.r.Header().Attached
	old := atomic.OrUint64(&words[slot/64], 1<<(slot%64))
	// Our own bit already set: the process that had our slot before died
	// with the map open.
	m.repairDead(old&(1<<(slot%64)) != 0)
}

// alone reports whether no live process other than this one has the map
// open: then nothing can be changing it while the family validates it (a
// live process's writes in progress would look like damage to a walk
// without locks).
func (m *Map) alone() bool {
	ns := m.obj.NS()
	words := &m.r.Header().Attached
	for w := range words {
		bits := atomic.LoadUint64(&words[w])
		for bits != 0 {
			b := bits & -bits
			bits &^= b
			if slot := w*64 + trailing(b); slot != ns.Slot() && ns.SlotAlive(slot) {
				return false
			}
		}
	}
	return true
}

// repairDead repairs the map once for all the processes recorded in its
// header that have died (and for this process's slot's previous holder
// with stale), and forgets them. The caller holds the map's repair lock.
func (m *Map) repairDead(stale bool) {
	ns := m.obj.NS()
	words := &m.r.Header().Attached
	var dead [region.AttachWords]uint64
	any := stale
	for w := range words {
		bits := atomic.LoadUint64(&words[w])
		for bits != 0 {
			b := bits & -bits
			bits &^= b
			slot := w*64 + trailing(b)
			if !ns.SlotAlive(slot) {
				dead[w] |= b
				any = true
			}
		}
	}
	if !any {
		return
	}
	if rep, ok := m.ops.(mapops.Repairer); ok {
		rep.Repair()
	}
	for w := range words {
		if dead[w] != 0 {
			atomic.AndUint64(&words[w], ^dead[w])
		}
	}
}

func trailing(b uint64) int {
	n := 0
	for b&1 == 0 {
		b >>= 1
		n++
	}
	return n
}

// repairStale repairs, once per namespace and process, the maps that the
// previous holder of this process's slot had open when it died (other
// processes take their slot bit for this live process's).
func repairStale(ns *namespace.NS) {
	for _, id := range ns.StaleIDs() {
		if h, err := OpenID(ns, id, 0); err == nil {
			_ = h.Close() // attaching repaired it
		}
	}
}

// close is the last handle's close in this process.
func (m *Map) close() error {
	_ = m.ops.Close()
	if m.obj == nil {
		err := m.r.Release()
		m.closeLocal() // a private map-in-map's slots let go
		return err
	}
	cache.forget(m)
	slot := m.obj.NS().Slot()
	atomic.AndUint64(&m.r.Header().Attached[slot/64], ^(uint64(1) << (slot % 64)))
	_, err := m.obj.Close(m.r)
	return err
}

// cache holds the shared maps this process has open, by id, so that
// opening a map twice shares one mapping and one Map.
var cache = &mapCache{byID: map[cacheKey]*Map{}}

type cacheKey struct {
	ns *namespace.NS
	id uint32
}

type mapCache struct {
	mu   sync.Mutex
	byID map[cacheKey]*Map
}

func (c *mapCache) forget(m *Map) {
	c.mu.Lock()
	k := cacheKey{m.obj.NS(), m.id}
	if c.byID[k] == m {
		delete(c.byID, k)
	}
	c.mu.Unlock()
}

// OpenFlags are BPF_OBJ_GET's file_flags and BPF_MAP_GET_FD_BY_ID's
// open_flags: BPF_F_RDONLY or BPF_F_WRONLY (not both), or 0.
func checkOpenFlags(flags uint32) (read, write bool, err error) {
	if flags&^uapi.FAccessMask != 0 || flags&uapi.FAccessMask == uapi.FAccessMask {
		return false, false, uapi.EINVAL
	}
	return flags&uapi.FWronly == 0, flags&uapi.FRdonly == 0, nil
}

// OpenPinned is BPF_OBJ_GET: a new handle to the map pinned at path in ns
// (a relative path is relative to its root), with the access mode flags
// ask for.
func OpenPinned(ns *namespace.NS, path string, flags uint32) (*Handle, error) {
	read, write, err := checkOpenFlags(flags)
	if err != nil {
		return nil, err
	}
	p, err := ns.Resolve(path)
	if err != nil {
		return nil, &PathError{Path: path, Err: err, Errno: uapi.EPERM}
	}
	repairStale(ns)
	obj, err := ns.OpenPin(p)
	if err != nil {
		return nil, pathErr(path, err)
	}
	return openObject(obj, read, write)
}

// OpenID is BPF_MAP_GET_FD_BY_ID over the maps of ns.
func OpenID(ns *namespace.NS, id uint32, flags uint32) (*Handle, error) {
	read, write, err := checkOpenFlags(flags)
	if err != nil {
		return nil, err
	}
	if h, ok := cachedHandle(ns, id, read, write); ok {
		return h, nil
	}
	repairStale(ns)
	obj, err := ns.OpenID(id)
	if err != nil {
		if outOfFDs(err) {
			return nil, err
		}
		return nil, uapi.ENOENT
	}
	return openObject(obj, read, write)
}

// NextID is BPF_MAP_GET_NEXT_ID over the maps of ns.
func NextID(ns *namespace.NS, start uint32) (uint32, error) {
	if err := CheckNextIDStart(start); err != nil {
		return 0, err
	}
	id, err := ns.NextID(start)
	if err != nil {
		return 0, uapi.ENOENT
	}
	return id, nil
}

func cachedHandle(ns *namespace.NS, id uint32, read, write bool) (*Handle, bool) {
	cache.mu.Lock()
	defer cache.mu.Unlock()
	m := cache.byID[cacheKey{ns, id}]
	if m == nil || !tryRef(m) { // absent, or closing
		return nil, false
	}
	return newHandle(m, read, write), true
}

// openObject builds the Map for an object opened in the namespace, or
// shares the one this process already has.
func openObject(obj *namespace.Object, read, write bool) (*Handle, error) {
	if h, ok := cachedHandle(obj.NS(), obj.ID(), read, write); ok {
		obj.Drop()
		return h, nil
	}
	m, err := loadObject(obj)
	if err != nil {
		obj.Drop()
		return nil, err
	}
	cache.mu.Lock()
	k := cacheKey{obj.NS(), m.id}
	if prev := cache.byID[k]; prev != nil && tryRef(prev) {
		// Another goroutine opened it meanwhile; keep one Map. The
		// reference is taken under the cache lock, so prev cannot finish
		// closing between the check and the new handle.
		cache.mu.Unlock()
		_ = m.close()
		return newHandle(prev, read, write), nil
	}
	cache.byID[k] = m
	cache.mu.Unlock()
	return newHandle(m, read, write), nil
}

// tryRef takes a reference to m unless it is closing (no references left).
func tryRef(m *Map) bool {
	for {
		n := m.refs.Load()
		if n == 0 {
			return false
		}
		if m.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// CorruptError reports an object file whose header does not describe a map
// this version of bpfmap can open. Its errno is EINVAL.
type CorruptError struct{ Reason string }

func (e *CorruptError) Error() string { return "not a usable bpfmap map: " + e.Reason }

// Errno is EINVAL.
func (e *CorruptError) Errno() error { return uapi.EINVAL }

func corrupt(format string, args ...any) error {
	return &CorruptError{Reason: fmt.Sprintf(format, args...)}
}

// loadObject validates an object's header against the family's own rules
// and layout, maps it and opens the family over it.
func loadObject(obj *namespace.Object) (*Map, error) {
	hd, err := obj.ReadHeader()
	if err != nil {
		return nil, corrupt("%v", err)
	}
	switch {
	case string(hd.Magic[:]) != region.Magic:
		return nil, corrupt("bad magic")
	case hd.Layout != region.LayoutVersion:
		return nil, corrupt("layout version %d, this bpfmap reads version %d", hd.Layout, region.LayoutVersion)
	case hd.ID != obj.ID():
		return nil, corrupt("header names map %d, file is map %d", hd.ID, obj.ID())
	case hd.BodyOffset != region.HeaderSize:
		return nil, corrupt("body at %d", hd.BodyOffset)
	case hd.PossibleCPUs == 0 || hd.PossibleCPUs > MaxCPUs:
		return nil, corrupt("%d possible CPUs", hd.PossibleCPUs)
	}
	t := uapi.MapType(hd.MapType)
	fam := families[t]
	if fam == nil {
		return nil, corrupt("map type %d", hd.MapType)
	}
	name, err := checkName(hd.Name)
	if err != nil {
		return nil, corrupt("map name")
	}
	ma := &mapops.Attr{
		Type: t, KeySize: hd.KeySize, ValueSize: hd.ValueSize, MaxEntries: hd.CreateMaxEntries,
		Flags: hd.MapFlags, MapExtra: hd.MapExtra, PossibleCPUs: int(hd.PossibleCPUs), SysAdmin: true,
	}
	if err := fam.Check(ma); err != nil {
		return nil, corrupt("the header's attributes are refused by the map type (%v)", err)
	}
	lay, err := fam.Layout(ma)
	if err != nil {
		return nil, corrupt("layout: %v", err)
	}
	size := (region.HeaderSize + lay.BodySize + 4095) &^ 4095
	if lay.MaxEntries != hd.MaxEntries || uint64(obj.FileSize()) != size {
		return nil, corrupt("file is %d bytes, a map of its header's attributes has %d", obj.FileSize(), size)
	}
	r, err := mapObject(obj, lay)
	if err != nil {
		return nil, err
	}
	if h := r.Header(); h.Size != uint64(r.Len()) {
		return nil, corrupt("header size %d, mapping %d", h.Size, r.Len())
	}
	m := &Map{
		r: r, traits: fam.Traits(ma), typ: t, keySize: hd.KeySize, valSize: hd.ValueSize,
		maxEnt: lay.MaxEntries, flags: hd.MapFlags, extra: hd.MapExtra,
		name: name, id: hd.ID, ncpu: int(hd.PossibleCPUs), memlock: lay.Memlock, obj: obj,
	}
	m.sysVal = hd.ValueSize
	if m.traits.PerCPU {
		m.sysVal = uint32(mapops.RoundUp8(hd.ValueSize) * uint64(m.ncpu))
	}
	h := r.Header()
	m.frozen, m.mmaps = &h.Frozen, &h.Mmaps
	if isMapInMap(t) {
		if uapi.MapType(h.Inner.MapType) == uapi.MapTypeUnspec || isMapInMap(uapi.MapType(h.Inner.MapType)) {
			_ = r.Release()
			return nil, corrupt("map-in-map without a usable inner-map template")
		}
		m.inner = &h.Inner
		m.mim = &mimState{local: map[string]*Handle{}}
	}
	if err := m.open(fam, ma, lay, true); err != nil {
		_ = r.Release()
		return nil, err
	}
	if m.inner != nil {
		// A writer that died in the middle of a slot change is
		// reconciled by the next one, or here.
		m.lockWriters()()
	}
	return m, nil
}

// PathError is a failed pin or open by path: the kernel's errno and the
// reason.
type PathError struct {
	Path  string
	Err   error
	Errno error
}

func (e *PathError) Error() string { return e.Path + ": " + e.Err.Error() }
func (e *PathError) Unwrap() error { return e.Err }

func pathErr(path string, err error) error {
	var ce *CorruptError
	if errors.As(err, &ce) {
		return err
	}
	return &PathError{Path: path, Err: err, Errno: errnoOf(err)}
}

// errnoOf finds the uapi errno inside err (EINVAL if there is none).
func errnoOf(err error) error {
	for _, e := range []error{uapi.ENOENT, uapi.EEXIST, uapi.EACCES, uapi.EPERM, uapi.EINVAL, uapi.ENOTDIR, uapi.EMFILE, uapi.ENFILE} {
		if errors.Is(err, e) {
			return e
		}
	}
	return uapi.EINVAL
}

// Pin is BPF_OBJ_PIN: it links the handle's map at path in its namespace.
// A private map cannot be pinned (EPERM, as a pin outside a bpffs).
func (h *Handle) Pin(path string) (string, error) {
	m, err := h.live()
	if err != nil {
		return "", err
	}
	if m.obj == nil {
		return "", &PathError{Path: path, Err: errors.New("a private map cannot be pinned"), Errno: uapi.EPERM}
	}
	p, err := m.obj.NS().Resolve(path)
	if err != nil {
		return "", &PathError{Path: path, Err: err, Errno: uapi.EPERM}
	}
	if err := m.obj.Pin(p); err != nil {
		return "", pathErr(path, err)
	}
	return p, nil
}

// Unpin removes the pin at path, which must be a pin of the handle's map.
func (h *Handle) Unpin(path string) error {
	m, err := h.live()
	if err != nil {
		return err
	}
	if m.obj == nil {
		return &PathError{Path: path, Err: errors.New("a private map has no pins"), Errno: uapi.EINVAL}
	}
	p, err := m.obj.NS().Resolve(path)
	if err != nil {
		return &PathError{Path: path, Err: err, Errno: uapi.EPERM}
	}
	if err := m.obj.Unpin(p); err != nil {
		return pathErr(path, err)
	}
	return nil
}

// Namespace returns the namespace of the handle's map, or nil for a
// private map.
func (h *Handle) Namespace() *namespace.NS {
	if h.m.obj == nil {
		return nil
	}
	return h.m.obj.NS()
}

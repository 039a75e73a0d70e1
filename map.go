package bpfmap

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap/internal/array"
	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/hash"
	"github.com/bpfmap/bpfmap/internal/mapops"
	"github.com/bpfmap/bpfmap/internal/marshal"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

// MapOptions are the host properties a map models.
type MapOptions struct {
	// PossibleCPUs is the number of CPUs per-CPU maps keep a value for.
	// 0 means this machine's possible CPUs, read the way the kernel reports
	// them (/sys/devices/system/cpu/possible), so a test can model a
	// 128-CPU host on a laptop by setting it. At most 8192 (the kernel's
	// largest NR_CPUS); more is EINVAL.
	PossibleCPUs int

	// CPU returns the CPU an operation runs on, for the map types whose
	// behaviour depends on it: LRU_HASH and LRU_PERCPU_HASH keep per-CPU
	// lists, so which keys an update evicts depends on the CPU it runs on,
	// as in the kernel. The result is reduced modulo the possible CPUs (a
	// negative result means CPU 0). nil means the CPU running the calling
	// thread, as the kernel uses the CPU running the syscall: read with the
	// RDPID instruction on x86-64 Linux, a few nanoseconds; where that is not
	// available, the number of the Go scheduler's processor (P) running the
	// calling goroutine, 0 … GOMAXPROCS-1 (see internal/cpuid). A function
	// returning a constant makes evictions deterministic: with CPU 0 and
	// the kernel's PossibleCPUs, an LRU map keeps exactly the keys a kernel
	// map keeps when every syscall runs on CPU 0.
	CPU func() int

	// Namespace is the root directory of the pin namespace the map lives
	// in; "" means the default (NamespaceRoot). Maps are objects of a
	// namespace, reachable by other processes through pins and ids.
	Namespace string

	// Private keeps the map in this process's memory: no other process can
	// open it, it cannot be pinned, and it has no file in the namespace.
	// Maps are private anyway where the namespace cannot be used (not
	// Linux, or a root that cannot be created).
	Private bool

	// PinPath is the directory, inside the namespace (relative paths are
	// relative to its root), where a spec with Pinning ebpf.PinByName is
	// pinned under its name, as ebpf.MapOptions.PinPath: if a map is pinned
	// there already it is opened (ebpf.ErrMapIncompatible if it does not
	// match the spec), else the map is created and pinned.
	PinPath string

	// InnerMap is the inner-map template of an ArrayOfMaps or HashOfMaps:
	// the map whose fd a kernel map-in-map is created with. Only its
	// metadata is kept; it may be closed afterwards. When nil, a
	// temporary template is made from spec.InnerMap, as cilium/ebpf does.
	InnerMap *Map
}

// Map is a BPF map in user space. Its methods mirror *ebpf.Map's.
//
// A Map is safe for concurrent use. Close releases the handle; the map's
// memory is returned to the system when its last handle (see Clone) closes.
type Map struct {
	h          *command.Handle
	typ        ebpf.MapType
	keySize    uint32
	valueSize  uint32
	maxEntries uint32
	flags      uint32
	fullValue  int // bytes per value in element commands (per-CPU: all CPUs)
	ncpu       int
	perCPU     bool
	name       string
	id         uint32
	// words is the ARRAY family's map when values are one 8-byte word: the
	// u32-index → u64 lookup then reads the element inline.
	words *array.Map
	// hashWords is the hash family's map for a HASH or LRU_HASH of u32 keys
	// and u64 values, read with its LookupWord.
	hashWords *hash.Map
	// ops is the map's operations, called directly by the hot paths once
	// the handle's own checks are known to pass (command.Handle.Ops).
	ops mapops.Ops
	// direct8 is set when the hot paths may call ops with a key given as
	// *uint32 or []byte and a value given as *uint64: the map has keys, its
	// values are one 8-byte word, and they are not per CPU.
	direct8 bool
	// pinnedPath is where this handle pinned the map or loaded it from.
	pinnedPath string
}

// NewMap creates a map from spec, as ebpf.NewMap creates a kernel map.
func NewMap(spec *ebpf.MapSpec) (*Map, error) {
	return NewMapWithOptions(spec, MapOptions{})
}

// NewMapWithOptions creates a map from spec with host options.
//
// As cilium/ebpf does before the kernel sees a spec, the name is stripped of
// characters the kernel rejects and cut to 15 bytes, and map-in-map value
// sizes default to 4. Everything else — sizes, flags, max_entries — is
// checked with the kernel's rules and errnos. Spec contents are inserted
// after creation. Types bpfmap does not implement yet fail with an error
// wrapping ebpf.ErrNotSupported that names the type.
func NewMapWithOptions(spec *ebpf.MapSpec, opts MapOptions) (*Map, error) {
	if spec == nil {
		return nil, argError(opCreate, "nil spec", uapi.EINVAL)
	}
	if spec.Pinning == ebpf.PinByName && !opts.Private {
		return createPinned(spec, opts)
	}
	co := command.Options{PossibleCPUs: opts.PossibleCPUs, CPU: opts.CPU, Private: opts.Private}
	if opts.Namespace != "" && !opts.Private {
		ns, err := namespace.Open(opts.Namespace)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", opNames[opCreate], err)
		}
		co.Namespace = ns
	}
	valueSize := spec.ValueSize
	if (spec.Type == ebpf.ArrayOfMaps || spec.Type == ebpf.HashOfMaps) && valueSize == 0 {
		valueSize = 4
	}
	attr := command.CreateAttr{
		MapType:    uint32(spec.Type),
		KeySize:    spec.KeySize,
		ValueSize:  valueSize,
		MaxEntries: spec.MaxEntries,
		MapFlags:   spec.Flags,
		NumaNode:   spec.NumaNode,
		MapExtra:   spec.MapExtra,
	}
	name := sanitizeName(spec.Name)
	copy(attr.MapName[:uapi.ObjNameLen-1], name)
	if spec.Type == ebpf.ArrayOfMaps || spec.Type == ebpf.HashOfMaps {
		tmpl, done, err := innerTemplate(spec, opts)
		if err != nil {
			return nil, err
		}
		defer done()
		attr.InnerMap = tmpl
	}
	h, err := command.Create(&attr, co)
	if err != nil {
		return nil, wrap(opCreate, err)
	}
	m := newMap(h)
	for _, kv := range spec.Contents {
		if err := m.Put(kv.Key, kv.Value); err != nil {
			m.Close()
			return nil, fmt.Errorf("putting value: key %v: %w", kv.Key, err)
		}
	}
	return m, nil
}

func newMap(h *command.Handle) *Map {
	info, _ := h.Info()
	m := &Map{
		h: h, typ: ebpf.MapType(info.Type), keySize: info.KeySize, valueSize: info.ValueSize,
		maxEntries: info.MaxEntries, flags: info.MapFlags, fullValue: int(h.SysValueSize()),
		ncpu: info.PossibleCPUs, perCPU: h.PerCPU(),
		name: strings.TrimRight(string(info.Name[:]), "\x00"), id: info.ID,
		words: h.WordArray(), hashWords: h.WordHash(), ops: h.Ops(),
	}
	m.direct8 = m.keySize != 0 && m.fullValue == 8 && !m.perCPU
	return m
}

// sanitizeName keeps the characters the kernel accepts in object names and
// cuts the name to BPF_OBJ_NAME_LEN-1 bytes, as cilium/ebpf does.
func sanitizeName(name string) string {
	name = strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' {
			return c
		}
		return -1
	}, name)
	if len(name) > uapi.ObjNameLen-1 {
		name = name[:uapi.ObjNameLen-1]
	}
	return name
}

// String describes the map like *ebpf.Map's String.
func (m *Map) String() string {
	if m.name != "" {
		return fmt.Sprintf("%s(%s)#%d", m.typ, m.name, m.id)
	}
	return fmt.Sprintf("%s#%d", m.typ, m.id)
}

// Type returns the map's type.
func (m *Map) Type() ebpf.MapType { return m.typ }

// KeySize returns the size of a key in bytes.
func (m *Map) KeySize() uint32 { return m.keySize }

// ValueSize returns the size of a value in bytes (one CPU's, for per-CPU maps).
func (m *Map) ValueSize() uint32 { return m.valueSize }

// MaxEntries returns the map's maximum number of entries.
func (m *Map) MaxEntries() uint32 { return m.maxEntries }

// Flags returns the map's flags as the kernel stores them
// (BPF_F_RDONLY and BPF_F_WRONLY are properties of a handle, not the map).
func (m *Map) Flags() uint32 { return m.flags }

// key marshals a key argument; nil is allowed only for maps without keys.
func (m *Map) key(o op, key any) ([]byte, error) {
	if b, ok := marshal.Fast(key, int(m.keySize)); ok {
		return b, nil
	}
	return m.keySlow(o, key)
}

func (m *Map) keySlow(o op, key any) ([]byte, error) {
	if key == nil {
		if m.keySize == 0 {
			return nil, nil
		}
		return nil, argError(o, "can't use nil as key of map", uapi.EINVAL)
	}
	b, err := marshal.Bytes(key, int(m.keySize), nil)
	if err != nil {
		return nil, argError(o, "can't marshal key", err)
	}
	return b, nil
}

// Lookup copies the value of key into valueOut.
//
// valueOut may be a []byte of the value size, an unsafe.Pointer, a pointer
// to a fixed-size value or an encoding.BinaryUnmarshaler; for per-CPU maps
// a slice or a pointer to a slice with one element per possible CPU.
//
// Lookup is the bpf(2) syscall's lookup: on LRU maps it does not count as
// a use of the key (the kernel's syscall lookups never mark an element
// referenced). LookupAndTouch is the lookup a BPF program makes, which
// does.
func (m *Map) Lookup(key, valueOut any) error {
	return m.LookupWithFlags(key, valueOut, 0)
}

// result ends a command made through the handle or straight on the map's
// family: the map stays reachable until the call returned, and an error
// gets the command's wrapping.
func (m *Map) result(o op, err error) error {
	runtime.KeepAlive(m)
	if err != nil {
		return wrap(o, err)
	}
	return nil
}

// LookupWithFlags is Lookup with BPF_F_LOCK-style lookup flags. bpfmap has
// no values with spin locks, so any flag is EINVAL, as in the kernel.
func (m *Map) LookupWithFlags(key, valueOut any, flags ebpf.MapLookupFlags) error {
	// A u32 key and a u64 value on an ARRAY or HASH/LRU_HASH of those
	// shapes (words, hashWords): every generic check of
	// BPF_MAP_LOOKUP_ELEM passes but the handle's readability (key and
	// value of the map's sizes), so the family's inlined read is the
	// command. These checks come first and alone: at a few nanoseconds per
	// lookup, every instruction before the read counts.
	if kp, ok := key.(*uint32); ok && kp != nil && flags == 0 {
		if vp, ok := valueOut.(*uint64); ok && vp != nil {
			if hw := m.hashWords; hw != nil && m.h.Readable() {
				v, err := hw.LookupWord(*kp)
				if err != nil {
					return m.result(opLookup, err)
				}
				*vp = v
				runtime.KeepAlive(m)
				return nil
			}
			// An index past the end goes on to the family's Lookup.
			if w := m.words; w != nil && m.h.Readable() {
				if v, ok := w.Word(*kp); ok {
					*vp = v
					runtime.KeepAlive(m)
					return nil
				}
			}
		}
	}
	return m.lookupAny(key, valueOut, flags)
}

// lookupAny is LookupWithFlags for every key, value and map.
func (m *Map) lookupAny(key, valueOut any, flags ebpf.MapLookupFlags) error {
	if vp, ok := valueOut.(*uint64); ok && vp != nil && m.direct8 && flags == 0 && m.h.Readable() {
		// A one-word value and a key of the map's size: every generic
		// check passes, so the family's lookup is the command.
		k, ok := fastKey(key, m.keySize)
		if !ok {
			k, ok = fastBytesKey(key, m.keySize)
		}
		if ok {
			return m.result(opLookup, m.ops.Lookup(k, marshal.Uint64Bytes(vp)))
		}
	}
	k, ok := fastKey(key, m.keySize)
	if !ok {
		k, ok = fastBytesKey(key, m.keySize)
	}
	v, ok2 := fastValue(valueOut, m.fullValue)
	switch {
	case ok && ok2:
	case key == nil && m.keySize == 0:
		// Queues, stacks and bloom filters: no key, and the value buffer is
		// the caller's memory either way (peeked into, or the probe read).
		v, ok = marshal.Fast(valueOut, m.fullValue)
	default:
		k, v, ok = marshal.Fast2(key, int(m.keySize), valueOut, m.fullValue)
	}
	if ok && !m.perCPU {
		return m.result(opLookup, m.h.Lookup(k, v, uint64(flags)))
	}
	return m.lookup(key, valueOut, flags)
}

func (m *Map) lookup(key, valueOut any, flags ebpf.MapLookupFlags) error {
	k, err := m.key(opLookup, key)
	if err != nil {
		return err
	}
	if out, isMap := valueOut.(**Map); isMap {
		return m.lookupInner(k, out, flags)
	}
	if m.h.LookupValueIn() {
		return m.lookupProbe(k, valueOut, flags)
	}
	if !m.perCPU {
		out, ok := marshal.Fast(valueOut, m.fullValue)
		if !ok {
			out, ok = marshal.View(valueOut, m.fullValue)
		}
		if ok {
			// The value is written straight into the caller's memory.
			err = m.h.Lookup(k, out, uint64(flags))
			runtime.KeepAlive(m)
			if err != nil {
				return wrap(opLookup, err)
			}
			return nil
		}
	}
	return m.lookupDecode(k, valueOut, flags)
}

// lookupDecode looks up into a buffer and decodes it into valueOut.
func (m *Map) lookupDecode(k []byte, valueOut any, flags ebpf.MapLookupFlags) error {
	defer runtime.KeepAlive(m)
	buf := make([]byte, m.fullValue)
	if err := m.h.Lookup(k, buf, uint64(flags)); err != nil {
		return wrap(opLookup, err)
	}
	if m.perCPU {
		return m.unmarshalPerCPU(opLookup, valueOut, buf)
	}
	return m.unmarshal(opLookup, valueOut, buf)
}

func (m *Map) unmarshal(o op, out any, buf []byte) error {
	if err := marshal.Unmarshal(out, buf); err != nil {
		return argError(o, "can't unmarshal value", err)
	}
	return nil
}

func (m *Map) unmarshalPerCPU(o op, out any, buf []byte) error {
	if err := marshal.UnmarshalPerCPU(out, buf, int(m.valueSize), m.ncpu); err != nil {
		return argError(o, "can't unmarshal per-CPU value", err)
	}
	return nil
}

// LookupAndDelete copies the value of key into valueOut and removes key
// (hash maps; ENOTSUPP elsewhere, as in the kernel).
func (m *Map) LookupAndDelete(key, valueOut any) error {
	defer runtime.KeepAlive(m)
	k, err := m.key(opLookupAndDelete, key)
	if err != nil {
		return err
	}
	if !m.perCPU {
		out, ok := marshal.Fast(valueOut, m.fullValue)
		if !ok {
			out, ok = marshal.View(valueOut, m.fullValue)
		}
		if ok {
			// Written straight into the caller's memory, only on success.
			return wrap(opLookupAndDelete, m.h.LookupAndDelete(k, out, 0))
		}
	}
	buf := make([]byte, m.fullValue)
	if err := m.h.LookupAndDelete(k, buf, 0); err != nil {
		return wrap(opLookupAndDelete, err)
	}
	if m.perCPU {
		return m.unmarshalPerCPU(opLookupAndDelete, valueOut, buf)
	}
	return m.unmarshal(opLookupAndDelete, valueOut, buf)
}

// LookupBytes returns the value of key, or nil if key is not in the map.
func (m *Map) LookupBytes(key any) ([]byte, error) {
	defer runtime.KeepAlive(m)
	k, err := m.key(opLookup, key)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, m.fullValue)
	err = m.h.Lookup(k, buf, 0)
	if errors.Is(err, uapi.ENOENT) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap(opLookup, err)
	}
	return buf, nil
}

// Put is Update with ebpf.UpdateAny.
func (m *Map) Put(key, value any) error {
	return m.Update(key, value, ebpf.UpdateAny)
}

// Update stores value under key, with the kernel's flag rules
// (ebpf.UpdateAny, UpdateNoExist, UpdateExist). For per-CPU maps value is a
// slice with one element per possible CPU.
func (m *Map) Update(key, value any, flags ebpf.MapUpdateFlags) error {
	if vp, ok := value.(*uint64); ok && vp != nil && m.direct8 && flags <= ebpf.UpdateExist && m.h.Writable() {
		// A one-word value and a key of the map's size: every generic
		// check of BPF_MAP_UPDATE_ELEM passes (a writable handle on a map
		// that is not frozen and takes plain keys and the standard flags,
		// key and value of the map's sizes), so the family's update is
		// the command.
		k, ok := fastKey(key, m.keySize)
		if !ok {
			k, ok = fastBytesKey(key, m.keySize)
		}
		if ok {
			return m.result(opUpdate, m.ops.Update(k, marshal.Uint64Bytes(vp), uint64(flags)))
		}
	}
	k, ok := fastKey(key, m.keySize)
	if !ok {
		k, ok = fastBytesKey(key, m.keySize)
	}
	v, ok2 := fastValue(value, m.fullValue)
	if !ok || !ok2 {
		if inner, isMap := value.(*Map); isMap {
			return m.updateInner(key, inner, flags)
		}
		k, v, ok = marshal.Fast2(key, int(m.keySize), value, m.fullValue)
	}
	if ok && !m.perCPU {
		return m.result(opUpdate, m.h.Update(k, v, uint64(flags)))
	}
	return m.update(key, value, flags)
}

func (m *Map) update(key, value any, flags ebpf.MapUpdateFlags) error {
	k, err := m.key(opUpdate, key)
	if err != nil {
		return err
	}
	var v []byte
	var ok bool
	if m.perCPU {
		v = make([]byte, m.fullValue)
		if err := marshal.PerCPUBytes(value, int(m.valueSize), m.ncpu, v); err != nil {
			return argError(opUpdate, "marshal per-CPU value", err)
		}
	} else if v, ok = marshal.Fast(value, m.fullValue); !ok {
		if v, err = marshal.Bytes(value, m.fullValue, nil); err != nil {
			return argError(opUpdate, "marshal value", err)
		}
	}
	err = m.h.Update(k, v, uint64(flags))
	runtime.KeepAlive(m)
	if err != nil {
		return wrap(opUpdate, err)
	}
	return nil
}

// Delete removes key.
func (m *Map) Delete(key any) error {
	k, err := m.key(opDelete, key)
	if err != nil {
		return err
	}
	err = m.h.Delete(k)
	runtime.KeepAlive(m)
	if err != nil {
		return wrap(opDelete, err)
	}
	return nil
}

// NextKey copies the key following key into nextKeyOut; a nil key asks for
// the first key. At the end it returns an error matching
// ebpf.ErrKeyNotExist. As in the kernel, a key that is not in the map
// restarts from the first key.
func (m *Map) NextKey(key, nextKeyOut any) error {
	defer runtime.KeepAlive(m)
	var k []byte
	if key != nil {
		var err error
		if k, err = m.key(opNextKey, key); err != nil {
			return err
		}
	}
	if out, ok := marshal.View(nextKeyOut, int(m.keySize)); ok {
		return wrap(opNextKey, m.h.GetNextKey(k, out))
	}
	buf := make([]byte, m.keySize)
	if err := m.h.GetNextKey(k, buf); err != nil {
		return wrap(opNextKey, err)
	}
	if err := marshal.Unmarshal(nextKeyOut, buf); err != nil {
		return argError(opNextKey, "can't unmarshal next key", err)
	}
	return nil
}

// NextKeyBytes returns the key following key, or nil at the end.
func (m *Map) NextKeyBytes(key any) ([]byte, error) {
	buf := make([]byte, m.keySize)
	err := m.NextKey(key, buf)
	if errors.Is(err, ebpf.ErrKeyNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return buf, nil
}

// Freeze makes the map read-only for every handle, as BPF_MAP_FREEZE does.
// Freezing a frozen map is EPERM.
func (m *Map) Freeze() error {
	defer runtime.KeepAlive(m)
	return wrap(opFreeze, m.h.Freeze())
}

// Clone returns a new handle to the same map (like dup(2) of a map fd).
// Closing one does not affect the other; the map lives until both close.
// Cloning a nil Map returns nil.
func (m *Map) Clone() (*Map, error) {
	if m == nil {
		return nil, nil
	}
	h, err := m.h.Dup()
	if err != nil {
		return nil, wrap(opClone, err)
	}
	c := *m
	c.h = h
	c.pinnedPath = "" // as ebpf's Clone: the clone is not pinned
	return &c, nil
}

// Close releases the handle. The map's memory is returned to the system when
// its last handle closes. Closing twice, or a nil Map, is a no-op.
func (m *Map) Close() error {
	if m == nil {
		return nil
	}
	if err := m.h.Close(); err != nil && !errors.Is(err, uapi.EBADF) {
		return wrap(opClose, err)
	}
	return nil
}

//go:build linux

package difftest

// Differential tests of ARRAY_OF_MAPS and HASH_OF_MAPS: the same maps are
// made in the kernel (raw bpf(2) through internal/kbpf, inner maps given
// as fds) and in bpfmap (internal/command in a fresh namespace, inner maps
// given as handles), every command runs on both, and errnos and outputs
// are compared. Ids differ between the sides, so every id a map-in-map
// returns is translated to the name of the test map it belongs to before
// the comparison. Where the kernel's value is an fd (UPDATE, the UPDATE
// batch), bpfmap's is the inner map's handle (UpdateMap) or id (the
// documented deviation of internal/command/mapinmap.go).

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/namespace"
)

const (
	mimArrayOfMaps = 12
	mimHashOfMaps  = 13
	mimRingbuf     = 27
	mimInnerMap    = 1 << 12
	mimGetFDByID   = 14
	// mimNoFD is an fd number no process has open.
	mimNoFD = 1 << 20
)

// mimPair is one test map on both sides.
type mimPair struct {
	name     string
	kfd      int // -1 once closed
	h        *command.Handle
	kid, bid uint32
}

// mimWorld holds the named maps of one scenario.
type mimWorld struct {
	t     *testing.T
	ns    *namespace.NS
	maps  map[string]*mimPair
	byKID map[uint32]string
	byBID map[uint32]string
	null  int // an fd that is not a map
}

func newMimWorld(t *testing.T) *mimWorld {
	kbpf.Need(t)
	ns, err := namespace.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	null, err := syscall.Open("/dev/null", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	w := &mimWorld{t: t, ns: ns, maps: map[string]*mimPair{}, byKID: map[uint32]string{}, byBID: map[uint32]string{}, null: null}
	t.Cleanup(func() {
		for _, p := range w.maps {
			w.closeBoth(p)
		}
		_ = syscall.Close(null)
	})
	return w
}

func (w *mimWorld) closeBoth(p *mimPair) {
	if p.kfd >= 0 {
		_ = kbpf.Close(p.kfd)
		p.kfd = -1
	}
	_ = p.h.Close()
}

// tmplRef names a template or inner map: a map of the world, or one of
// the special fds.
const (
	refNone   = ""        // inner_map_fd 0 / a nil handle
	refNotMap = "!notmap" // an fd that is not a map / a nil handle
	refClosed = "!closed" // an fd that is not open / a closed handle
)

func (w *mimWorld) kfdOf(ref string) uint32 {
	switch ref {
	case refNone:
		return 0
	case refNotMap:
		return uint32(w.null)
	case refClosed:
		return mimNoFD
	}
	p := w.maps[ref]
	if p.kfd < 0 {
		return mimNoFD
	}
	return uint32(p.kfd)
}

var mimClosedHandle = func() *command.Handle {
	h, err := command.Create(&command.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 4, MaxEntries: 1}, command.Options{Private: true})
	if err != nil {
		panic(err)
	}
	_ = h.Close()
	return h
}()

func (w *mimWorld) handleOf(ref string) *command.Handle {
	switch ref {
	case refNone, refNotMap:
		return nil
	case refClosed:
		return mimClosedHandle
	}
	return w.maps[ref].h
}

// create makes map name on both sides with template tmpl and compares the
// errnos; on success the pair joins the world.
func (w *mimWorld) create(name string, a kbpf.CreateAttr, tmpl string) syscall.Errno {
	w.t.Helper()
	ka := a
	ka.InnerMapFD = w.kfdOf(tmpl)
	kfd, ke := kbpf.CreateMap(&ka)
	ca := toCommand(&a)
	ca.InnerMap = w.handleOf(tmpl)
	h, err := command.Create(ca, command.Options{Namespace: w.ns, PossibleCPUs: ncpu()})
	be := errnoOf(err)
	if ke != be {
		w.t.Errorf("create %s (%s, template %q): kernel %s, bpfmap %s (%v)", name, attrString(&a), tmpl, errName(ke), errName(be), err)
	}
	if ke == 0 && be == 0 {
		p := &mimPair{name: name, kfd: kfd, h: h}
		ki, _ := kbpf.Info(kfd)
		bi, _ := h.Info()
		p.kid, p.bid = ki.ID, bi.ID
		w.maps[name] = p
		w.byKID[p.kid], w.byBID[p.bid] = name, name
		return 0
	}
	if ke == 0 {
		_ = kbpf.Close(kfd)
	}
	if be == 0 {
		_ = h.Close()
	}
	return ke
}

func (w *mimWorld) mustCreate(name string, a kbpf.CreateAttr, tmpl string) {
	w.t.Helper()
	if e := w.create(name, a, tmpl); e != 0 {
		w.t.Fatalf("create %s: %s", name, errName(e))
	}
}

// closeFD closes the user's handle of a map on both sides.
func (w *mimWorld) closeFD(name string) {
	p := w.maps[name]
	if p.kfd >= 0 {
		_ = kbpf.Close(p.kfd)
		p.kfd = -1
	}
	_ = p.h.Close()
}

func mimKey(outer *mimPair, k uint32) []byte {
	i, _ := outer.h.Info()
	b := make([]byte, i.KeySize)
	binary.LittleEndian.PutUint32(b, k)
	return b
}

// update stores inner in outer[k] on both sides.
func (w *mimWorld) update(outer string, k uint32, inner string, flags uint64) syscall.Errno {
	w.t.Helper()
	o := w.maps[outer]
	key := mimKey(o, k)
	ke := kbpf.Update(o.kfd, key, u32(w.kfdOf(inner)), flags)
	be := errnoOf(o.h.UpdateMap(key, w.handleOf(inner), flags))
	if ke != be {
		w.t.Errorf("update %s[%d] = %q flags %d: kernel %s, bpfmap %s", outer, k, inner, flags, errName(ke), errName(be))
	}
	return ke
}

// name translates an id a side returned.
func (w *mimWorld) name(kernel bool, id uint32) string {
	m := w.byBID
	if kernel {
		m = w.byKID
	}
	if n, ok := m[id]; ok {
		return n
	}
	return fmt.Sprintf("?id%d", id)
}

// lookup compares outer[k] on both sides and returns the inner map's name.
func (w *mimWorld) lookup(outer string, k uint32) (string, syscall.Errno) {
	w.t.Helper()
	o := w.maps[outer]
	key := mimKey(o, k)
	kv, bv := make([]byte, 4), make([]byte, 4)
	ke := kbpf.Lookup(o.kfd, key, kv, 0)
	be := errnoOf(o.h.Lookup(key, bv, 0))
	kn, bn := w.name(true, binary.NativeEndian.Uint32(kv)), w.name(false, binary.NativeEndian.Uint32(bv))
	if ke != be || ke == 0 && kn != bn {
		w.t.Errorf("lookup %s[%d]: kernel %s %s, bpfmap %s %s", outer, k, errName(ke), kn, errName(be), bn)
	}
	return kn, ke
}

func (w *mimWorld) del(outer string, k uint32) syscall.Errno {
	w.t.Helper()
	o := w.maps[outer]
	key := mimKey(o, k)
	ke := kbpf.Delete(o.kfd, key)
	be := errnoOf(o.h.Delete(key))
	if ke != be {
		w.t.Errorf("delete %s[%d]: kernel %s, bpfmap %s", outer, k, errName(ke), errName(be))
	}
	return ke
}

// alive compares whether map name's id can still be opened
// (BPF_MAP_GET_FD_BY_ID) on both sides.
func (w *mimWorld) alive(name string) bool {
	w.t.Helper()
	p := w.maps[name]
	attr := make([]byte, 12)
	binary.NativeEndian.PutUint32(attr, p.kid)
	fd, ke := kbpf.Raw(mimGetFDByID, attr)
	if ke == 0 {
		_ = syscall.Close(fd)
	}
	h, err := command.OpenID(w.ns, p.bid, 0)
	be := errnoOf(err)
	if err == nil {
		_ = h.Close()
	}
	if ke != be {
		w.t.Errorf("open map %s by id: kernel %s, bpfmap %s", name, errName(ke), errName(be))
	}
	return ke == 0
}

// other errno-only commands on both sides
func (w *mimWorld) both(what string, k func() syscall.Errno, b func() syscall.Errno) syscall.Errno {
	w.t.Helper()
	ke, be := k(), b()
	if ke != be {
		w.t.Errorf("%s: kernel %s, bpfmap %s", what, errName(ke), errName(be))
	}
	return ke
}

func mimAttr(typ, key, max, flags uint32) kbpf.CreateAttr {
	return kbpf.CreateAttr{MapType: typ, KeySize: key, ValueSize: 4, MaxEntries: max, MapFlags: flags}
}

func TestMapInMapCreate(t *testing.T) {
	w := newMimWorld(t)
	w.mustCreate("array", kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("aom", mimAttr(mimArrayOfMaps, 4, 2, 0), "array")
	w.mustCreate("hom", mimAttr(mimHashOfMaps, 4, 2, 0), "array")
	w.mustCreate("hash", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("percpu_hash", kbpf.CreateAttr{MapType: tPercpuHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("lru", kbpf.CreateAttr{MapType: tLRU, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("queue", kbpf.CreateAttr{MapType: tQueue, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("stack", kbpf.CreateAttr{MapType: tStack, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("bloom", kbpf.CreateAttr{MapType: tBloom, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("ringbuf", kbpf.CreateAttr{MapType: mimRingbuf, MaxEntries: 4096}, refNone)
	w.mustCreate("lpm", kbpf.CreateAttr{MapType: tLPMTrie, KeySize: 8, ValueSize: 8, MaxEntries: 4, MapFlags: fNoPrealloc}, refNone)
	w.mustCreate("closed", kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.closeFD("closed")

	n := 0
	for _, typ := range []uint32{mimArrayOfMaps, mimHashOfMaps} {
		for _, tmpl := range []string{"array", "hash", "percpu_hash", "lru", "queue", "stack", "bloom", "ringbuf", "lpm",
			"aom", "hom", refNone, refNotMap, refClosed, "closed"} {
			n++
			w.create(fmt.Sprintf("c%d", n), mimAttr(typ, 4, 2, 0), tmpl)
		}
		for _, a := range []kbpf.CreateAttr{
			{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 2},
			{MapType: typ, KeySize: 4, ValueSize: 0, MaxEntries: 2},
			{MapType: typ, KeySize: 8, ValueSize: 4, MaxEntries: 2},
			{MapType: typ, KeySize: 0, ValueSize: 4, MaxEntries: 2},
			{MapType: typ, KeySize: 4, ValueSize: 4, MaxEntries: 0},
			mimAttr(typ, 4, 2, fNoPrealloc),
			mimAttr(typ, 4, 2, fNoCommonLRU),
			mimAttr(typ, 4, 2, fRdonly),
			mimAttr(typ, 4, 2, fWronly),
			mimAttr(typ, 4, 2, fRdonlyProg),
			mimAttr(typ, 4, 2, fWronlyProg),
			mimAttr(typ, 4, 2, fMmapable),
			mimAttr(typ, 4, 2, mimInnerMap),
			mimAttr(typ, 4, 2, fZeroSeed),
			mimAttr(typ, 4, 2, fNumaNode),
		} {
			for _, tmpl := range []string{"array", refNone, refClosed} {
				n++
				w.create(fmt.Sprintf("c%d", n), a, tmpl)
			}
		}
	}
	// Only the template's metadata is kept: it may be closed.
	w.mustCreate("t2", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 3}, refNone)
	w.mustCreate("after", mimAttr(mimArrayOfMaps, 4, 2, 0), "t2")
	w.closeFD("t2")
	w.mustCreate("h7", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 7}, refNone)
	w.update("after", 0, "h7", 0)
	w.lookup("after", 0)
}

func TestMapInMapUpdateCompat(t *testing.T) {
	w := newMimWorld(t)
	arr := func(max, vs, flags uint32) kbpf.CreateAttr {
		return kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: vs, MaxEntries: max, MapFlags: flags}
	}
	w.mustCreate("tmpl", arr(4, 8, 0), refNone)
	w.mustCreate("tmplInner", arr(4, 8, mimInnerMap), refNone)
	w.mustCreate("a4", arr(4, 8, 0), refNone)
	w.mustCreate("a5", arr(5, 8, 0), refNone)
	w.mustCreate("a4v4", arr(4, 4, 0), refNone)
	w.mustCreate("a4ro", arr(4, 8, fRdonlyProg), refNone)
	w.mustCreate("a4wo", arr(4, 8, fWronly), refNone)
	w.mustCreate("a4rd", arr(4, 8, fRdonly), refNone)
	w.mustCreate("a8inner", arr(8, 8, mimInnerMap), refNone)
	w.mustCreate("pa4", kbpf.CreateAttr{MapType: tPercpuArray, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("pa8", kbpf.CreateAttr{MapType: tPercpuArray, KeySize: 4, ValueSize: 8, MaxEntries: 8}, refNone)
	w.mustCreate("h4", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.mustCreate("h9", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 9}, refNone)
	w.mustCreate("h9np", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 9, MapFlags: fNoPrealloc}, refNone)
	w.mustCreate("gone", arr(4, 8, 0), refNone)
	w.closeFD("gone")
	candidates := []string{"a4", "a5", "a4v4", "a4ro", "a4wo", "a4rd", "a8inner", "pa4", "pa8", "h4", "h9", "h9np",
		"tmpl", "tmplInner", refNone, refNotMap, refClosed, "gone"}
	for _, typ := range []uint32{mimArrayOfMaps, mimHashOfMaps} {
		for _, tmpl := range []string{"tmpl", "tmplInner", "h4", "pa4"} {
			outer := fmt.Sprintf("%s/%s", typeNameMim(typ), tmpl)
			w.mustCreate(outer, mimAttr(typ, 4, 64, 0), tmpl)
			w.mustCreate(outer+"/aom", mimAttr(mimArrayOfMaps, 4, 1, 0), tmpl)
			candidates := append(candidates, outer+"/aom")
			for i, c := range candidates {
				w.update(outer, uint32(i), c, 0)
				w.lookup(outer, uint32(i))
			}
		}
	}
}

func typeNameMim(t uint32) string {
	if t == mimArrayOfMaps {
		return "array_of_maps"
	}
	return "hash_of_maps"
}

func TestMapInMapElementOps(t *testing.T) {
	w := newMimWorld(t)
	w.mustCreate("tmpl", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	for _, n := range []string{"i1", "i2", "i3"} {
		w.mustCreate(n, kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	}
	w.mustCreate("aom", mimAttr(mimArrayOfMaps, 4, 3, 0), "tmpl")
	w.mustCreate("hom", mimAttr(mimHashOfMaps, 4, 2, fZeroSeed), "tmpl")
	w.mustCreate("gone", kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4}, refNone)
	w.closeFD("gone")
	for _, outer := range []string{"aom", "hom"} {
		for _, step := range []struct {
			key   uint32
			inner string
			flags uint64
		}{
			{0, "i1", updExist}, {0, "i1", updNoExist}, {0, "i1", updAny}, {0, "i2", updNoExist},
			{0, "i2", updExist}, {1, "i2", 3}, {1, "i2", 8}, {1, "i2", fLock}, {1, "gone", 8},
			{1, refClosed, updNoExist}, {1, "i3", updAny}, {2, "i1", updAny}, {3, "i1", updAny},
			{7, "i1", updAny}, {7, refClosed, updAny}, {2, "i2", updExist}, {5, "i2", updAny},
		} {
			w.update(outer, step.key, step.inner, step.flags)
		}
		for k := range uint32(8) {
			w.lookup(outer, k)
		}
		o := w.maps[outer]
		// GET_NEXT_KEY walk.
		kk, bk := make([]byte, 4), make([]byte, 4)
		var kprev, bprev []byte
		for range 6 {
			ke := kbpf.GetNextKey(o.kfd, kprev, kk)
			be := errnoOf(o.h.GetNextKey(bprev, bk))
			if ke != be || ke == 0 && string(kk) != string(bk) {
				t.Errorf("%s next key after %x: kernel %s %x, bpfmap %s %x", outer, kprev, errName(ke), kk, errName(be), bk)
			}
			if ke != 0 {
				break
			}
			kprev, bprev = append([]byte(nil), kk...), append([]byte(nil), bk...)
		}
		v := make([]byte, 4)
		w.both(outer+" lookup and delete", func() syscall.Errno { return kbpf.LookupAndDelete(o.kfd, u32(0), v, 0) },
			func() syscall.Errno { return errnoOf(o.h.LookupAndDelete(u32(0), v, 0)) })
		for _, k := range []uint32{1, 1, 5, 9, 0} {
			w.del(outer, k)
		}
		for k := range uint32(4) {
			w.lookup(outer, k)
		}
		w.both(outer+" freeze", func() syscall.Errno { return kbpf.Freeze(o.kfd) }, func() syscall.Errno { return errnoOf(o.h.Freeze()) })
		w.update(outer, 2, "i3", updAny)
		w.del(outer, 2)
		w.lookup(outer, 2)
	}
}

// batch runs one batch command on both sides and compares errno, count
// and the returned entries, translating ids to names. updateValues names
// the inner maps of an UPDATE batch.
func (w *mimWorld) batch(outer string, cmd uint32, keys []uint32, updateValues []string, count uint32, in []byte) {
	w.t.Helper()
	o := w.maps[outer]
	ks := len(mimKey(o, 0))
	n := len(keys)
	if n < int(count) {
		n = int(count)
	}
	kb, bb := &batchArgs{count: count, in: in}, &batchArgs{count: count, in: in}
	kb.keys, bb.keys = make([]byte, n*ks), make([]byte, n*ks)
	kb.values, bb.values = make([]byte, n*4), make([]byte, n*4)
	kb.out, bb.out = make([]byte, ks), make([]byte, ks)
	for i, k := range keys {
		binary.NativeEndian.PutUint32(kb.keys[i*ks:], k)
		binary.NativeEndian.PutUint32(bb.keys[i*ks:], k)
	}
	for i, v := range updateValues {
		binary.NativeEndian.PutUint32(kb.values[i*4:], w.kfdOf(v))
		var id uint32
		if p, ok := w.maps[v]; ok {
			id = p.bid
		}
		binary.NativeEndian.PutUint32(bb.values[i*4:], id)
	}
	kc, ke := (&kernelTarget{fd: o.kfd}).batch(cmd, kb)
	bc, be := (&bpfmapTarget{h: o.h}).batch(cmd, bb)
	if ke != be || kc != bc {
		w.t.Errorf("%s %s keys %v: kernel %s count %d, bpfmap %s count %d", outer, batchName(cmd), keys, errName(ke), kc, errName(be), bc)
		return
	}
	if cmd == cmdLookupBatch || cmd == cmdLookupAndDeleteBatch {
		for i := range int(kc) {
			kn := w.name(true, binary.NativeEndian.Uint32(kb.values[i*4:]))
			bn := w.name(false, binary.NativeEndian.Uint32(bb.values[i*4:]))
			if string(kb.keys[i*ks:(i+1)*ks]) != string(bb.keys[i*ks:(i+1)*ks]) || kn != bn {
				w.t.Errorf("%s %s entry %d: kernel %x=%s, bpfmap %x=%s", outer, batchName(cmd), i,
					kb.keys[i*ks:(i+1)*ks], kn, bb.keys[i*ks:(i+1)*ks], bn)
			}
		}
		if kc > 0 && string(kb.out) != string(bb.out) {
			w.t.Errorf("%s %s out_batch: kernel %x, bpfmap %x", outer, batchName(cmd), kb.out, bb.out)
		}
	}
}

func TestMapInMapBatches(t *testing.T) {
	w := newMimWorld(t)
	w.mustCreate("tmpl", kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}, refNone)
	for _, n := range []string{"i1", "i2", "i3"} {
		w.mustCreate(n, kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}, refNone)
	}
	w.mustCreate("bad", kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 3}, refNone)
	hashBuckets := u32(0)
	for _, typ := range []uint32{mimArrayOfMaps, mimHashOfMaps} {
		outer := typeNameMim(typ)
		flags := uint32(0)
		if typ == mimHashOfMaps {
			flags = fZeroSeed // the kernel's bucket order
		}
		w.mustCreate(outer, mimAttr(typ, 4, 4, flags), "tmpl")
		w.batch(outer, cmdUpdateBatch, []uint32{0, 2, 3}, []string{"i1", "i2", "i1"}, 3, nil)
		w.batch(outer, cmdUpdateBatch, []uint32{1, 5}, []string{"i3", "bad"}, 2, nil)
		w.batch(outer, cmdUpdateBatch, []uint32{1, 9}, []string{"i3", "i3"}, 2, nil)
		for k := range uint32(5) {
			w.lookup(outer, k)
		}
		var in []byte
		if typ == mimHashOfMaps {
			in = hashBuckets
		}
		w.batch(outer, cmdLookupBatch, nil, nil, 2, nil)
		w.batch(outer, cmdLookupBatch, nil, nil, 8, nil)
		w.batch(outer, cmdLookupBatch, nil, nil, 8, in)
		w.batch(outer, cmdDeleteBatch, []uint32{0, 7, 2}, nil, 3, nil)
		for k := range uint32(5) {
			w.lookup(outer, k)
		}
		w.batch(outer, cmdLookupAndDeleteBatch, nil, nil, 8, nil)
		for k := range uint32(5) {
			w.lookup(outer, k)
		}
		// An array of maps with empty slots: the generic lookup batch
		// retries the empty slot and gives up.
		w.del(outer, 1)
		w.batch(outer, cmdLookupBatch, nil, nil, 8, nil)
	}
}

// TestMapInMapLifetime compares when inner maps die: a slot keeps its map
// after the last fd closes; leaving the last slot, or the outer map's
// death, frees it and its id.
func TestMapInMapLifetime(t *testing.T) {
	for _, typ := range []uint32{mimArrayOfMaps, mimHashOfMaps} {
		t.Run(typeNameMim(typ), func(t *testing.T) {
			w := newMimWorld(t)
			w.mustCreate("tmpl", kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}, refNone)
			for _, n := range []string{"i1", "i2", "i3"} {
				w.mustCreate(n, kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}, refNone)
			}
			w.mustCreate("outer", mimAttr(typ, 4, 4, 0), "tmpl")
			w.update("outer", 0, "i1", 0)
			w.update("outer", 1, "i1", 0)
			w.update("outer", 2, "i2", 0)
			w.update("outer", 3, "i3", 0)
			for _, n := range []string{"i1", "i2", "i3"} {
				w.closeFD(n)
			}
			check := func(when string, want map[string]bool) {
				t.Helper()
				for n, a := range want {
					if got := w.alive(n); got != a {
						t.Errorf("%s: kernel map %s alive %v, want %v", when, n, got, a)
					}
				}
			}
			check("fds closed", map[string]bool{"i1": true, "i2": true, "i3": true})
			w.del("outer", 0)
			check("one of two slots emptied", map[string]bool{"i1": true})
			w.del("outer", 1)
			check("both slots emptied", map[string]bool{"i1": false, "i2": true})
			w.update("outer", 2, "tmpl", 0)
			check("replaced", map[string]bool{"i2": false, "i3": true})
			w.lookup("outer", 2)
			// The outer map dies: the kernel frees its inner maps after an
			// RCU grace period and a work item, so wait for them.
			w.closeFD("outer")
			w.closeFD("tmpl")
			p := w.maps["i3"]
			attr := make([]byte, 12)
			binary.NativeEndian.PutUint32(attr, p.kid)
			deadline := 200
			for ; deadline > 0; deadline-- {
				fd, e := kbpf.Raw(mimGetFDByID, attr)
				if e != 0 {
					break
				}
				_ = syscall.Close(fd)
				sleepMs(10)
			}
			if deadline == 0 {
				t.Fatal("kernel: the inner map outlived its outer map")
			}
			if h, err := command.OpenID(w.ns, p.bid, 0); err == nil {
				_ = h.Close()
				t.Error("bpfmap: the inner map outlived its outer map")
			}
		})
	}
}

func sleepMs(n int) {
	ts := syscall.NsecToTimespec(int64(n) * 1e6)
	_ = syscall.Nanosleep(&ts, nil)
}

// TestMapInMapBatchLifetime compares when inner maps die after the batch
// commands change slots: UPDATE_BATCH replacing, DELETE_BATCH and
// LOOKUP_AND_DELETE_BATCH emptying.
func TestMapInMapBatchLifetime(t *testing.T) {
	w := newMimWorld(t)
	spec := kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 2}
	w.mustCreate("tmpl", spec, refNone)
	for _, n := range []string{"i1", "i2", "i3", "i4"} {
		w.mustCreate(n, spec, refNone)
	}
	w.mustCreate("outer", mimAttr(mimHashOfMaps, 4, 4, fZeroSeed), "tmpl")
	w.batch("outer", cmdUpdateBatch, []uint32{0, 1, 2}, []string{"i1", "i2", "i3"}, 3, nil)
	for _, n := range []string{"i1", "i2", "i3"} {
		w.closeFD(n)
	}
	w.batch("outer", cmdUpdateBatch, []uint32{0}, []string{"i4"}, 1, nil)
	for n, want := range map[string]bool{"i1": false, "i2": true, "i3": true} {
		if got := w.alive(n); got != want {
			t.Errorf("after an update batch replaced it: kernel map %s alive %v, want %v", n, got, want)
		}
	}
	w.batch("outer", cmdDeleteBatch, []uint32{1}, nil, 1, nil)
	if w.alive("i2") {
		t.Error("kernel map i2 alive after a delete batch")
	}
	w.closeFD("i4")
	w.batch("outer", cmdLookupAndDeleteBatch, nil, nil, 4, nil)
	for _, n := range []string{"i3", "i4"} {
		if w.alive(n) {
			t.Errorf("kernel map %s alive after a lookup and delete batch", n)
		}
	}
}

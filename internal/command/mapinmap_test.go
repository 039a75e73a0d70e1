//go:build linux

package command

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func le32(v uint32) []byte { return binary.LittleEndian.AppendUint32(nil, v) }

// testNS opens a fresh namespace in a temporary directory.
func testNS(t *testing.T) *namespace.NS {
	t.Helper()
	ns, err := namespace.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func mustCreate(t *testing.T, ns *namespace.NS, a CreateAttr) *Handle {
	t.Helper()
	h, err := Create(&a, Options{Namespace: ns, PossibleCPUs: 2})
	if err != nil {
		t.Fatalf("create %+v: %v", a, err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

func arrayAttr(max uint32, flags uint32) CreateAttr {
	return CreateAttr{MapType: uint32(uapi.MapTypeArray), KeySize: 4, ValueSize: 8, MaxEntries: max, MapFlags: flags}
}

func hashAttr(max uint32) CreateAttr {
	return CreateAttr{MapType: uint32(uapi.MapTypeHash), KeySize: 4, ValueSize: 8, MaxEntries: max}
}

func outerAttr(t uapi.MapType, max uint32, tmpl *Handle) CreateAttr {
	return CreateAttr{MapType: uint32(t), KeySize: 4, ValueSize: 4, MaxEntries: max, InnerMap: tmpl}
}

func objectExists(ns *namespace.NS, id uint32) bool {
	_, err := os.Stat(filepath.Join(ns.Root(), ".bpfmap", "maps", strconv.Itoa(int(id))))
	return err == nil
}

func idOf(h *Handle) uint32 {
	i, _ := h.Info()
	return i.ID
}

func TestMapInMapCreateErrnos(t *testing.T) {
	ns := testNS(t)
	tmpl := mustCreate(t, ns, arrayAttr(4, 0))
	closed := mustCreate(t, ns, arrayAttr(4, 0))
	_ = closed.Close()
	aom := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 2, tmpl))
	hom := mustCreate(t, ns, outerAttr(uapi.MapTypeHashOfMaps, 2, tmpl))
	private, err := Create(&CreateAttr{MapType: uint32(uapi.MapTypeHash), KeySize: 4, ValueSize: 4, MaxEntries: 1}, Options{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	defer private.Close()
	bloom := mustCreate(t, ns, CreateAttr{MapType: uint32(uapi.MapTypeBloomFilter), ValueSize: 4, MaxEntries: 8})
	queue := mustCreate(t, ns, CreateAttr{MapType: uint32(uapi.MapTypeQueue), ValueSize: 4, MaxEntries: 8})
	ring := mustCreate(t, ns, CreateAttr{MapType: uint32(uapi.MapTypeRingbuf), MaxEntries: 4096})
	lpm := mustCreate(t, ns, CreateAttr{MapType: uint32(uapi.MapTypeLPMTrie), KeySize: 8, ValueSize: 4, MaxEntries: 8, MapFlags: uapi.FNoPrealloc})

	for _, typ := range []uapi.MapType{uapi.MapTypeArrayOfMaps, uapi.MapTypeHashOfMaps} {
		for _, tc := range []struct {
			name string
			a    CreateAttr
			want error
		}{
			{"ok", outerAttr(typ, 2, tmpl), nil},
			{"value size 8", CreateAttr{MapType: uint32(typ), KeySize: 4, ValueSize: 8, MaxEntries: 2, InnerMap: tmpl}, uapi.EINVAL},
			{"value size 8 before template", CreateAttr{MapType: uint32(typ), KeySize: 4, ValueSize: 8, MaxEntries: 2, InnerMapFD: 9}, uapi.EINVAL},
			{"max entries 0", outerAttr(typ, 0, tmpl), uapi.EINVAL},
			{"no template (fd 0)", outerAttr(typ, 2, nil), uapi.EINVAL},
			{"template fd not open", CreateAttr{MapType: uint32(typ), KeySize: 4, ValueSize: 4, MaxEntries: 2, InnerMapFD: 9}, uapi.EBADF},
			{"closed template", outerAttr(typ, 2, closed), uapi.EBADF},
			{"template is array of maps", outerAttr(typ, 2, aom), uapi.EINVAL},
			{"template is hash of maps", outerAttr(typ, 2, hom), uapi.EINVAL},
			{"private template", outerAttr(typ, 2, private), nil},
			{"bloom template", outerAttr(typ, 2, bloom), nil},
			{"queue template", outerAttr(typ, 2, queue), nil},
			{"ringbuf template", outerAttr(typ, 2, ring), nil},
			{"lpm template", outerAttr(typ, 2, lpm), nil},
			{"mmapable", CreateAttr{MapType: uint32(typ), KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: uapi.FMmapable, InnerMap: tmpl}, uapi.EINVAL},
		} {
			h, err := Create(&tc.a, Options{Namespace: ns})
			if err != tc.want {
				t.Errorf("%s %s: %v, want %v", TypeName(typ), tc.name, err, tc.want)
			}
			if h != nil {
				_ = h.Close()
			}
		}
	}
	for _, tc := range []struct {
		name string
		a    CreateAttr
		want error
	}{
		{"array key 8", CreateAttr{MapType: uint32(uapi.MapTypeArrayOfMaps), KeySize: 8, ValueSize: 4, MaxEntries: 2, InnerMap: tmpl}, uapi.EINVAL},
		{"array inner_map flag", CreateAttr{MapType: uint32(uapi.MapTypeArrayOfMaps), KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: uapi.FInnerMap, InnerMap: tmpl}, uapi.EINVAL},
		{"array rdonly_prog", CreateAttr{MapType: uint32(uapi.MapTypeArrayOfMaps), KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: uapi.FRdonlyProg, InnerMap: tmpl}, uapi.EINVAL},
		{"hash key 8", CreateAttr{MapType: uint32(uapi.MapTypeHashOfMaps), KeySize: 8, ValueSize: 4, MaxEntries: 2, InnerMap: tmpl}, nil},
		{"hash no_prealloc", CreateAttr{MapType: uint32(uapi.MapTypeHashOfMaps), KeySize: 4, ValueSize: 4, MaxEntries: 2, MapFlags: uapi.FNoPrealloc, InnerMap: tmpl}, nil},
	} {
		h, err := Create(&tc.a, Options{Namespace: ns})
		if err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
		if h != nil {
			_ = h.Close()
		}
	}
	// Only the template's metadata is kept: it may close.
	tm := mustCreate(t, ns, hashAttr(3))
	outer := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 2, tm))
	_ = tm.Close()
	got, ok := outer.InnerTemplate()
	if !ok || got.MapType != uint32(uapi.MapTypeHash) || got.KeySize != 4 || got.ValueSize != 8 || got.MaxEntries != 3 {
		t.Fatalf("template %+v %v", got, ok)
	}
	in := mustCreate(t, ns, hashAttr(7))
	if err := outer.UpdateMap(le32(0), in, 0); err != nil {
		t.Fatalf("update after the template closed: %v", err)
	}
}

func TestMapInMapUpdateErrnos(t *testing.T) {
	ns := testNS(t)
	tmpl := mustCreate(t, ns, arrayAttr(4, 0))
	aom := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 2, tmpl))
	good := mustCreate(t, ns, arrayAttr(4, 0))
	closed := mustCreate(t, ns, arrayAttr(4, 0))
	_ = closed.Close()
	bigger := mustCreate(t, ns, arrayAttr(5, 0))
	otherValue := mustCreate(t, ns, CreateAttr{MapType: uint32(uapi.MapTypeArray), KeySize: 4, ValueSize: 4, MaxEntries: 4})
	otherFlags := mustCreate(t, ns, arrayAttr(4, uapi.FRdonlyProg))
	wronly := mustCreate(t, ns, arrayAttr(4, uapi.FWronly)) // RDONLY/WRONLY are not stored flags
	hashInner := mustCreate(t, ns, hashAttr(4))
	private, err := Create(func() *CreateAttr { a := arrayAttr(4, 0); return &a }(), Options{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	defer private.Close()

	for _, tc := range []struct {
		name  string
		key   uint32
		inner *Handle
		flags uint64
		want  error
	}{
		{"ok", 0, good, uapi.Any, nil},
		{"replace", 0, good, uapi.Any, nil},
		{"noexist", 1, good, uapi.NoExist, uapi.EINVAL},
		{"exist", 0, good, uapi.Exist, uapi.EINVAL},
		{"index past the end", 2, good, uapi.Any, uapi.E2BIG},
		{"index past the end before fd", 2, closed, uapi.Any, uapi.E2BIG},
		{"flags before index", 2, good, uapi.NoExist, uapi.EINVAL},
		{"closed inner", 1, closed, uapi.Any, uapi.EBADF},
		{"no inner (fd 0)", 1, nil, uapi.Any, uapi.EINVAL},
		{"max_entries differs", 1, bigger, uapi.Any, uapi.EINVAL},
		{"value_size differs", 1, otherValue, uapi.Any, uapi.EINVAL},
		{"flags differ", 1, otherFlags, uapi.Any, uapi.EINVAL},
		{"wronly creation flag ignored", 1, wronly, uapi.Any, nil},
		{"type differs", 1, hashInner, uapi.Any, uapi.EINVAL},
		{"map-in-map inner", 1, aom, uapi.Any, uapi.EINVAL},
		{"private inner", 1, private, uapi.Any, uapi.EINVAL},
	} {
		if err := aom.UpdateMap(le32(tc.key), tc.inner, tc.flags); err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	v := make([]byte, 4)
	if err := aom.Lookup(le32(0), v, 0); err != nil || binary.LittleEndian.Uint32(v) != idOf(good) {
		t.Fatalf("lookup: %v %v, want id %d", err, v, idOf(good))
	}
	if err := aom.Lookup(le32(1), v, 0); err != nil || binary.LittleEndian.Uint32(v) != idOf(wronly) {
		t.Fatalf("lookup slot 1: %v %v", err, v)
	}
	if err := aom.Delete(le32(1)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"lookup empty", aom.Lookup(le32(1), v, 0), uapi.ENOENT},
		{"lookup past the end", aom.Lookup(le32(2), v, 0), uapi.ENOENT},
		{"delete empty", aom.Delete(le32(1)), uapi.ENOENT},
		{"delete past the end", aom.Delete(le32(2)), uapi.E2BIG},
		{"lookup and delete", aom.LookupAndDelete(le32(0), v, 0), uapi.ENOTSUPP},
		{"delete batch", aom.DeleteBatch(&Batch{Keys: le32(0), Count: 1}), uapi.ENOTSUPP},
		{"lookup and delete batch", aom.LookupAndDeleteBatch(&Batch{Keys: make([]byte, 8), Values: make([]byte, 8), Count: 2}), uapi.ENOTSUPP},
		{"raw update by id", aom.Update(le32(1), le32(idOf(good)), 0), nil},
		{"raw update unknown id", aom.Update(le32(1), le32(namespace.MaxID), 0), uapi.EBADF},
		{"raw update id 0", aom.Update(le32(1), le32(0), 0), uapi.EBADF},
		{"raw update past the end", aom.Update(le32(9), le32(idOf(good)), 0), uapi.E2BIG},
	} {
		if tc.err != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// GET_NEXT_KEY walks every index, empty or not.
	next := make([]byte, 4)
	if err := aom.GetNextKey(nil, next); err != nil || binary.LittleEndian.Uint32(next) != 0 {
		t.Fatalf("first key: %v %v", err, next)
	}
	if err := aom.GetNextKey(le32(1), next); err != uapi.ENOENT {
		t.Fatalf("after the last: %v", err)
	}
	// The update batch takes ids; the lookup batch returns them.
	b := &Batch{Keys: append(le32(0), le32(1)...), Values: append(le32(idOf(wronly)), le32(idOf(good))...), Count: 2}
	if err := aom.UpdateBatch(b); err != nil || b.Count != 2 {
		t.Fatalf("update batch: %v %d", err, b.Count)
	}
	lb := &Batch{Keys: make([]byte, 8), Values: make([]byte, 8), OutBatch: make([]byte, 4), Count: 2}
	if err := aom.LookupBatch(lb); err != nil || lb.Count != 2 ||
		binary.LittleEndian.Uint32(lb.Values) != idOf(wronly) || binary.LittleEndian.Uint32(lb.Values[4:]) != idOf(good) {
		t.Fatalf("lookup batch: %v %d %v", err, lb.Count, lb.Values)
	}

	// HASH_OF_MAPS: the inner map is resolved before the hash flag rules.
	htmpl := mustCreate(t, ns, hashAttr(4))
	hom := mustCreate(t, ns, outerAttr(uapi.MapTypeHashOfMaps, 2, htmpl))
	h1 := mustCreate(t, ns, hashAttr(100)) // max_entries may differ for hash inners
	for _, tc := range []struct {
		name  string
		key   uint32
		inner *Handle
		flags uint64
		want  error
	}{
		{"F_LOCK before the fd", 1, closed, uapi.FLock, uapi.EINVAL},
		{"bad flags, closed inner", 1, closed, 8, uapi.EBADF},
		{"bad flags, wrong inner", 1, good, 8, uapi.EINVAL},
		{"bad flags", 1, h1, 8, uapi.EINVAL},
		{"exist on missing", 1, h1, uapi.Exist, uapi.ENOENT},
		{"ok", 1, h1, uapi.NoExist, nil},
		{"noexist on present", 1, h1, uapi.NoExist, uapi.EEXIST},
		{"second", 2, htmpl, uapi.Any, nil},
		{"full", 3, h1, uapi.Any, uapi.E2BIG},
		{"replace when full", 2, h1, uapi.Exist, nil},
	} {
		if err := hom.UpdateMap(le32(tc.key), tc.inner, tc.flags); err != tc.want {
			t.Errorf("hash %s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if err := hom.LookupAndDelete(le32(1), v, 0); err != uapi.ENOTSUPP {
		t.Errorf("hash lookup and delete: %v", err)
	}
	if err := hom.Delete(le32(9)); err != uapi.ENOENT {
		t.Errorf("hash delete missing: %v", err)
	}
	lb = &Batch{Keys: make([]byte, 8), Values: make([]byte, 8), OutBatch: make([]byte, 4), Count: 2}
	if err := hom.LookupAndDeleteBatch(lb); err != uapi.ENOENT || lb.Count != 2 {
		t.Fatalf("hash lookup and delete batch: %v %d", err, lb.Count)
	}
	if err := hom.Lookup(le32(1), v, 0); err != uapi.ENOENT {
		t.Fatalf("after lookup and delete batch: %v", err)
	}
}

// slotLinks counts the reference links of outer.
func slotLinks(ns *namespace.NS, outer uint32) int { return len(ns.RefNames(outer)) }

func TestMapInMapLifetime(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeArrayOfMaps, uapi.MapTypeHashOfMaps} {
		t.Run(TypeName(typ), func(t *testing.T) {
			ns := testNS(t)
			tmpl := mustCreate(t, ns, arrayAttr(4, 0))
			outer := mustCreate(t, ns, outerAttr(typ, 4, tmpl))
			in, err := Create(func() *CreateAttr { a := arrayAttr(4, 0); return &a }(), Options{Namespace: ns})
			if err != nil {
				t.Fatal(err)
			}
			id := idOf(in)
			if err := in.Update(le32(1), []byte{42, 0, 0, 0, 0, 0, 0, 0}, 0); err != nil {
				t.Fatal(err)
			}
			for _, k := range []uint32{0, 2} {
				if err := outer.UpdateMap(le32(k), in, 0); err != nil {
					t.Fatal(err)
				}
			}
			// The slots hold the map after its last handle is gone.
			if err := in.Close(); err != nil {
				t.Fatal(err)
			}
			if !objectExists(ns, id) {
				t.Fatal("inner map died with its last handle while in a slot")
			}
			again, err := OpenID(ns, id, 0)
			if err != nil {
				t.Fatalf("open by id while in a slot: %v", err)
			}
			v := make([]byte, 8)
			if err := again.Lookup(le32(1), v, 0); err != nil || v[0] != 42 {
				t.Fatalf("contents: %v %v", err, v)
			}
			_ = again.Close()
			// Out of one of its two slots: still held.
			if err := outer.Delete(le32(0)); err != nil {
				t.Fatal(err)
			}
			if _, err := NextID(ns, 0); err != nil || !objectExists(ns, id) {
				t.Fatal("inner map died while still in a slot")
			}
			// Replaced in its last slot: it dies and its id goes.
			other := mustCreate(t, ns, arrayAttr(4, 0))
			if err := outer.UpdateMap(le32(2), other, 0); err != nil {
				t.Fatal(err)
			}
			if objectExists(ns, id) {
				t.Fatal("inner map outlived its last slot")
			}
			if _, err := OpenID(ns, id, 0); err != uapi.ENOENT {
				t.Fatalf("open by id after the last slot let go: %v", err)
			}
			if n := slotLinks(ns, idOf(outer)); n != 1 {
				t.Fatalf("%d reference links, want 1", n)
			}
			// A pinned inner map outlives its slot; the pin then decides.
			pinned := mustCreate(t, ns, arrayAttr(4, 0))
			pid := idOf(pinned)
			if _, err := pinned.Pin("inner"); err != nil {
				t.Fatal(err)
			}
			if err := outer.UpdateMap(le32(3), pinned, 0); err != nil {
				t.Fatal(err)
			}
			_ = pinned.Close()
			if err := outer.Delete(le32(3)); err != nil {
				t.Fatal(err)
			}
			if !objectExists(ns, pid) {
				t.Fatal("pinned inner map died when its slot let go")
			}
			if err := os.Remove(filepath.Join(ns.Root(), "inner")); err != nil {
				t.Fatal(err)
			}
			// The outer map's death releases the maps in its slots.
			oid := idOf(other)
			_ = other.Close()
			if !objectExists(ns, oid) {
				t.Fatal("inner map died while in a slot")
			}
			outerID := idOf(outer)
			if err := outer.Close(); err != nil {
				t.Fatal(err)
			}
			if objectExists(ns, oid) || objectExists(ns, outerID) {
				t.Fatal("the outer map's death did not release its inner map")
			}
			if _, err := os.Stat(filepath.Join(ns.Root(), ".bpfmap", "refs", strconv.Itoa(int(outerID)))); !os.IsNotExist(err) {
				t.Fatalf("reference directory left: %v", err)
			}
		})
	}
}

func TestMapInMapPrivateOuter(t *testing.T) {
	tmpl, err := Create(func() *CreateAttr { a := arrayAttr(2, 0); return &a }(), Options{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	defer tmpl.Close()
	outer, err := Create(func() *CreateAttr { a := outerAttr(uapi.MapTypeHashOfMaps, 4, tmpl); return &a }(), Options{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	in, err := Create(func() *CreateAttr { a := arrayAttr(2, 0); return &a }(), Options{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := outer.UpdateMap(le32(7), in, 0); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	if in.m.r.Released() {
		t.Fatal("private inner map released while in a slot")
	}
	got, err := outer.LookupMap(le32(7), 0)
	if err != nil || got.m != in.m {
		t.Fatalf("lookup map: %v", err)
	}
	_ = got.Close()
	if err := outer.Delete(le32(7)); err != nil {
		t.Fatal(err)
	}
	if !in.m.r.Released() {
		t.Fatal("private inner map kept after its slot let go")
	}
	_ = outer.Close()
}

// TestMapInMapReconcile plays a writer that died between changing slots
// and changing their reference links, and checks that the next writer
// repairs the links: the slot whose link was missing keeps its map, the
// link of an emptied slot goes and its map dies.
func TestMapInMapReconcile(t *testing.T) {
	ns := testNS(t)
	tmpl := mustCreate(t, ns, arrayAttr(4, 0))
	outer := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 4, tmpl))
	a := mustCreate(t, ns, arrayAttr(4, 0))
	b := mustCreate(t, ns, arrayAttr(4, 0))
	if err := outer.UpdateMap(le32(0), a, 0); err != nil {
		t.Fatal(err)
	}
	m := outer.m
	// The dead writer: put b in slot 1 with only a temporary link, and
	// emptied slot 0 without removing its link.
	m.setIntent()
	if _, err := ns.PrepareRef(m.id, b.m.obj); err != nil {
		t.Fatal(err)
	}
	if err := m.ops.Update(le32(1), le32(idOf(b)), 0); err != nil {
		t.Fatal(err)
	}
	if err := m.ops.Delete(le32(0)); err != nil {
		t.Fatal(err)
	}
	aid, bid := idOf(a), idOf(b)
	_ = a.Close()
	_ = b.Close()
	if !objectExists(ns, aid) || !objectExists(ns, bid) {
		t.Fatal("links before the repair do not hold the maps")
	}
	// The next writer reconciles.
	c := mustCreate(t, ns, arrayAttr(4, 0))
	if err := outer.UpdateMap(le32(2), c, 0); err != nil {
		t.Fatal(err)
	}
	if objectExists(ns, aid) {
		t.Fatal("the emptied slot's map survived the repair")
	}
	if !objectExists(ns, bid) || !ns.RefIsTo(m.id, namespace.SlotName(le32(1)), bid) {
		t.Fatal("slot 1 lost its map in the repair")
	}
	for _, n := range ns.RefNames(m.id) {
		if namespace.IsTemp(n) {
			t.Fatalf("temporary link %s left", n)
		}
	}
	if n := slotLinks(ns, m.id); n != 2 {
		t.Fatalf("%d links, want 2", n)
	}
}

// TestMapInMapOtherProcess runs a child process that opens the outer map by
// its pin, reads the inner map through the id in slot 0, and puts a map it
// creates into slot 1 before it exits; the parent then finds the child's
// map alive by id, and the child's write in the inner map.
func TestMapInMapOtherProcess(t *testing.T) {
	ns := testNS(t)
	tmpl := mustCreate(t, ns, arrayAttr(4, 0))
	outer := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 4, tmpl))
	in, err := Create(func() *CreateAttr { a := arrayAttr(4, 0); return &a }(), Options{Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	inID := idOf(in)
	if err := outer.UpdateMap(le32(0), in, 0); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	if _, err := outer.Pin("outer"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BPFMAP_MIM_CHILD="+ns.Root())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v (%q)", err, line)
	}
	f := strings.Fields(line)
	if len(f) != 2 || f[0] != strconv.Itoa(int(inID)) {
		t.Fatalf("child said %q; inner id is %d", line, inID)
	}
	childID, _ := strconv.Atoi(f[1])
	v := make([]byte, 4)
	if err := outer.Lookup(le32(1), v, 0); err != nil || binary.LittleEndian.Uint32(v) != uint32(childID) {
		t.Fatalf("slot 1: %v %v, child's map %d", err, v, childID)
	}
	cm, err := OpenID(ns, uint32(childID), 0)
	if err != nil {
		t.Fatalf("the child's map died with the child while in a slot: %v", err)
	}
	_ = cm.Close()
	again, err := OpenID(ns, inID, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	val := make([]byte, 8)
	if err := again.Lookup(le32(3), val, 0); err != nil || val[0] != 99 {
		t.Fatalf("the child's write: %v %v", err, val)
	}
	// The outer map dies (unpinned, last handle closed): both inner maps go.
	if err := outer.Unpin(filepath.Join(ns.Root(), "outer")); err != nil {
		t.Fatal(err)
	}
	_ = outer.Close()
	_ = again.Close()
	if objectExists(ns, inID) || objectExists(ns, uint32(childID)) {
		t.Fatal("inner maps outlived the outer map")
	}
}

// mimChild is the child of TestMapInMapOtherProcess.
func mimChild(root string) error {
	ns, err := namespace.Open(root)
	if err != nil {
		return err
	}
	outer, err := OpenPinned(ns, "outer", 0)
	if err != nil {
		return err
	}
	defer outer.Close()
	in, err := outer.LookupMap(le32(0), 0)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := in.Update(le32(3), []byte{99, 0, 0, 0, 0, 0, 0, 0}, 0); err != nil {
		return err
	}
	mine, err := Create(func() *CreateAttr { a := arrayAttr(4, 0); return &a }(), Options{Namespace: ns})
	if err != nil {
		return err
	}
	defer mine.Close()
	if err := outer.UpdateMap(le32(1), mine, 0); err != nil {
		return err
	}
	fmt.Println(idOf(in), idOf(mine))
	return nil
}

func TestMain(m *testing.M) {
	if root := os.Getenv("BPFMAP_MIM_CHILD"); root != "" {
		run := mimChild
		if stage := os.Getenv("BPFMAP_MIM_CRASH"); stage != "" {
			run = func(root string) error { return mimCrashChild(root, stage) }
		}
		if os.Getenv("BPFMAP_MIM_CHURN") != "" {
			run = mimChurnChild
		}
		if err := run(root); err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// mimCrashChild changes slot 0 of the pinned map-in-map "outer" (to the
// map pinned at "b", or empties it for the stage "deleted") and is killed
// at stage, in the middle of the change.
func mimCrashChild(root, stage string) error {
	ns, err := namespace.Open(root)
	if err != nil {
		return err
	}
	outer, err := OpenPinned(ns, "outer", 0)
	if err != nil {
		return err
	}
	b, err := OpenPinned(ns, "b", 0)
	if err != nil {
		return err
	}
	crashPoint = func(s string) {
		if s == stage {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	if stage == "deleted" {
		err = outer.Delete(le32(0))
	} else {
		err = outer.UpdateMap(le32(0), b, 0)
	}
	return fmt.Errorf("not killed at %s: %v", stage, err)
}

// TestMapInMapWriterKilled kills a writer process of a map-in-map at each
// point between a slot change and its reference link change, and checks
// that no slot ever names a dead map, and that the next writer repairs the
// references: the map in the slot is held, the map that left the slot dies,
// no temporary link remains.
func TestMapInMapWriterKilled(t *testing.T) {
	for _, tc := range []struct {
		stage         string
		slot          string // the map in slot 0 afterwards ("" empty)
		aLives, bRefd bool
	}{
		{"prepared", "a", true, false},
		{"updated", "b", false, true},
		{"deleted", "", false, false},
	} {
		t.Run(tc.stage, func(t *testing.T) {
			ns := testNS(t)
			tmpl := mustCreate(t, ns, arrayAttr(4, 0))
			outer := mustCreate(t, ns, outerAttr(uapi.MapTypeHashOfMaps, 4, tmpl))
			a, _ := Create(func() *CreateAttr { x := arrayAttr(4, 0); return &x }(), Options{Namespace: ns})
			b := mustCreate(t, ns, arrayAttr(4, 0))
			aid, bid := idOf(a), idOf(b)
			if err := outer.UpdateMap(le32(0), a, 0); err != nil {
				t.Fatal(err)
			}
			_ = a.Close()
			if _, err := outer.Pin("outer"); err != nil {
				t.Fatal(err)
			}
			if _, err := b.Pin("b"); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "BPFMAP_MIM_CHILD="+ns.Root(), "BPFMAP_MIM_CRASH="+tc.stage)
			out, _ := cmd.CombinedOutput()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("child was not killed: %v %q", cmd.ProcessState, out)
			}
			if atomic.LoadUint32(&outer.m.r.Header().InnerOp) == 0 {
				t.Fatal("the child did not die in the middle of a slot change")
			}
			// Before any repair, the slot's map is alive.
			v := make([]byte, 4)
			if err := outer.Lookup(le32(0), v, 0); err == nil {
				id := binary.LittleEndian.Uint32(v)
				h, err := OpenID(ns, id, 0)
				if err != nil {
					t.Fatalf("slot 0 names map %d, which is dead: %v", id, err)
				}
				_ = h.Close()
			}
			// The next writer repairs.
			if err := outer.Delete(le32(3)); err != uapi.ENOENT {
				t.Fatalf("delete: %v", err)
			}
			if atomic.LoadUint32(&outer.m.r.Header().InnerOp) != 0 {
				t.Fatal("repair left the intent set")
			}
			want := map[string]uint32{"a": aid, "b": bid}[tc.slot]
			err := outer.Lookup(le32(0), v, 0)
			if tc.slot == "" && err != uapi.ENOENT || tc.slot != "" && (err != nil || binary.LittleEndian.Uint32(v) != want) {
				t.Fatalf("slot 0: %v %v, want %q", err, v, tc.slot)
			}
			if objectExists(ns, aid) != tc.aLives {
				t.Fatalf("map a alive %v, want %v", objectExists(ns, aid), tc.aLives)
			}
			outerID := idOf(outer)
			names := ns.RefNames(outerID)
			for _, n := range names {
				if namespace.IsTemp(n) {
					t.Fatalf("temporary link %s left", n)
				}
			}
			if tc.slot != "" && (len(names) != 1 || !ns.RefIsTo(outerID, namespace.SlotName(le32(0)), want)) {
				t.Fatalf("links %v do not hold slot 0's map", names)
			}
			if tc.slot == "" && len(names) != 0 {
				t.Fatalf("links %v left for an empty map", names)
			}
			// b keeps its pin whatever happened; unpinned, it lives only
			// if it is in the slot.
			_ = b.Close()
			if err := os.Remove(filepath.Join(ns.Root(), "b")); err != nil {
				t.Fatal(err)
			}
			ns.Sweep()
			if objectExists(ns, bid) != tc.bRefd {
				t.Fatalf("map b alive %v, want %v", objectExists(ns, bid), tc.bRefd)
			}
		})
	}
}

// TestMapInMapUnpinnedByHand: a map-in-map whose last pin is unlinked by
// hand with no process holding it is dead, and so are the maps only its
// slots held: opening one by id finds nothing.
func TestMapInMapUnpinnedByHand(t *testing.T) {
	ns := testNS(t)
	tmpl := mustCreate(t, ns, arrayAttr(4, 0))
	outer, _ := Create(func() *CreateAttr { x := outerAttr(uapi.MapTypeArrayOfMaps, 4, tmpl); return &x }(), Options{Namespace: ns})
	in, _ := Create(func() *CreateAttr { x := arrayAttr(4, 0); return &x }(), Options{Namespace: ns})
	inID := idOf(in)
	if err := outer.UpdateMap(le32(1), in, 0); err != nil {
		t.Fatal(err)
	}
	_ = in.Close()
	if _, err := outer.Pin("o"); err != nil {
		t.Fatal(err)
	}
	_ = outer.Close()
	if h, err := OpenID(ns, inID, 0); err != nil {
		t.Fatalf("inner map of a pinned map-in-map: %v", err)
	} else {
		_ = h.Close()
	}
	if err := os.Remove(filepath.Join(ns.Root(), "o")); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenID(ns, inID, 0); err != uapi.ENOENT {
		t.Fatalf("inner map of a dead map-in-map: %v", err)
	}
}

// TestMapInMapPercpuArrayMaxEntries: ARRAY and PERCPU_ARRAY inner maps
// must match the template's max_entries, unless an ARRAY template has
// BPF_F_INNER_MAP (as on the live 6.18.44 kernel, internal/difftest
// TestMapInMapUpdateCompat).
func TestMapInMapPercpuArrayMaxEntries(t *testing.T) {
	ns := testNS(t)
	pa := func(max uint32) CreateAttr {
		return CreateAttr{MapType: uint32(uapi.MapTypePercpuArray), KeySize: 4, ValueSize: 8, MaxEntries: max}
	}
	tmpl := mustCreate(t, ns, pa(4))
	outer := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 2, tmpl))
	if err := outer.UpdateMap(le32(0), mustCreate(t, ns, pa(8)), 0); err != uapi.EINVAL {
		t.Fatalf("percpu array with other max_entries: %v", err)
	}
	if err := outer.UpdateMap(le32(0), mustCreate(t, ns, pa(4)), 0); err != nil {
		t.Fatalf("percpu array with the same max_entries: %v", err)
	}
	atmpl := mustCreate(t, ns, arrayAttr(4, 0))
	aouter := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 2, atmpl))
	if err := aouter.UpdateMap(le32(0), mustCreate(t, ns, arrayAttr(8, 0)), 0); err != uapi.EINVAL {
		t.Fatalf("array with other max_entries: %v", err)
	}
	itmpl := mustCreate(t, ns, arrayAttr(4, uapi.FInnerMap))
	iouter := mustCreate(t, ns, outerAttr(uapi.MapTypeArrayOfMaps, 2, itmpl))
	if err := iouter.UpdateMap(le32(0), mustCreate(t, ns, arrayAttr(8, uapi.FInnerMap)), 0); err != nil {
		t.Fatalf("BPF_F_INNER_MAP array with other max_entries: %v", err)
	}
}

// churn changes random slots of outer among the maps pinned at p0..p3 (or
// empties them) n times.
func churn(outer *Handle, inners []*Handle, seed, n int) error {
	x := uint32(seed)*2654435761 + 1
	for range n {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		k := le32(x % 8)
		var err error
		if x%5 == 0 {
			err = outer.Delete(k)
			if err == uapi.ENOENT {
				err = nil
			}
		} else {
			err = outer.UpdateMap(k, inners[(x>>8)%uint32(len(inners))], 0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func mimChurnChild(root string) error {
	ns, err := namespace.Open(root)
	if err != nil {
		return err
	}
	outer, err := OpenPinned(ns, "outer", 0)
	if err != nil {
		return err
	}
	var inners []*Handle
	for i := range 4 {
		h, err := OpenPinned(ns, fmt.Sprintf("p%d", i), 0)
		if err != nil {
			return err
		}
		inners = append(inners, h)
	}
	return churn(outer, inners, 99, 3000)
}

// checkRefs checks that outer's reference links are exactly its slots'.
func checkRefs(t *testing.T, ns *namespace.NS, outer *Handle) {
	t.Helper()
	m := outer.m
	keys := m.slotKeys()
	names := ns.RefNames(m.id)
	if len(names) != len(keys) {
		t.Fatalf("%d links for %d occupied slots: %v", len(names), len(keys), names)
	}
	for _, k := range keys {
		if !ns.RefIsTo(m.id, namespace.SlotName(k), m.slotID(k)) {
			t.Fatalf("slot %x: link does not hold map %d", k, m.slotID(k))
		}
	}
}

// TestMapInMapConcurrentWriters changes slots from several goroutines and
// another process at once; afterwards the links match the slots exactly,
// and the maps in no slot are dead once their pins go.
func TestMapInMapConcurrentWriters(t *testing.T) {
	for _, typ := range []uapi.MapType{uapi.MapTypeArrayOfMaps, uapi.MapTypeHashOfMaps} {
		t.Run(TypeName(typ), func(t *testing.T) {
			ns := testNS(t)
			tmpl := mustCreate(t, ns, arrayAttr(4, 0))
			outer := mustCreate(t, ns, outerAttr(typ, 8, tmpl))
			if _, err := outer.Pin("outer"); err != nil {
				t.Fatal(err)
			}
			var inners []*Handle
			for i := range 4 {
				h := mustCreate(t, ns, arrayAttr(4, 0))
				if _, err := h.Pin(fmt.Sprintf("p%d", i)); err != nil {
					t.Fatal(err)
				}
				inners = append(inners, h)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "BPFMAP_MIM_CHILD="+ns.Root(), "BPFMAP_MIM_CHURN=1")
			var out strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for g := range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					errs <- churn(outer, inners, g, 2000)
				}()
				wg.Add(1)
				go func() {
					defer wg.Done()
					v := make([]byte, 4)
					for i := range 4000 {
						if err := outer.Lookup(le32(uint32(i%8)), v, 0); err == nil && binary.LittleEndian.Uint32(v) == 0 {
							errs <- fmt.Errorf("lookup returned id 0")
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Fatalf("child: %v %s", err, out.String())
			}
			checkRefs(t, ns, outer)
			held := map[uint32]bool{}
			for _, k := range outer.m.slotKeys() {
				held[outer.m.slotID(k)] = true
			}
			ids := make([]uint32, len(inners))
			for i, h := range inners {
				ids[i] = idOf(h)
				_ = h.Close()
				_ = os.Remove(filepath.Join(ns.Root(), fmt.Sprintf("p%d", i)))
			}
			ns.Sweep()
			for _, id := range ids {
				if objectExists(ns, id) != held[id] {
					t.Fatalf("map %d alive %v, in a slot %v", id, objectExists(ns, id), held[id])
				}
			}
		})
	}
}

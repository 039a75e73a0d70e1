//go:build linux

package difftest

// Differential tests of pinning, ids, info and freeze across handles: each
// scenario runs on a kernel map pinned in a fresh directory of a bpffs and
// on a bpfmap map of a fresh pin namespace (a t.TempDir()), through the
// public API, and compares errnos and what each handle observes.

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

const (
	tLPMTrie = 11

	// intMax is the first start id BPF_MAP_GET_NEXT_ID refuses.
	intMax = 1<<31 - 1
)

// bpffsDir returns a fresh directory on a bpffs, mounting one at
// /sys/fs/bpf if none is mounted there; it is removed, with its pins, when
// the test ends.
func bpffsDir(t *testing.T) string {
	t.Helper()
	const mnt = "/sys/fs/bpf"
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		if err := unix.Mount("bpf", mnt, "bpf", 0, ""); err != nil {
			t.Fatalf("mount a bpffs at %s: %v", mnt, err)
		}
	}
	dir, err := os.MkdirTemp(mnt, "bpfmap-difftest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// kfd is a kernel map fd that is closed exactly once (by close or at the
// end of the test), so a closed number that the process reuses is never
// closed again.
type kfd struct {
	fd     int
	closed bool
}

func (k *kfd) close() {
	if !k.closed {
		k.closed = true
		_ = kbpf.Close(k.fd)
	}
}

func track(t *testing.T, fd int) *kfd {
	k := &kfd{fd: fd}
	t.Cleanup(k.close)
	return k
}

func kCreate(t *testing.T, a *kbpf.CreateAttr) *kfd {
	t.Helper()
	fd, e := kbpf.CreateMap(a)
	if e != 0 {
		t.Fatalf("kernel: create %s: %v", attrString(a), e)
	}
	return track(t, fd)
}

func kGet(t *testing.T, path string, flags uint32) *kfd {
	t.Helper()
	fd, e := kbpf.ObjGet(path, flags)
	if e != 0 {
		t.Fatalf("kernel: OBJ_GET %s flags %#x: %v", path, flags, e)
	}
	return track(t, fd)
}

func kByID(t *testing.T, id uint32, flags uint32) *kfd {
	t.Helper()
	fd, e := kbpf.MapGetFDByID(id, flags)
	if e != 0 {
		t.Fatalf("kernel: GET_FD_BY_ID %d flags %#x: %v", id, flags, e)
	}
	return track(t, fd)
}

func kID(t *testing.T, fd int) uint32 {
	t.Helper()
	in, e := kbpf.Info(fd)
	if e != 0 {
		t.Fatalf("kernel: info of fd %d: %v", fd, e)
	}
	return in.ID
}

// kFrozen reads the frozen state of a kernel map fd from fdinfo.
func kFrozen(t *testing.T, fd int) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "frozen:"); ok {
			return strings.TrimSpace(v) == "1"
		}
	}
	t.Fatalf("kernel: no frozen line in fdinfo of fd %d:\n%s", fd, b)
	return false
}

// kIDLive reports whether GET_FD_BY_ID finds id (closing the fd it gets).
func kIDLive(t *testing.T, id uint32) bool {
	t.Helper()
	fd, e := kbpf.MapGetFDByID(id, 0)
	switch e {
	case 0:
		_ = kbpf.Close(fd)
		return true
	case syscall.ENOENT:
		return false
	}
	t.Fatalf("kernel: GET_FD_BY_ID %d: %v", id, e)
	return false
}

// specOf is the cilium/ebpf spec of a kernel create attr.
func specOf(a *kbpf.CreateAttr) *ebpf.MapSpec {
	return &ebpf.MapSpec{
		Name: strings.TrimRight(string(a.MapName[:]), "\x00"), Type: ebpf.MapType(a.MapType),
		KeySize: a.KeySize, ValueSize: a.ValueSize, MaxEntries: a.MaxEntries,
		Flags: a.MapFlags, MapExtra: a.MapExtra,
	}
}

// bCreate creates the bpfmap map of attr a in the namespace at root.
func bCreate(t *testing.T, root string, a *kbpf.CreateAttr) *bpfmap.Map {
	t.Helper()
	m, err := bpfmap.NewMapWithOptions(specOf(a), bpfmap.MapOptions{Namespace: root})
	if err != nil {
		t.Fatalf("bpfmap: create %s: %v", attrString(a), err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func bLoad(t *testing.T, path string, opts *ebpf.LoadPinOptions) *bpfmap.Map {
	t.Helper()
	m, err := bpfmap.LoadPinnedMap(path, opts)
	if err != nil {
		t.Fatalf("bpfmap: LoadPinnedMap %s %+v: %v", path, opts, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func bByID(t *testing.T, root string, id uint32) *bpfmap.Map {
	t.Helper()
	m, err := bpfmap.NewMapFromIDWithOptions(ebpf.MapID(id), bpfmap.MapOptions{Namespace: root})
	if err != nil {
		t.Fatalf("bpfmap: NewMapFromID %d: %v", id, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func bID(t *testing.T, m *bpfmap.Map) uint32 {
	t.Helper()
	in, err := m.Info()
	if err != nil {
		t.Fatalf("bpfmap: info: %v", err)
	}
	id, _ := in.ID()
	return uint32(id)
}

func bIDLive(t *testing.T, root string, id uint32) bool {
	t.Helper()
	m, err := bpfmap.NewMapFromIDWithOptions(ebpf.MapID(id), bpfmap.MapOptions{Namespace: root})
	switch e := errnoOf(err); e {
	case 0:
		_ = m.Close()
		return true
	case syscall.ENOENT:
		return false
	default:
		t.Fatalf("bpfmap: NewMapFromID %d: %v", id, err)
	}
	return false
}

// same reports a difference between the kernel's and bpfmap's errno for
// one step; want, if given, is what the kernel is documented to answer, so
// a change of the kernel is told apart from a bpfmap bug.
func same(t *testing.T, what string, k syscall.Errno, berr error, want ...syscall.Errno) {
	t.Helper()
	b := errnoOf(berr)
	if k != b {
		t.Errorf("%s: kernel %s, bpfmap %s (%v)", what, errName(k), errName(b), berr)
	}
	if len(want) > 0 && k != want[0] {
		t.Errorf("%s: the kernel answers %s, kernel-semantics.md says %s", what, errName(k), errName(want[0]))
	}
}

func le32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func le64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }

// hashAttr is a small HASH (u32 → u64) named name.
func hashAttr(name string) *kbpf.CreateAttr {
	return &kbpf.CreateAttr{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapName: name16(name)}
}

// bLookup looks key up in m as the kernel would fill an 8-byte value.
func bLookup(m *bpfmap.Map, key uint32) (uint64, error) {
	var v uint64
	err := m.Lookup(key, &v)
	return v, err
}

func kLookup(fd int, key uint32) (uint64, syscall.Errno) {
	v := make([]byte, 8)
	e := kbpf.Lookup(fd, le32(key), v, 0)
	return binary.NativeEndian.Uint64(v), e
}

func TestPinPaths(t *testing.T) {
	kbpf.Need(t)
	kdir, root := bpffsDir(t), t.TempDir()
	outside := t.TempDir()
	a := hashAttr("pin_paths")

	k := kCreate(t, a)
	m := bCreate(t, root, a)
	// Pin of a *Map that is pinned moves its pin (as cilium/ebpf's Pin), so
	// every further pin goes through a fresh clone: a handle that never
	// pinned, as a second fd of the kernel map.
	clone := func() *bpfmap.Map {
		c, err := m.Clone()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		return c
	}

	same(t, "pin at a fresh path", kbpf.ObjPin(k.fd, filepath.Join(kdir, "a"), 0),
		m.Pin(filepath.Join(root, "a")), 0)
	same(t, "pin at an existing path", kbpf.ObjPin(k.fd, filepath.Join(kdir, "a"), 0),
		clone().Pin(filepath.Join(root, "a")), syscall.EEXIST)
	same(t, "pin below a missing directory", kbpf.ObjPin(k.fd, filepath.Join(kdir, "missing", "a"), 0),
		clone().Pin(filepath.Join(root, "missing", "a")), syscall.ENOENT)
	same(t, "pin outside bpffs / the namespace", kbpf.ObjPin(k.fd, filepath.Join(outside, "k"), 0),
		clone().Pin(filepath.Join(outside, "b")), syscall.EPERM)
	same(t, "pin in a subdirectory", kbpf.ObjPin(k.fd, filepath.Join(mkdir(t, kdir, "sub"), "c"), 0),
		clone().Pin(filepath.Join(mkdir(t, root, "sub"), "c")), 0)
	same(t, "pin the same map at a second path", kbpf.ObjPin(k.fd, filepath.Join(kdir, "b"), 0),
		clone().Pin(filepath.Join(root, "b")), 0)
	same(t, "pin at a relative path that leaves the namespace", kbpf.ObjPin(k.fd, filepath.Join(outside, "rel"), 0),
		clone().Pin("../escape"), syscall.EPERM)
	same(t, "pin at a name with a dot", kbpf.ObjPin(k.fd, filepath.Join(kdir, "a.b"), 0),
		clone().Pin(filepath.Join(root, "a.b")), syscall.EPERM)

	for _, name := range []string{"a", "b", "sub/c"} {
		kst, kerr := os.Stat(filepath.Join(kdir, name))
		bst, berr := os.Stat(filepath.Join(root, name))
		if kerr != nil || berr != nil {
			t.Errorf("stat pin %s: kernel %v, bpfmap %v", name, kerr, berr)
			continue
		}
		if kst.Mode().Perm() != bst.Mode().Perm() || kst.Mode().Perm() != 0o600 {
			t.Errorf("pin %s mode: kernel %v, bpfmap %v (want 0600)", name, kst.Mode().Perm(), bst.Mode().Perm())
		}
	}

	// Every pin opens the same map: same id, and what one handle writes the
	// others read.
	kid, bid := kID(t, k.fd), bID(t, m)
	for i, name := range []string{"a", "b", "sub/c"} {
		kg := kGet(t, filepath.Join(kdir, name), 0)
		bg := bLoad(t, filepath.Join(root, name), nil)
		if got := kID(t, kg.fd); got != kid {
			t.Errorf("kernel: pin %s opens map %d, pinned map is %d", name, got, kid)
		}
		if got := bID(t, bg); got != bid {
			t.Errorf("bpfmap: pin %s opens map %d, pinned map is %d", name, got, bid)
		}
		key, val := uint32(i), uint64(100+i)
		same(t, "update through pin "+name, kbpf.Update(kg.fd, le32(key), le64(val), updAny), bg.Update(key, val, 0), 0)
		kv, ke := kLookup(k.fd, key)
		bv, be := bLookup(m, key)
		same(t, "lookup through the creating handle", ke, be, 0)
		if kv != val || bv != val {
			t.Errorf("value written through pin %s, read through the creating handle: kernel %d, bpfmap %d, want %d", name, kv, bv, val)
		}
	}
}

func mkdir(t *testing.T, parent, name string) string {
	t.Helper()
	d := filepath.Join(parent, name)
	if err := os.Mkdir(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestGetPinned(t *testing.T) {
	kbpf.Need(t)
	kdir, root := bpffsDir(t), t.TempDir()
	a := hashAttr("get_pinned")
	k := kCreate(t, a)
	m := bCreate(t, root, a)
	kpath, bpath := filepath.Join(kdir, "m"), filepath.Join(root, "m")
	same(t, "pin", kbpf.ObjPin(k.fd, kpath, 0), m.Pin(bpath), 0)
	same(t, "update", kbpf.Update(k.fd, le32(1), le64(11), updAny), m.Update(uint32(1), uint64(11), 0), 0)
	same(t, "update", kbpf.Update(k.fd, le32(2), le64(22), updAny), m.Update(uint32(2), uint64(22), 0), 0)

	get := func(what, kp, bp string, flags uint32, opts *ebpf.LoadPinOptions, want syscall.Errno) {
		t.Helper()
		fd, ke := kbpf.ObjGet(kp, flags)
		if ke == 0 {
			_ = kbpf.Close(fd)
		}
		bm, err := bpfmap.LoadPinnedMap(bp, opts)
		if err == nil {
			_ = bm.Close()
		}
		same(t, what, ke, err, want)
	}
	get("get a missing path", filepath.Join(kdir, "missing"), filepath.Join(root, "missing"), 0, nil, syscall.ENOENT)
	get("get a directory", mkdir(t, kdir, "dir"), mkdir(t, root, "dir"), 0, nil, syscall.EACCES)
	get("get with RDONLY|WRONLY", kpath, bpath, fRdonly|fWronly, &ebpf.LoadPinOptions{ReadOnly: true, WriteOnly: true}, syscall.EINVAL)

	// A read-only handle reads and may not write; a write-only handle the
	// other way round. Both are handles of the pinned map.
	kro, bro := kGet(t, kpath, fRdonly), bLoad(t, bpath, &ebpf.LoadPinOptions{ReadOnly: true})
	kwo, bwo := kGet(t, kpath, fWronly), bLoad(t, bpath, &ebpf.LoadPinOptions{WriteOnly: true})
	kid, bid := kID(t, k.fd), bID(t, m)
	for _, h := range []struct {
		name string
		fd   int
		m    *bpfmap.Map
	}{{"RDONLY", kro.fd, bro}, {"WRONLY", kwo.fd, bwo}} {
		if got := kID(t, h.fd); got != kid {
			t.Errorf("kernel: %s handle of map %d, pinned map is %d", h.name, got, kid)
		}
		if got := bID(t, h.m); got != bid {
			t.Errorf("bpfmap: %s handle of map %d, pinned map is %d", h.name, got, bid)
		}
	}
	_, ke := kLookup(kro.fd, 1)
	_, be := bLookup(bro, 1)
	same(t, "RDONLY: lookup", ke, be, 0)
	next := make([]byte, 4)
	var bnext uint32
	same(t, "RDONLY: next key", kbpf.GetNextKey(kro.fd, nil, next), bro.NextKey(nil, &bnext), 0)
	same(t, "RDONLY: update", kbpf.Update(kro.fd, le32(3), le64(33), updAny), bro.Update(uint32(3), uint64(33), 0), syscall.EPERM)
	same(t, "RDONLY: delete", kbpf.Delete(kro.fd, le32(1)), bro.Delete(uint32(1)), syscall.EPERM)
	var bv uint64
	same(t, "RDONLY: lookup and delete", kbpf.LookupAndDelete(kro.fd, le32(1), make([]byte, 8), 0),
		bro.LookupAndDelete(uint32(1), &bv), syscall.EPERM)
	same(t, "RDONLY: freeze", kbpf.Freeze(kro.fd), bro.Freeze(), syscall.EPERM)

	_, ke = kLookup(kwo.fd, 1)
	_, be = bLookup(bwo, 1)
	same(t, "WRONLY: lookup", ke, be, syscall.EPERM)
	same(t, "WRONLY: next key", kbpf.GetNextKey(kwo.fd, nil, next), bwo.NextKey(nil, &bnext), syscall.EPERM)
	same(t, "WRONLY: update", kbpf.Update(kwo.fd, le32(3), le64(33), updAny), bwo.Update(uint32(3), uint64(33), 0), 0)
	same(t, "WRONLY: delete", kbpf.Delete(kwo.fd, le32(2)), bwo.Delete(uint32(2)), 0)
	same(t, "WRONLY: lookup and delete", kbpf.LookupAndDelete(kwo.fd, le32(1), make([]byte, 8), 0),
		bwo.LookupAndDelete(uint32(1), &bv), syscall.EPERM)

	// The write-only handle's writes are seen through the read-only one.
	for _, key := range []uint32{1, 2, 3} {
		kv, ke := kLookup(kro.fd, key)
		bv, be := bLookup(bro, key)
		same(t, fmt.Sprintf("RDONLY: lookup %d after WRONLY writes", key), ke, be)
		if ke == 0 && be == nil && kv != bv {
			t.Errorf("RDONLY: lookup %d: kernel %d, bpfmap %d", key, kv, bv)
		}
	}
}

// TestGetNonMapFile records what BPF_OBJ_GET answers for a regular file
// that is not a pinned object, next to bpfmap's documented deviation
// (EINVAL: a file of the namespace that is not a bpfmap map).
func TestGetNonMapFile(t *testing.T) {
	kbpf.Need(t)
	root := t.TempDir()
	bCreate(t, root, hashAttr("ns_init")) // makes root a namespace
	other := filepath.Join(t.TempDir(), "plain")
	inNS := filepath.Join(root, "plain")
	for _, p := range []string{other, inNS} {
		if err := os.WriteFile(p, []byte("not a map"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, ke := kbpf.ObjGet(other, 0)
	if ke != syscall.EACCES {
		t.Errorf("kernel: OBJ_GET of a regular file outside bpffs: %s, want EACCES", errName(ke))
	}
	_, err := bpfmap.LoadPinnedMap(inNS, nil)
	if e := errnoOf(err); e != syscall.EINVAL {
		t.Errorf("bpfmap: LoadPinnedMap of a regular file in the namespace: %s (%v), want the documented EINVAL", errName(e), err)
	}
	_, err = bpfmap.LoadPinnedMap(other, nil)
	if e := errnoOf(err); e != syscall.EINVAL {
		t.Errorf("bpfmap: LoadPinnedMap of a file outside every namespace: %s (%v), want the documented EINVAL", errName(e), err)
	}
}

// lifetime steps are applied to both worlds; after each, the test records
// whether the map's id is live, and the two sequences must agree.
type lifetimeWorld interface {
	create()
	pin()
	get() // a second handle, from the pin
	unlink()
	unpinByHandle() // (*Map).Unpin / unlink through the second handle
	closeFirst()
	closeSecond()
	useSecond() syscall.Errno // update then lookup through the second handle
	live() bool
}

type kernelLife struct {
	t            *testing.T
	path         string
	first, other *kfd
	id           uint32
}

func (w *kernelLife) create() {
	w.first = kCreate(w.t, hashAttr("lifetime"))
	w.id = kID(w.t, w.first.fd)
}
func (w *kernelLife) pin() {
	if e := kbpf.ObjPin(w.first.fd, w.path, 0); e != 0 {
		w.t.Fatalf("kernel: pin: %v", e)
	}
}
func (w *kernelLife) get()           { w.other = kGet(w.t, w.path, 0) }
func (w *kernelLife) unlink()        { mustRemove(w.t, w.path) }
func (w *kernelLife) unpinByHandle() { mustRemove(w.t, w.path) }
func (w *kernelLife) closeFirst()    { w.first.close() }
func (w *kernelLife) closeSecond()   { w.other.close() }
func (w *kernelLife) useSecond() syscall.Errno {
	if e := kbpf.Update(w.other.fd, le32(7), le64(70), updAny); e != 0 {
		return e
	}
	v, e := kLookup(w.other.fd, 7)
	if e == 0 && v != 70 {
		w.t.Errorf("kernel: lookup after update: %d", v)
	}
	return e
}
func (w *kernelLife) live() bool { return kIDLive(w.t, w.id) }

type bpfmapLife struct {
	t            *testing.T
	root, path   string
	first, other *bpfmap.Map
	id           uint32
}

func (w *bpfmapLife) create() {
	w.first = bCreate(w.t, w.root, hashAttr("lifetime"))
	w.id = bID(w.t, w.first)
}
func (w *bpfmapLife) pin() {
	if err := w.first.Pin(w.path); err != nil {
		w.t.Fatalf("bpfmap: pin: %v", err)
	}
}
func (w *bpfmapLife) get()    { w.other = bLoad(w.t, w.path, nil) }
func (w *bpfmapLife) unlink() { mustRemove(w.t, w.path) }
func (w *bpfmapLife) unpinByHandle() {
	if err := w.other.Unpin(); err != nil {
		w.t.Fatalf("bpfmap: Unpin: %v", err)
	}
}
func (w *bpfmapLife) closeFirst()  { _ = w.first.Close() }
func (w *bpfmapLife) closeSecond() { _ = w.other.Close() }
func (w *bpfmapLife) useSecond() syscall.Errno {
	if err := w.other.Update(uint32(7), uint64(70), 0); err != nil {
		return errnoOf(err)
	}
	v, err := bLookup(w.other, 7)
	if err == nil && v != 70 {
		w.t.Errorf("bpfmap: lookup after update: %d", v)
	}
	return errnoOf(err)
}
func (w *bpfmapLife) live() bool { return bIDLive(w.t, w.root, w.id) }

func mustRemove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func TestPinLifetime(t *testing.T) {
	kbpf.Need(t)
	type step struct {
		name string
		do   func(lifetimeWorld)
	}
	var (
		create   = step{"create", lifetimeWorld.create}
		pin      = step{"pin", lifetimeWorld.pin}
		get      = step{"get from pin", lifetimeWorld.get}
		unlink   = step{"unlink pin", lifetimeWorld.unlink}
		unpin    = step{"Unpin via second handle", lifetimeWorld.unpinByHandle}
		close1   = step{"close first", lifetimeWorld.closeFirst}
		close2   = step{"close second", lifetimeWorld.closeSecond}
		useOther = step{"use second", func(w lifetimeWorld) {
			if e := w.useSecond(); e != 0 {
				panic(fmt.Sprintf("use second handle: %s", errName(e)))
			}
		}}
	)
	scenarios := []struct {
		name  string
		steps []step
	}{
		{"unpin while open, close first then second", []step{create, pin, get, unlink, useOther, close1, useOther, close2}},
		{"unpin while open, close second then first", []step{create, pin, get, unlink, close2, close1}},
		{"close all, pin keeps it, then unlink", []step{create, pin, close1, unlink}},
		{"close all, reopen, Unpin by handle, close", []step{create, pin, close1, get, useOther, unpin, useOther, close2}},
		{"no pin, close", []step{create, close1}},
	}
	for _, sc := range scenarios {
		t.Run(strings.ReplaceAll(sc.name, " ", "_"), func(t *testing.T) {
			kdir, root := bpffsDir(t), t.TempDir()
			worlds := []lifetimeWorld{
				&kernelLife{t: t, path: filepath.Join(kdir, "m")},
				&bpfmapLife{t: t, root: root, path: filepath.Join(root, "m")},
			}
			var trace [2][]string
			for i, w := range worlds {
				for _, s := range sc.steps {
					func() {
						defer func() {
							if r := recover(); r != nil {
								trace[i] = append(trace[i], fmt.Sprintf("%s: %v", s.name, r))
							}
						}()
						s.do(w)
						trace[i] = append(trace[i], fmt.Sprintf("%s: id live %v", s.name, w.live()))
					}()
				}
			}
			if !slices.Equal(trace[0], trace[1]) {
				t.Errorf("event sequences differ\nkernel: %s\nbpfmap: %s",
					strings.Join(trace[0], "; "), strings.Join(trace[1], "; "))
			}
			if last := trace[0][len(trace[0])-1]; !strings.HasSuffix(last, "id live false") {
				t.Errorf("kernel: map still live at the end: %s", last)
			}
		})
	}
}

func TestMapIDs(t *testing.T) {
	kbpf.Need(t)
	root := t.TempDir()
	a := hashAttr("ids")

	var kfds []*kfd
	var kids, bids []uint32
	var bmaps []*bpfmap.Map
	for range 3 {
		k := kCreate(t, a)
		kfds, kids = append(kfds, k), append(kids, kID(t, k.fd))
		m := bCreate(t, root, a)
		bmaps, bids = append(bmaps, m), append(bids, bID(t, m))
	}
	// Free the middle map; the next map gets a higher id, not the freed one.
	kfds[1].close()
	_ = bmaps[1].Close()
	if kIDLive(t, kids[1]) || bIDLive(t, root, bids[1]) {
		t.Errorf("freed id live: kernel %v, bpfmap %v", kIDLive(t, kids[1]), bIDLive(t, root, bids[1]))
	}
	k := kCreate(t, a)
	kids = append(kids, kID(t, k.fd))
	m := bCreate(t, root, a)
	bids = append(bids, bID(t, m))
	for i := 1; i < len(kids); i++ {
		if kids[i] <= kids[i-1] {
			t.Errorf("kernel: ids not increasing: %v", kids)
		}
		if bids[i] <= bids[i-1] {
			t.Errorf("bpfmap: ids not increasing: %v", bids)
		}
	}
	kLive := []uint32{kids[0], kids[2], kids[3]}
	bLive := []uint32{bids[0], bids[2], bids[3]}

	// GET_NEXT_ID walks the live ids in increasing order. The kernel's list
	// holds other maps too: keep the test's own.
	mine := map[uint32]bool{kids[0]: true, kids[1]: true, kids[2]: true, kids[3]: true}
	var kwalk []uint32
	prev := kids[0] - 1
	for range 1 << 20 {
		id, e := kbpf.MapGetNextID(prev)
		if e == syscall.ENOENT {
			break
		}
		if e != 0 {
			t.Fatalf("kernel: GET_NEXT_ID %d: %v", prev, e)
		}
		if id <= prev {
			t.Fatalf("kernel: GET_NEXT_ID %d = %d", prev, id)
		}
		if mine[id] {
			kwalk = append(kwalk, id)
		}
		prev = id
	}
	var bwalk []uint32
	var last error
	for id := ebpf.MapID(0); ; {
		next, err := bpfmap.MapGetNextIDWithOptions(id, bpfmap.MapOptions{Namespace: root})
		if err != nil {
			last = err
			break
		}
		if next <= id {
			t.Fatalf("bpfmap: MapGetNextID %d = %d", id, next)
		}
		bwalk = append(bwalk, uint32(next))
		id = next
	}
	if !slices.Equal(kwalk, kLive) {
		t.Errorf("kernel: GET_NEXT_ID walk %v, live maps %v", kwalk, kLive)
	}
	if !slices.Equal(bwalk, bLive) {
		t.Errorf("bpfmap: MapGetNextID walk %v, live maps %v", bwalk, bLive)
	}
	same(t, "GET_NEXT_ID past the last map", syscall.ENOENT, last)

	ns, err := namespace.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, start := range []uint32{intMax, intMax + 1, 1<<32 - 1} {
		_, ke := kbpf.MapGetNextID(start)
		_, berr := bpfmap.MapGetNextIDWithOptions(ebpf.MapID(start), bpfmap.MapOptions{Namespace: root})
		same(t, fmt.Sprintf("GET_NEXT_ID from %d", start), ke, berr, syscall.EINVAL)
		_, cerr := command.NextID(ns, start)
		same(t, fmt.Sprintf("command.NextID from %d", start), ke, cerr, syscall.EINVAL)
	}
	_, err = bpfmap.MapGetNextIDWithOptions(intMax-1, bpfmap.MapOptions{Namespace: root})
	_, ke := kbpf.MapGetNextID(intMax - 1)
	same(t, "GET_NEXT_ID from INT_MAX-1", ke, err, syscall.ENOENT)

	byID := func(what string, kid, bid, flags uint32, want syscall.Errno) {
		t.Helper()
		fd, ke := kbpf.MapGetFDByID(kid, flags)
		if ke == 0 {
			_ = kbpf.Close(fd)
		}
		h, err := command.OpenID(ns, bid, flags)
		if err == nil {
			_ = h.Close()
		}
		same(t, what, ke, err, want)
		if flags == 0 {
			m, err := bpfmap.NewMapFromIDWithOptions(ebpf.MapID(bid), bpfmap.MapOptions{Namespace: root})
			if err == nil {
				_ = m.Close()
			}
			same(t, what+" (NewMapFromID)", ke, err, want)
		}
	}
	byID("GET_FD_BY_ID 0", 0, 0, 0, syscall.ENOENT)
	byID("GET_FD_BY_ID of a freed id", kids[1], bids[1], 0, syscall.ENOENT)
	byID("GET_FD_BY_ID of an id never used", intMax-1, intMax-1, 0, syscall.ENOENT)
	byID("GET_FD_BY_ID of id 2^32-1", 1<<32-1, 1<<32-1, 0, syscall.ENOENT)
	byID("GET_FD_BY_ID RDONLY|WRONLY", kids[0], bids[0], fRdonly|fWronly, syscall.EINVAL)
	byID("GET_FD_BY_ID flags bit 0", kids[0], bids[0], 1, syscall.EINVAL)
	byID("GET_FD_BY_ID RDONLY|WRONLY of an unknown id", kids[1], bids[1], fRdonly|fWronly, syscall.EINVAL)
	byID("GET_FD_BY_ID RDONLY", kids[0], bids[0], fRdonly, 0)

	// An id handle opened read-only cannot write.
	kro := kByID(t, kids[0], fRdonly)
	bro, err := command.OpenID(ns, bids[0], fRdonly)
	if err != nil {
		t.Fatal(err)
	}
	defer bro.Close()
	same(t, "RDONLY id handle: update", kbpf.Update(kro.fd, le32(1), le64(1), updAny), bro.Update(le32(1), le64(1), updAny), syscall.EPERM)
	same(t, "RDONLY id handle: lookup of a missing key", kbpf.Lookup(kro.fd, le32(1), make([]byte, 8), 0),
		bro.Lookup(le32(1), make([]byte, 8), 0), syscall.ENOENT)
}

// infoRows are the map types whose info is compared after a get; the
// kernel maps are small.
func infoRows() []kbpf.CreateAttr {
	rows := []kbpf.CreateAttr{
		{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4},
		{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: fNoPrealloc | fRdonly},
		{MapType: tPercpuHash, KeySize: 8, ValueSize: 12, MaxEntries: 4},
		{MapType: tLRU, KeySize: 4, ValueSize: 8, MaxEntries: 16, MapFlags: fWronly},
		{MapType: tLRUPercpu, KeySize: 4, ValueSize: 8, MaxEntries: 16, MapFlags: fNoCommonLRU},
		{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4},
		{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: fMmapable | fRdonlyProg},
		{MapType: tPercpuArray, KeySize: 4, ValueSize: 4, MaxEntries: 2},
		{MapType: tQueue, ValueSize: 8, MaxEntries: 4},
		{MapType: tStack, ValueSize: 8, MaxEntries: 4, MapFlags: fRdonly},
		{MapType: tBloom, ValueSize: 4, MaxEntries: 8, MapExtra: 3},
		{MapType: tLPMTrie, KeySize: 8, ValueSize: 4, MaxEntries: 4, MapFlags: fNoPrealloc},
		{MapType: tRingbuf, MaxEntries: 4096},
	}
	for i := range rows {
		rows[i].MapName = name16(fmt.Sprintf("info_%d", i))
	}
	return rows
}

func flagsString(f uint32) string { return fmt.Sprintf("%#x", f) }

func TestInfoAfterGet(t *testing.T) {
	kbpf.Need(t)
	for i, a := range infoRows() {
		a := a
		name := fmt.Sprintf("%d_%s_flags%s", i, typeName(a.MapType), flagsString(a.MapFlags))
		if a.MapType == tLPMTrie {
			name = fmt.Sprintf("%d_LPM_TRIE", i)
		} else if a.MapType == tRingbuf {
			name = fmt.Sprintf("%d_RINGBUF", i)
		}
		t.Run(name, func(t *testing.T) {
			if !command.Implemented(uapi.MapType(a.MapType)) {
				t.Skipf("bpfmap does not implement map type %d", a.MapType)
			}
			kdir, root := bpffsDir(t), t.TempDir()
			k := kCreate(t, &a)
			m := bCreate(t, root, &a)
			same(t, "pin", kbpf.ObjPin(k.fd, filepath.Join(kdir, "m"), 0), m.Pin(filepath.Join(root, "m")), 0)
			kg := kGet(t, filepath.Join(kdir, "m"), 0)
			bg := bLoad(t, filepath.Join(root, "m"), nil)
			kbyID := kByID(t, kID(t, k.fd), 0)
			bbyID := bByID(t, root, bID(t, m))

			compare := func(when string, kfd int, bm *bpfmap.Map) {
				t.Helper()
				ki, e := kbpf.Info(kfd)
				if e != 0 {
					t.Fatalf("kernel: info: %v", e)
				}
				bi, err := bm.Info()
				if err != nil {
					t.Fatalf("bpfmap: info: %v", err)
				}
				bextra, _ := bi.MapExtra()
				kv := fmt.Sprintf("type %d key %d value %d max %d flags %#x name %q extra %d frozen %v",
					ki.Type, ki.KeySize, ki.ValueSize, ki.MaxEntries, ki.MapFlags, ki.NameString(), ki.MapExtra, kFrozen(t, kfd))
				bv := fmt.Sprintf("type %d key %d value %d max %d flags %#x name %q extra %d frozen %v",
					bi.Type, bi.KeySize, bi.ValueSize, bi.MaxEntries, bi.Flags, bi.Name, bextra, bi.Frozen())
				if kv != bv {
					t.Errorf("%s: info differs\nkernel: %s\nbpfmap: %s", when, kv, bv)
				}
				if ki.MapFlags&(fRdonly|fWronly) != 0 {
					t.Errorf("%s: kernel info keeps the fd mode flags: %#x", when, ki.MapFlags)
				}
				// The handle's own view must agree with its info.
				if bm.Type() != bi.Type || bm.KeySize() != bi.KeySize || bm.ValueSize() != bi.ValueSize ||
					bm.MaxEntries() != bi.MaxEntries || bm.Flags() != bi.Flags {
					t.Errorf("%s: bpfmap handle says type %v key %d value %d max %d flags %#x, its info %+v",
						when, bm.Type(), bm.KeySize(), bm.ValueSize(), bm.MaxEntries(), bm.Flags(), *bi)
				}
			}
			compare("creating handle", k.fd, m)
			compare("handle from the pin", kg.fd, bg)
			compare("handle from the id", kbyID.fd, bbyID)

			// Freeze through the pin's handle; every handle then shows it
			// (a map created RDONLY cannot be frozen through that fd, but the
			// pin's handle is read-write).
			same(t, "freeze through the pin's handle", kbpf.Freeze(kg.fd), bg.Freeze(), 0)
			same(t, "freeze again through the creating handle", kbpf.Freeze(k.fd), m.Freeze(), syscall.EPERM)
			compare("creating handle after freeze", k.fd, m)
			compare("handle from the id after freeze", kbyID.fd, bbyID)
			kg2 := kGet(t, filepath.Join(kdir, "m"), 0)
			bg2 := bLoad(t, filepath.Join(root, "m"), nil)
			compare("handle from the pin opened after freeze", kg2.fd, bg2)
		})
	}
}

func TestFreezeShared(t *testing.T) {
	kbpf.Need(t)
	kdir, root := bpffsDir(t), t.TempDir()
	a := &kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: fMmapable, MapName: name16("freeze")}
	k := kCreate(t, a)
	m := bCreate(t, root, a)
	kpath, bpath := filepath.Join(kdir, "m"), filepath.Join(root, "m")
	same(t, "pin", kbpf.ObjPin(k.fd, kpath, 0), m.Pin(bpath), 0)
	kg := kGet(t, kpath, 0)
	bg := bLoad(t, bpath, nil)
	ns, err := namespace.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	bh, err := command.OpenPinned(ns, bpath, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer bh.Close()

	// A writable mapping through the pin's handle blocks freezing through
	// the creating handle.
	kmem, ke := kbpf.Mmap(kg.fd, 4096, unix.PROT_READ|unix.PROT_WRITE)
	bmem, err := bg.Memory()
	if ke != 0 || err != nil || bmem.ReadOnly() {
		t.Fatalf("writable mapping: kernel %v, bpfmap %v (read-only %v)", ke, err, bmem != nil && bmem.ReadOnly())
	}
	binary.NativeEndian.PutUint64(kmem[8:], 0x1234)
	if _, err := bmem.WriteAt(le64(0x1234), 8); err != nil {
		t.Fatal(err)
	}
	kv, ke := kLookup(k.fd, 1)
	bv, be := bLookup(m, 1)
	same(t, "lookup of a value written through the mapping", ke, be, 0)
	if kv != 0x1234 || bv != 0x1234 {
		t.Errorf("value written through the mapping: kernel %#x, bpfmap %#x", kv, bv)
	}
	same(t, "freeze with a writable mapping of another handle", kbpf.Freeze(k.fd), m.Freeze(), syscall.EBUSY)
	same(t, "update after the failed freeze", kbpf.Update(kg.fd, le32(2), le64(2), updAny), bg.Update(uint32(2), uint64(2), 0), 0)

	// A read-only mapping does not block freezing.
	kromem, ke := kbpf.Mmap(k.fd, 4096, unix.PROT_READ)
	bromem, release, err := bh.Memory(false)
	same(t, "read-only mapping", ke, err, 0)

	if err := kbpf.Munmap(kmem); err != nil {
		t.Fatal(err)
	}
	_ = bmem.Close()
	same(t, "freeze after the writable mapping is gone", kbpf.Freeze(k.fd), m.Freeze(), 0)
	if kromem != nil {
		_ = kbpf.Munmap(kromem)
	}
	if bromem != nil {
		release()
	}

	same(t, "update through another handle of the frozen map", kbpf.Update(kg.fd, le32(1), le64(9), updAny),
		bg.Update(uint32(1), uint64(9), 0), syscall.EPERM)
	same(t, "update through the freezing handle", kbpf.Update(k.fd, le32(1), le64(9), updAny),
		m.Update(uint32(1), uint64(9), 0), syscall.EPERM)
	same(t, "freeze twice", kbpf.Freeze(k.fd), m.Freeze(), syscall.EPERM)
	same(t, "freeze through another handle", kbpf.Freeze(kg.fd), bg.Freeze(), syscall.EPERM)
	kv, ke = kLookup(kg.fd, 1)
	bv, be = bLookup(bg, 1)
	same(t, "lookup in the frozen map", ke, be, 0)
	if kv != bv || kv != 0x1234 {
		t.Errorf("lookup in the frozen map: kernel %#x, bpfmap %#x", kv, bv)
	}

	// Writable mappings of a frozen map are refused; read-only ones work.
	_, ke = kbpf.Mmap(kg.fd, 4096, unix.PROT_READ|unix.PROT_WRITE)
	_, _, err = bh.Memory(true)
	same(t, "writable mapping of a frozen map", ke, err, syscall.EPERM)
	bmem, err = bg.Memory()
	if err != nil || !bmem.ReadOnly() {
		t.Errorf("bpfmap: Memory of a frozen map: %v, read-only %v; the kernel refuses a writable mapping", err, err == nil && bmem.ReadOnly())
	}
	if bmem != nil {
		_ = bmem.Close()
	}
	kmem, ke = kbpf.Mmap(kg.fd, 4096, unix.PROT_READ)
	_, release, err = bh.Memory(false)
	same(t, "read-only mapping of a frozen map", ke, err, 0)
	if ke == 0 {
		_ = kbpf.Munmap(kmem)
	}
	if err == nil {
		release()
	}
}

func TestValuesAcrossHandles(t *testing.T) {
	kbpf.Need(t)
	for _, a := range []kbpf.CreateAttr{
		{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapName: name16("across_hash")},
		{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 8, MapName: name16("across_array")},
		{MapType: tLRU, KeySize: 4, ValueSize: 8, MaxEntries: 64, MapName: name16("across_lru")},
	} {
		a := a
		t.Run(typeName(a.MapType), func(t *testing.T) {
			kdir, root := bpffsDir(t), t.TempDir()
			k := kCreate(t, &a)
			m := bCreate(t, root, &a)
			same(t, "pin", kbpf.ObjPin(k.fd, filepath.Join(kdir, "m"), 0), m.Pin(filepath.Join(root, "m")), 0)
			kp := kGet(t, filepath.Join(kdir, "m"), 0)
			bp := bLoad(t, filepath.Join(root, "m"), nil)
			ki := kByID(t, kID(t, k.fd), 0)
			bi := bByID(t, root, bID(t, m))
			type handle struct {
				name string
				fd   int
				m    *bpfmap.Map
			}
			hs := []handle{{"creating", k.fd, m}, {"pin", kp.fd, bp}, {"id", ki.fd, bi}}
			for i, w := range hs {
				key, val := uint32(i+1), uint64(1000*(i+1))
				same(t, "update through the "+w.name+" handle", kbpf.Update(w.fd, le32(key), le64(val), updAny),
					w.m.Update(key, val, 0), 0)
				for _, r := range hs {
					kv, ke := kLookup(r.fd, key)
					bv, be := bLookup(r.m, key)
					what := fmt.Sprintf("lookup %d through the %s handle after an update through the %s handle", key, r.name, w.name)
					same(t, what, ke, be, 0)
					if kv != val || bv != val {
						t.Errorf("%s: kernel %d, bpfmap %d, want %d", what, kv, bv, val)
					}
				}
			}
			if a.MapType == tArray {
				return
			}
			same(t, "delete through the id handle", kbpf.Delete(ki.fd, le32(2)), bi.Delete(uint32(2)), 0)
			for _, r := range hs {
				_, ke := kLookup(r.fd, 2)
				_, be := bLookup(r.m, 2)
				same(t, "lookup of the deleted key through the "+r.name+" handle", ke, be, syscall.ENOENT)
			}
		})
	}
}

// TestMmapModes compares mapping a BPF_F_MMAPABLE array through handles of
// each access mode (mmap(2) of the map fd; command.Handle.Memory, the view
// behind (*bpfmap.Map).Memory), for a plain map and a BPF_F_RDONLY_PROG one.
func TestMmapModes(t *testing.T) {
	kbpf.Need(t)
	for _, flags := range []uint32{fMmapable, fMmapable | fRdonlyProg} {
		t.Run(flagsString(flags), func(t *testing.T) {
			a := &kbpf.CreateAttr{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: flags, MapName: name16("mmap_modes")}
			compareMmap(t, a, true)
		})
	}
}

// compareMmap pins a kernel map and a bpfmap map made from a, and compares
// mapping them through handles of each access mode, writable or not,
// before and after freezing (mmap(2) of the map fd against
// command.Handle.Memory). With public it also compares (*bpfmap.Map).Memory
// with cilium/ebpf's mmap sequence on the kernel fd.
func compareMmap(t *testing.T, a *kbpf.CreateAttr, public bool) {
	kdir, root := bpffsDir(t), t.TempDir()
	k := kCreate(t, a)
	m := bCreate(t, root, a)
	kpath, bpath := filepath.Join(kdir, "m"), filepath.Join(root, "m")
	same(t, "pin", kbpf.ObjPin(k.fd, kpath, 0), m.Pin(bpath), 0)
	ns, err := namespace.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, frozen := range []bool{false, true} {
		if frozen {
			same(t, "freeze", kbpf.Freeze(k.fd), m.Freeze(), 0)
		}
		for _, mode := range []uint32{0, fRdonly, fWronly} {
			kh := kGet(t, kpath, mode)
			bh, err := command.OpenPinned(ns, bpath, mode)
			if err != nil {
				t.Fatal(err)
			}
			for _, writable := range []bool{false, true} {
				prot := unix.PROT_READ
				if writable {
					prot |= unix.PROT_WRITE
				}
				kmem, ke := kbpf.Mmap(kh.fd, 4096, prot)
				if ke == 0 {
					_ = kbpf.Munmap(kmem)
				}
				_, release, err := bh.Memory(writable)
				if err == nil {
					release()
				}
				same(t, fmt.Sprintf("frozen %v: mapping (writable %v) through a handle opened with flags %#x", frozen, writable, mode), ke, err)
			}
			_ = bh.Close()
			if !public {
				kh.close()
				continue
			}
			// The public view follows cilium/ebpf's Map.Memory: a
			// read-write mapping, or read-only if that fails with EPERM
			// or EACCES.
			ke, kro := ebpfMemory(kh.fd)
			kh.close()
			bm := bLoad(t, bpath, &ebpf.LoadPinOptions{ReadOnly: mode == fRdonly, WriteOnly: mode == fWronly})
			mem, err := bm.Memory()
			bro := err == nil && mem.ReadOnly()
			if err == nil {
				_ = mem.Close()
			}
			what := fmt.Sprintf("frozen %v: (*Map).Memory of a handle opened with flags %#x (kernel: ebpf's mmap sequence)", frozen, mode)
			same(t, what, ke, err)
			if ke == 0 && err == nil && kro != bro {
				t.Errorf("%s: kernel read-only %v, bpfmap read-only %v", what, kro, bro)
			}
			_ = bm.Close()
		}
	}
}

// ebpfMemory maps a kernel map fd as cilium/ebpf's Map.Memory does: read and
// write, or read-only when that is refused with EPERM or EACCES. It returns
// the errno and whether the mapping is read-only.
func ebpfMemory(fd int) (syscall.Errno, bool) {
	b, e := kbpf.Mmap(fd, 4096, unix.PROT_READ|unix.PROT_WRITE)
	ro := false
	if e == syscall.EPERM || e == syscall.EACCES {
		ro = true
		b, e = kbpf.Mmap(fd, 4096, unix.PROT_READ)
	}
	if e == 0 {
		_ = kbpf.Munmap(b)
	}
	return e, ro
}

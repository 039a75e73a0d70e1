package bpfmap_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// testNamespace returns a fresh namespace root for one test.
func testNamespace(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("maps are shared between processes on Linux only")
	}
	return t.TempDir()
}

func hashSpec(name string) *ebpf.MapSpec {
	return &ebpf.MapSpec{Name: name, Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 64}
}

func objects(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, ".bpfmap", "maps"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestPinLoadAndLifetime(t *testing.T) {
	root := testNamespace(t)
	m, err := bpfmap.NewMapWithOptions(hashSpec("pinned"), bpfmap.MapOptions{Namespace: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Put(uint32(1), uint64(100)); err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(root, "pinned")
	if err := m.Pin(pin); err != nil {
		t.Fatal(err)
	}
	if !m.IsPinned() {
		t.Fatal("IsPinned false after Pin")
	}
	fi, err := os.Stat(pin)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("pin file: %v, mode %v", err, fi.Mode())
	}
	info, _ := m.Info()
	id, _ := info.ID()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	// The pin keeps the map alive with no handle open.
	if got := objects(t, root); len(got) != 1 {
		t.Fatalf("objects after close of a pinned map: %v", got)
	}
	l, err := bpfmap.LoadPinnedMap(pin, nil)
	if err != nil {
		t.Fatal(err)
	}
	var v uint64
	if err := l.Lookup(uint32(1), &v); err != nil || v != 100 {
		t.Fatalf("lookup through the pin: %v, %d", err, v)
	}
	li, _ := l.Info()
	if lid, _ := li.ID(); lid != id || li.Name != "pinned" || li.KeySize != 4 || li.ValueSize != 8 || li.MaxEntries != 64 {
		t.Fatalf("loaded map info %+v id %d, want id %d", li, lid, id)
	}
	byID, err := bpfmap.NewMapFromIDWithOptions(id, bpfmap.MapOptions{Namespace: root})
	if err != nil {
		t.Fatal(err)
	}
	if err := byID.Put(uint32(2), uint64(200)); err != nil {
		t.Fatal(err)
	}
	if err := l.Lookup(uint32(2), &v); err != nil || v != 200 {
		t.Fatalf("write by id not seen through the pin: %v %d", err, v)
	}
	byID.Close()
	if err := l.Unpin(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pin); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pin still there after Unpin: %v", err)
	}
	if got := objects(t, root); len(got) != 1 {
		t.Fatalf("an open map died at unpin: %v", got)
	}
	l.Close()
	if got := objects(t, root); len(got) != 0 {
		t.Fatalf("objects after the last close of an unpinned map: %v", got)
	}
	if _, err := bpfmap.NewMapFromIDWithOptions(id, bpfmap.MapOptions{Namespace: root}); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("NewMapFromID of a dead map: %v, want ENOENT", err)
	}
}

func TestPinErrors(t *testing.T) {
	root := testNamespace(t)
	opts := bpfmap.MapOptions{Namespace: root}
	m, err := bpfmap.NewMapWithOptions(hashSpec("a"), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Pin(filepath.Join(root, "a")); err != nil {
		t.Fatal(err)
	}
	other, _ := bpfmap.NewMapWithOptions(hashSpec("b"), opts)
	defer other.Close()
	if err := os.Mkdir(filepath.Join(root, "dir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "junk"), []byte("not a map"), 0o600); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(filepath.Join(root, "a"))
	if err := os.WriteFile(filepath.Join(root, "copy"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"pin over an existing pin", other.Pin(filepath.Join(root, "a")), syscall.EEXIST},
		{"pin into a missing directory", other.Pin(filepath.Join(root, "nodir", "b")), syscall.ENOENT},
		{"pin outside the namespace", other.Pin(filepath.Join(t.TempDir(), "b")), syscall.EPERM},
		{"pin into the internal directory", other.Pin(filepath.Join(root, ".bpfmap", "b")), syscall.EPERM},
		{"load a missing pin", loadErr(filepath.Join(root, "missing"), nil), syscall.ENOENT},
		{"load a directory", loadErr(filepath.Join(root, "dir"), nil), syscall.EACCES},
		{"load a file that is not a map", loadErr(filepath.Join(root, "junk"), nil), syscall.EINVAL},
		{"load a copy of a pin", loadErr(filepath.Join(root, "copy"), nil), syscall.EINVAL},
		{"load read-only and write-only", loadErr(filepath.Join(root, "a"), &ebpf.LoadPinOptions{ReadOnly: true, WriteOnly: true}), syscall.EINVAL},
		{"load outside any namespace", loadErr(filepath.Join(t.TempDir(), "x"), nil), syscall.EINVAL},
	} {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, c.err, c.want)
		}
	}
	private, err := bpfmap.NewMapWithOptions(hashSpec("p"), bpfmap.MapOptions{Private: true})
	if err != nil {
		t.Fatal(err)
	}
	defer private.Close()
	if err := private.Pin(filepath.Join(root, "p")); !errors.Is(err, syscall.EPERM) {
		t.Errorf("pin of a private map: %v, want EPERM", err)
	}
}

func loadErr(path string, opts *ebpf.LoadPinOptions) error {
	m, err := bpfmap.LoadPinnedMap(path, opts)
	if err == nil {
		m.Close()
	}
	return err
}

func TestLoadPinnedAccessModes(t *testing.T) {
	root := testNamespace(t)
	m, err := bpfmap.NewMapWithOptions(hashSpec("modes"), bpfmap.MapOptions{Namespace: root})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pin := filepath.Join(root, "modes")
	if err := m.Pin(pin); err != nil {
		t.Fatal(err)
	}
	defer m.Unpin()
	m.Put(uint32(1), uint64(1))
	ro, err := bpfmap.LoadPinnedMap(pin, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	var v uint64
	if err := ro.Lookup(uint32(1), &v); err != nil || v != 1 {
		t.Fatalf("read-only lookup: %v", err)
	}
	if err := ro.Put(uint32(2), uint64(2)); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("read-only update: %v, want EPERM", err)
	}
	wo, err := bpfmap.LoadPinnedMap(pin, &ebpf.LoadPinOptions{WriteOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer wo.Close()
	if err := wo.Lookup(uint32(1), &v); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("write-only lookup: %v, want EPERM", err)
	}
	if err := wo.Put(uint32(2), uint64(2)); err != nil {
		t.Fatalf("write-only update: %v", err)
	}
	// Freezing through one handle takes write permission from all.
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := wo.Put(uint32(3), uint64(3)); !errors.Is(err, syscall.EPERM) {
		t.Fatalf("update of a frozen map through another handle: %v, want EPERM", err)
	}
}

func TestPinByNameAndNextID(t *testing.T) {
	root := testNamespace(t)
	spec := hashSpec("byname")
	spec.Pinning = ebpf.PinByName
	opts := bpfmap.MapOptions{Namespace: root}
	a, err := bpfmap.NewMapWithOptions(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := bpfmap.NewMapWithOptions(spec, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a.Put(uint32(7), uint64(70))
	var v uint64
	if err := b.Lookup(uint32(7), &v); err != nil || v != 70 {
		t.Fatalf("second PinByName did not open the first map: %v %d", err, v)
	}
	bad := *spec
	bad.ValueSize = 16
	if _, err := bpfmap.NewMapWithOptions(&bad, opts); !errors.Is(err, ebpf.ErrMapIncompatible) {
		t.Fatalf("incompatible spec: %v, want ErrMapIncompatible", err)
	}
	c, _ := bpfmap.NewMapWithOptions(hashSpec("other"), opts)
	defer c.Close()
	var ids []ebpf.MapID
	for id := ebpf.MapID(0); ; {
		next, err := bpfmap.MapGetNextIDWithOptions(id, opts)
		if errors.Is(err, syscall.ENOENT) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, next)
		id = next
	}
	if len(ids) != 2 || ids[0] >= ids[1] {
		t.Fatalf("ids %v, want the two live maps in increasing order", ids)
	}
	if err := a.Unpin(); err != nil {
		t.Fatal(err)
	}
}

package sharetest

import (
	"errors"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func init() {
	roles["create"] = createRole
	roles["mmap"] = mmapRole
	roles["freeze"] = freezeRole
	roles["update"] = updateRole
}

// createRole creates a hash map holding key i → i*10 for i < 8, pins it
// at Pin unless Pin is empty, reports its id and exits — or, with Payload
// 1, waits to be killed — without closing it.
func createRole(a childArgs) (any, error) {
	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Name: "created", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 16},
		bpfmap.MapOptions{Namespace: a.Root})
	if err != nil {
		return nil, err
	}
	for i := range uint32(8) {
		if err := m.Put(i, uint64(i)*10); err != nil {
			return nil, err
		}
	}
	if a.Pin != "" {
		if err := m.Pin(a.Pin); err != nil {
			return nil, err
		}
	}
	info, err := m.Info()
	if err != nil {
		return nil, err
	}
	id, _ := info.ID()
	if a.Payload == 1 {
		fmt.Printf("RESULT %d\n", id)
		select {} // until killed
	}
	return id, nil // exits without Close: the kernel drops the flock
}

func TestPinnedMapOutlivesItsCreator(t *testing.T) {
	skipUnlessLinux(t)
	root := t.TempDir()
	pin := root + "/made-by-child"
	var id ebpf.MapID
	start(t, "create", childArgs{Root: root, Pin: pin}).wait(t, 30*time.Second, &id)
	m, err := bpfmap.LoadPinnedMap(pin, nil)
	if err != nil {
		t.Fatalf("the pin of a map whose creator exited: %v", err)
	}
	defer m.Close()
	for i := range uint32(8) {
		var v uint64
		if err := m.Lookup(i, &v); err != nil || v != uint64(i)*10 {
			t.Fatalf("key %d: %d, %v; want %d", i, v, err, i*10)
		}
	}
	info, _ := m.Info()
	if got, _ := info.ID(); got != id {
		t.Fatalf("pinned map has id %d, the child created %d", got, id)
	}
	// A sweep must not take a pinned map whose creator is gone.
	if next, err := bpfmap.MapGetNextIDWithOptions(0, bpfmap.MapOptions{Namespace: root}); err != nil || next != id {
		t.Fatalf("MapGetNextID: %d, %v; want %d", next, err, id)
	}
	if err := m.Unpin(); err != nil {
		t.Fatal(err)
	}
	m.Close()
	if got := objects(t, root); len(got) != 0 {
		t.Fatalf("objects left after unpin and last close: %v", got)
	}
}

// An unpinned map dies with the last process holding it, whether that
// process exits or is killed: the next sweep (MapGetNextID runs one)
// removes its file.
func TestUnpinnedMapDiesWithItsOnlyHolder(t *testing.T) {
	skipUnlessLinux(t)
	for _, killed := range []bool{false, true} {
		t.Run(fmt.Sprintf("killed=%v", killed), func(t *testing.T) {
			root := t.TempDir()
			opts := bpfmap.MapOptions{Namespace: root}
			var id ebpf.MapID
			if !killed {
				start(t, "create", childArgs{Root: root}).wait(t, 30*time.Second, &id)
			} else {
				c, err := startCrash("create", childArgs{Root: root, Payload: 1})
				if err != nil {
					t.Fatal(err)
				}
				select {
				case <-c.ready:
				case <-time.After(30 * time.Second):
					c.kill()
					t.Fatal("child did not create its map")
				}
				// While the child lives, the map is there for others.
				if next, err := bpfmap.MapGetNextIDWithOptions(0, opts); err != nil {
					t.Fatalf("map of a live child not listed: %v", err)
				} else if other, err := bpfmap.NewMapFromIDWithOptions(next, opts); err != nil {
					t.Fatalf("map of a live child: %v", err)
				} else {
					var v uint64
					if err := other.Lookup(uint32(3), &v); err != nil || v != 30 {
						t.Fatalf("lookup in a live child's map: %d, %v", v, err)
					}
					other.Close()
				}
				if err := c.kill(); err != nil {
					t.Fatal(err)
				}
			}
			if next, err := bpfmap.MapGetNextIDWithOptions(0, opts); !errors.Is(err, syscall.ENOENT) {
				t.Fatalf("MapGetNextID after the only holder ended: %d, %v; want ENOENT", next, err)
			}
			if got := objects(t, root); len(got) != 0 {
				t.Fatalf("leaked map files: %v", got)
			}
			if id != 0 {
				if _, err := bpfmap.NewMapFromIDWithOptions(id, opts); !errors.Is(err, syscall.ENOENT) {
					t.Fatalf("NewMapFromID of a dead map: %v, want ENOENT", err)
				}
			}
		})
	}
}

// mmapRole checks, on a pinned BPF_F_MMAPABLE array of u64, that index 0
// holds Payload (written by the parent through its Memory), then stores
// Payload+1 at index 1 with Update and Payload+2 at index 2 through its own
// Memory.
func mmapRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	var v uint64
	if err := m.Lookup(uint32(0), &v); err != nil || v != a.Payload {
		return nil, fmt.Errorf("lookup of index 0 written through the parent's Memory: %#x, %v; want %#x", v, err, a.Payload)
	}
	if err := m.Put(uint32(1), a.Payload+1); err != nil {
		return nil, err
	}
	mem, err := m.Memory()
	if err != nil {
		return nil, err
	}
	defer mem.Close()
	var b [8]byte
	putU64(b[:], a.Payload+2)
	if _, err := mem.WriteAt(b[:], 2*8); err != nil {
		return nil, err
	}
	return 0, nil
}

func TestMmapableArrayAcrossProcesses(t *testing.T) {
	m, root, pin := newPinned(t, &ebpf.MapSpec{Name: "mmap", Type: ebpf.Array, KeySize: 4, ValueSize: 8, MaxEntries: 16, Flags: uapi.FMmapable})
	mem, err := m.Memory()
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	const x = 0x1122334455667788
	var b [8]byte
	putU64(b[:], x)
	if _, err := mem.WriteAt(b[:], 0); err != nil {
		t.Fatal(err)
	}
	start(t, "mmap", childArgs{Root: root, Pin: pin, Payload: x}).wait(t, 30*time.Second, nil)
	if _, err := mem.ReadAt(b[:], 8); err != nil || getU64(b[:]) != x+1 {
		t.Errorf("the child's Update of index 1 read through this process's Memory: %#x, %v", getU64(b[:]), err)
	}
	var v uint64
	if err := m.Lookup(uint32(2), &v); err != nil || v != x+2 {
		t.Errorf("the child's Memory write of index 2 seen by Lookup: %#x, %v", v, err)
	}
}

// freezeRole freezes the pinned map.
func freezeRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return 0, m.Freeze()
}

// updateRole tries one update of the pinned map and reports the error.
func updateRole(a childArgs) (any, error) {
	m, err := bpfmap.LoadPinnedMap(a.Pin, nil)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	err = m.Put(uint32(1), uint64(1))
	if errors.Is(err, errEPERM) {
		return "EPERM", nil
	}
	return fmt.Sprint(err), nil
}

func TestFreezeAcrossProcesses(t *testing.T) {
	spec := &ebpf.MapSpec{Name: "frz", Type: ebpf.Hash, KeySize: 4, ValueSize: 8, MaxEntries: 4}
	t.Run("child freezes", func(t *testing.T) {
		m, root, pin := newPinned(t, spec)
		if err := m.Put(uint32(1), uint64(1)); err != nil {
			t.Fatal(err)
		}
		start(t, "freeze", childArgs{Root: root, Pin: pin}).wait(t, 30*time.Second, nil)
		if err := m.Put(uint32(2), uint64(2)); !errors.Is(err, syscall.EPERM) {
			t.Fatalf("update after another process froze the map: %v, want EPERM", err)
		}
		var v uint64
		if err := m.Lookup(uint32(1), &v); err != nil || v != 1 {
			t.Fatalf("lookup of a frozen map: %d, %v", v, err)
		}
	})
	t.Run("parent freezes", func(t *testing.T) {
		m, root, pin := newPinned(t, spec)
		var before string
		start(t, "update", childArgs{Root: root, Pin: pin}).wait(t, 30*time.Second, &before)
		if before != "<nil>" {
			t.Fatalf("update in a child before the freeze: %s", before)
		}
		if err := m.Freeze(); err != nil {
			t.Fatal(err)
		}
		var after string
		start(t, "update", childArgs{Root: root, Pin: pin}).wait(t, 30*time.Second, &after)
		if after != "EPERM" {
			t.Fatalf("update in a child after the parent froze the map: %s, want EPERM", after)
		}
	})
}

func putU64(b []byte, v uint64) {
	for i := range 8 {
		b[i] = byte(v >> (8 * i))
	}
}

func getU64(b []byte) uint64 {
	var v uint64
	for i := range 8 {
		v |= uint64(b[i]) << (8 * i)
	}
	return v
}

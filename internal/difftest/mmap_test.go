package difftest

import (
	"fmt"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/namespace"
)

// TestMmapNotMmapable compares mapping maps without a value area to map
// (an ARRAY without BPF_F_MMAPABLE, a PERCPU_ARRAY, a HASH) through
// handles of each access mode, before and after freezing: mmap(2)'s access
// checks come first (EACCES), then bpf_map_mmap's (ENOTSUPP for a type
// without map_mmap, EINVAL for a private mapping, EPERM for a writable
// mapping of a frozen map, EACCES for one of a BPF_F_RDONLY_PROG map), then
// the array's (EINVAL without BPF_F_MMAPABLE).
func TestMmapNotMmapable(t *testing.T) {
	kbpf.Need(t)
	for _, a := range []*kbpf.CreateAttr{
		{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapName: name16("mm_array")},
		{MapType: tArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: fRdonlyProg, MapName: name16("mm_array_rp")},
		{MapType: tPercpuArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapName: name16("mm_percpu")},
		{MapType: tHash, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapName: name16("mm_hash")},
	} {
		t.Run(fmt.Sprintf("type %d flags %#x", a.MapType, a.MapFlags), func(t *testing.T) {
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
					kh.close()
				}
			}
		})
	}
}

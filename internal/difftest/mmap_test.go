//go:build linux

package difftest

import (
	"fmt"
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
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
			compareMmap(t, a, false)
		})
	}
}

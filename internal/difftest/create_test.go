//go:build linux

package difftest

import (
	"fmt"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// createRow is one BPF_MAP_CREATE attr of the creation table. kernelSkip
// rows are too big to create in the kernel; for them bpfmap's result must
// equal want (the documented result) instead.
type createRow struct {
	a          kbpf.CreateAttr
	kernelSkip bool
	want       syscall.Errno
	why        string
}

// baseAttr is a small valid map of type typ.
func baseAttr(typ uint32) kbpf.CreateAttr {
	return kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 4}
}

// createRows builds the creation table.
func createRows() []createRow {
	var rows []createRow
	add := func(a kbpf.CreateAttr) { rows = append(rows, createRow{a: a}) }
	sizes := []uint32{0, 1, 3, 4, 5, 8}
	for _, typ := range allTypes {
		base := baseAttr(typ)

		// Every map_flags bit alone, on a valid attr and on attrs with one
		// invalid size (which check comes first?).
		variants := []kbpf.CreateAttr{base}
		for _, v := range []func(*kbpf.CreateAttr){
			func(a *kbpf.CreateAttr) { a.KeySize = 0 },
			func(a *kbpf.CreateAttr) { a.ValueSize = 0 },
			func(a *kbpf.CreateAttr) { a.MaxEntries = 0 },
			func(a *kbpf.CreateAttr) { a.KeySize = 3 },
		} {
			a := base
			v(&a)
			variants = append(variants, a)
		}
		for _, v := range variants {
			for bit := 0; bit <= 20; bit++ {
				a := v
				a.MapFlags = 1 << bit
				add(a)
			}
			for _, f := range []uint32{1 << 31, 0xffffffff, 1 << 21} {
				a := v
				a.MapFlags = f
				add(a)
			}
		}

		// Flag combinations.
		for _, c := range []struct {
			flags, numa uint32
		}{
			{fRdonly | fWronly, 0},
			{fRdonlyProg | fWronlyProg, 0},
			{fRdonly | fRdonlyProg, 0},
			{fWronly | fWronlyProg, 0},
			{fRdonly | fWronlyProg, 0},
			{fNumaNode, 0},
			{fNumaNode, 5},
			{fNumaNode, 1},
			{fNumaNode, 0xffffffff},
			{0, 5}, // numa_node without the flag is ignored
			{fNumaNode | fRdonly | fWronly, 5},
			{fNoCommonLRU | fNoPrealloc, 0},
			{fNoCommonLRU | fZeroSeed, 0},
			{fNoPrealloc | fZeroSeed, 0},
			{fNoPrealloc | fZeroSeed | fNumaNode | fRdonlyProg, 0},
			{fNoPrealloc | fMmapable, 0},
			{fMmapable | fRdonlyProg, 0},
			{fMmapable | fWronlyProg, 0},
			{fMmapable | fRdonly, 0},
			{fMmapable | 1<<12, 0}, // MMAPABLE | INNER_MAP
			{fZeroSeed | fRdonly | fWronly, 0},
			{fTokenFD | fZeroSeed, 0},
			{fTokenFD | fRdonly | fWronly, 0},
		} {
			a := base
			a.MapFlags, a.NumaNode = c.flags, c.numa
			add(a)
		}

		// Boundary sizes: key × value × max_entries.
		for _, ks := range sizes {
			for _, vs := range sizes {
				for _, me := range sizes {
					add(kbpf.CreateAttr{MapType: typ, KeySize: ks, ValueSize: vs, MaxEntries: me})
				}
			}
		}
		for _, me := range []uint32{2, 7, 9, 16, 17, 1000, 1023, 1024} {
			a := base
			a.MaxEntries = me
			add(a)
		}
		// Big values with one entry, so that the kernel allocates little.
		for _, vs := range []uint32{32767, 32768, 32769, 32776, 65536} {
			a := base
			a.ValueSize, a.MaxEntries = vs, 1
			add(a)
		}
		if typ == tArray || typ == tPercpuArray {
			for _, vs := range []uint32{1 << 31, 1<<31 + 1, 0xffffffff} {
				a := base
				a.ValueSize, a.MaxEntries = vs, 1
				add(a) // E2BIG before any allocation
			}
			a := base
			a.KeySize = 8
			add(a)
		}

		// Map names.
		for _, n := range []string{"", "abc_.9", "a-b", "a b", "abcdefghijklmnop", "abcdefghijklmno", "a\x00-!@", "\x00abc", "ABC.z_09", "é", "a\n"} {
			a := base
			a.MapName = name16(n)
			add(a)
		}
		// A bad name and a bad size: the name is checked after allocation.
		for _, ks := range []uint32{0, 3} {
			a := base
			a.KeySize = ks
			a.MapName = name16("a-b")
			add(a)
		}

		// Other create fields.
		for _, v := range []func(*kbpf.CreateAttr){
			func(a *kbpf.CreateAttr) { a.MapExtra = 1 },
			func(a *kbpf.CreateAttr) { a.MapExtra = 1 << 40 },
			func(a *kbpf.CreateAttr) { a.MapExtra = 1; a.MapFlags = fRdonly | fWronly },
			func(a *kbpf.CreateAttr) { a.MapExtra = 1; a.KeySize = 0 },
			func(a *kbpf.CreateAttr) { a.BTFKeyTypeID = 1 },
			func(a *kbpf.CreateAttr) { a.BTFKeyTypeID = 1; a.MapExtra = 1 },
			func(a *kbpf.CreateAttr) { a.BTFKeyTypeID = 1; a.KeySize = 0 },
			func(a *kbpf.CreateAttr) { a.BTFVmlinuxValueTypeID = 1 },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1 },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1; a.KeySize = 0 },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1; a.MapName = name16("a-b") },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1; a.MapFlags = fZeroSeed },
			func(a *kbpf.CreateAttr) { a.InnerMapFD = 12345 },
			func(a *kbpf.CreateAttr) { a.ExclProgHashSize = 32 },
			func(a *kbpf.CreateAttr) { a.MapType = 0 },
			func(a *kbpf.CreateAttr) { a.MapType = 34 },
			func(a *kbpf.CreateAttr) { a.MapType = 1000 },
		} {
			a := base
			v(&a)
			add(a)
		}
	}

	// HASH key+value against KMALLOC_MAX_SIZE − sizeof(htab_elem): the
	// kernel preallocates max_entries + CPUs elements, so one entry only.
	for _, kv := range [][2]uint32{{4, 4194251}, {4, 4194252}, {4194251, 4}, {4194252, 4}, {1, 4194254}, {1, 4194255}} {
		for _, f := range []uint32{0, fNoPrealloc, fTokenFD} {
			add(kbpf.CreateAttr{MapType: tHash, KeySize: kv[0], ValueSize: kv[1], MaxEntries: 1, MapFlags: f})
		}
	}
	// PERCPU_HASH: the value is per CPU (≤ 32 KiB), the key takes the rest.
	for _, kv := range [][2]uint32{{4194247, 8}, {4194248, 8}, {4161480, 32768}, {4161479, 32768}} {
		add(kbpf.CreateAttr{MapType: tPercpuHash, KeySize: kv[0], ValueSize: kv[1], MaxEntries: 1, MapFlags: fNoPrealloc})
	}
	// Hash max_entries around the bucket-array limit (2^27 buckets): with
	// NO_PREALLOC the kernel only allocates the buckets, and the rows
	// above 2^27 fail before allocating anything. 2^27 itself would make
	// the kernel allocate 2 GiB of buckets: bpfmap only, documented OK.
	for _, typ := range []uint32{tHash, tPercpuHash} {
		for _, me := range []uint32{1<<27 + 1, 1 << 28, 1 << 31, 1<<31 + 1, 0xffffffff} {
			add(kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: me, MapFlags: fNoPrealloc})
		}
		rows = append(rows, createRow{
			a:          kbpf.CreateAttr{MapType: typ, KeySize: 4, ValueSize: 8, MaxEntries: 1 << 27, MapFlags: fNoPrealloc},
			kernelSkip: true, want: 0, why: "2^27 buckets (2 GiB in the kernel) are allowed",
		})
	}
	return append(rows, keylessCreateRows()...)
}

// keylessCreateRows are the creation rows of QUEUE, STACK and BLOOM_FILTER:
// key_size 0, value_size ≤ 4 MiB, map_extra (bloom: the number of hash
// functions in the low 4 bits; others: must be 0), and the order of their
// checks (the bloom filter validates most of its attr only after the
// generic offload and privilege checks).
func keylessCreateRows() []createRow {
	var rows []createRow
	add := func(a kbpf.CreateAttr) { rows = append(rows, createRow{a: a}) }
	for _, typ := range keylessTypes {
		base := kbpf.CreateAttr{MapType: typ, ValueSize: 8, MaxEntries: 4}
		variants := []kbpf.CreateAttr{base}
		for _, v := range []func(*kbpf.CreateAttr){
			func(a *kbpf.CreateAttr) { a.KeySize = 4 },
			func(a *kbpf.CreateAttr) { a.ValueSize = 0 },
			func(a *kbpf.CreateAttr) { a.MaxEntries = 0 },
			func(a *kbpf.CreateAttr) { a.ValueSize = 4<<20 + 1 },
			func(a *kbpf.CreateAttr) { a.MapExtra = 3 },
			func(a *kbpf.CreateAttr) { a.MapExtra = 16 },
		} {
			a := base
			v(&a)
			variants = append(variants, a)
		}
		for _, v := range variants {
			for bit := 0; bit <= 20; bit++ {
				a := v
				a.MapFlags = 1 << bit
				add(a)
			}
			for _, f := range []uint32{1 << 31, 0xffffffff, 1 << 21} {
				a := v
				a.MapFlags = f
				add(a)
			}
		}
		for _, c := range []struct{ flags, numa uint32 }{
			{fRdonly | fWronly, 0},
			{fRdonlyProg | fWronlyProg, 0},
			{fRdonly | fRdonlyProg, 0},
			{fWronly | fWronlyProg, 0},
			{fRdonly | fWronlyProg, 0},
			{fNumaNode, 0},
			{fNumaNode, 5},
			{fNumaNode, 1},
			{fNumaNode, 0xffffffff},
			{0, 5},
			{fZeroSeed | fRdonly, 0},
			{fZeroSeed | fNumaNode | fRdonlyProg, 0},
			{fZeroSeed | fRdonlyProg | fWronlyProg, 0},
			{fTokenFD | fZeroSeed, 0},
			{fNoPrealloc | fZeroSeed, 0},
		} {
			a := base
			a.MapFlags, a.NumaNode = c.flags, c.numa
			add(a)
		}
		for _, ks := range []uint32{0, 1, 4} {
			for _, vs := range []uint32{0, 1, 3, 4, 5, 6, 8} {
				for _, me := range []uint32{0, 1, 2, 4, 7} {
					add(kbpf.CreateAttr{MapType: typ, KeySize: ks, ValueSize: vs, MaxEntries: me})
				}
			}
		}
		for _, me := range []uint32{9, 16, 17, 46, 47, 100, 1000, 1023, 1024, 4096} {
			a := base
			a.MaxEntries = me
			add(a)
		}
		// value_size against KMALLOC_MAX_SIZE (E2BIG), alone and with an
		// invalid key_size or max_entries (which comes first?).
		for _, vs := range []uint32{32768, 1 << 20, 4<<20 - 1, 4 << 20, 4<<20 + 1, 1 << 31, 0xffffffff} {
			for _, v := range []func(*kbpf.CreateAttr){
				func(*kbpf.CreateAttr) {},
				func(a *kbpf.CreateAttr) { a.KeySize = 4 },
				func(a *kbpf.CreateAttr) { a.MaxEntries = 0 },
				func(a *kbpf.CreateAttr) { a.MapExtra = 16 },
				func(a *kbpf.CreateAttr) { a.MapFlags = 1 << 9 },
			} {
				a := kbpf.CreateAttr{MapType: typ, ValueSize: vs, MaxEntries: 1}
				v(&a)
				add(a)
			}
		}
		// map_extra: the bloom filter's number of hash functions (0 → 5,
		// higher bits EINVAL); any map_extra on the others is EINVAL.
		extras := []uint64{1 << 4, 1 << 5, 0x1f, 0x15, 1 << 31, 1 << 32, 1 << 40, 1 << 63, 0xffffffffffffffff}
		for x := uint64(0); x <= 16; x++ {
			extras = append(extras, x)
		}
		for _, x := range extras {
			a := base
			a.MapExtra = x
			add(a)
			a.MaxEntries = 1000
			add(a)
		}
		for _, v := range []func(*kbpf.CreateAttr){
			func(a *kbpf.CreateAttr) { a.MapExtra = 16; a.KeySize = 4 },
			func(a *kbpf.CreateAttr) { a.MapExtra = 16; a.MapFlags = fRdonly | fWronly },
			func(a *kbpf.CreateAttr) { a.MapExtra = 16; a.MapName = name16("a-b") },
			func(a *kbpf.CreateAttr) { a.MapExtra = 5; a.MapName = name16("a-b") },
			func(a *kbpf.CreateAttr) { a.KeySize = 4; a.MapName = name16("a-b") },
			func(a *kbpf.CreateAttr) { a.KeySize = 4; a.MapFlags = fRdonly | fWronly },
			func(a *kbpf.CreateAttr) { a.KeySize = 4; a.MapFlags = fNumaNode; a.NumaNode = 5 },
			func(a *kbpf.CreateAttr) { a.MapName = name16("bloom.q_1") },
			func(a *kbpf.CreateAttr) { a.MapName = name16("a b") },
			func(a *kbpf.CreateAttr) { a.BTFKeyTypeID = 1 },
			func(a *kbpf.CreateAttr) { a.BTFKeyTypeID = 1; a.KeySize = 4 },
			func(a *kbpf.CreateAttr) { a.BTFVmlinuxValueTypeID = 1 },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1 },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1; a.KeySize = 4 },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1; a.MapExtra = 16 },
			func(a *kbpf.CreateAttr) { a.MapIfindex = 1; a.ValueSize = 4<<20 + 1 },
			func(a *kbpf.CreateAttr) { a.InnerMapFD = 12345 },
			func(a *kbpf.CreateAttr) { a.ExclProgHashSize = 32 },
		} {
			a := base
			v(&a)
			add(a)
		}
		// Bloom bitset sizes beyond 2^31 bits (512 MiB in the kernel) and
		// a 2^32-slot queue (4 GiB): bpfmap only, documented OK.
		big := []uint32{1 << 31, 0xffffffff}
		for _, me := range big {
			a := kbpf.CreateAttr{MapType: typ, ValueSize: 1, MaxEntries: me}
			if typ == tBloom {
				a.MapExtra = 15
			}
			rows = append(rows, createRow{a: a, kernelSkip: true, want: 0,
				why: "a 512 MiB bitset or a 2^31+ slot ring (the kernel allocates it)"})
		}
	}
	return rows
}

// TestCreateTable compares BPF_MAP_CREATE's errno, and on success the map's
// info, between the kernel and bpfmap for a table of attrs.
func TestCreateTable(t *testing.T) {
	kbpf.Need(t)
	rows := createRows()
	ok, failed := 0, 0
	for _, row := range rows {
		a := row.a
		var ke syscall.Errno
		var kfd int = -1
		if row.kernelSkip {
			ke = row.want
		} else {
			kfd, ke = kbpf.CreateMap(&a)
		}
		h, err := command.Create(toCommand(&a), options())
		be := errnoOf(err)
		func() {
			if kfd >= 0 {
				defer kbpf.Close(kfd)
			}
			if h != nil {
				defer h.Close()
			}
			who := "kernel"
			if row.kernelSkip {
				who = "documented (" + row.why + ", not run in the kernel)"
			}
			if ke != be {
				failed++
				t.Errorf("BPF_MAP_CREATE %s: %s %s, bpfmap %s (%v)", attrString(&a), who, errName(ke), errName(be), err)
				return
			}
			if ke != 0 {
				ok++
				return
			}
			bi, err := h.Info()
			if err != nil {
				failed++
				t.Errorf("BPF_MAP_CREATE %s: bpfmap Info: %v", attrString(&a), err)
				return
			}
			if kfd < 0 {
				ok++
				return
			}
			ki, e := kbpf.Info(kfd)
			if e != 0 {
				t.Fatalf("kernel BPF_OBJ_GET_INFO_BY_FD: %s", errName(e))
			}
			kv := fmt.Sprintf("type=%d key=%d value=%d max=%d flags=%#x name=%q map_extra=%#x",
				ki.Type, ki.KeySize, ki.ValueSize, ki.MaxEntries, ki.MapFlags, ki.NameString(), ki.MapExtra)
			bv := fmt.Sprintf("type=%d key=%d value=%d max=%d flags=%#x name=%q map_extra=%#x",
				bi.Type, bi.KeySize, bi.ValueSize, bi.MaxEntries, bi.MapFlags, nameString(bi.Name), bi.MapExtra)
			if kv != bv || ki.Name != bi.Name {
				failed++
				t.Errorf("BPF_MAP_CREATE %s succeeded on both sides but the info differs:\n\tkernel %s name bytes %x\n\tbpfmap %s name bytes %x",
					attrString(&a), kv, ki.Name, bv, bi.Name)
				return
			}
			ok++
		}()
	}
	t.Logf("%d creation rows: %d agree, %d differ", len(rows), ok, failed)
}

func nameString(n [16]byte) string {
	for i, c := range n {
		if c == 0 {
			return string(n[:i])
		}
	}
	return string(n[:])
}

package sys_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/bpfmap/bpfmap/sys"
)

// field is a Go field's offset and size and the kernel's.
type field struct {
	c         string // union bpf_attr / struct bpf_map_info member, for the C check
	goOff     uintptr
	goSize    uintptr
	off, size uintptr // Linux 6.18
	inOldUAPI bool    // the member exists in older uapi headers
}

func layout() (attr, info []field) {
	var c sys.MapCreateAttr
	var e sys.MapElemAttr
	var b sys.MapBatchAttr
	var o sys.ObjAttr
	var g sys.GetIDAttr
	var i sys.InfoAttr
	var m sys.MapInfo
	f := func(c string, goOff, goSize, off, size uintptr, old bool) field {
		return field{c, goOff, goSize, off, size, old}
	}
	attr = []field{
		f("map_type", unsafe.Offsetof(c.MapType), unsafe.Sizeof(c.MapType), 0, 4, true),
		f("key_size", unsafe.Offsetof(c.KeySize), unsafe.Sizeof(c.KeySize), 4, 4, true),
		f("value_size", unsafe.Offsetof(c.ValueSize), unsafe.Sizeof(c.ValueSize), 8, 4, true),
		f("max_entries", unsafe.Offsetof(c.MaxEntries), unsafe.Sizeof(c.MaxEntries), 12, 4, true),
		f("map_flags", unsafe.Offsetof(c.MapFlags), unsafe.Sizeof(c.MapFlags), 16, 4, true),
		f("inner_map_fd", unsafe.Offsetof(c.InnerMapFD), unsafe.Sizeof(c.InnerMapFD), 20, 4, true),
		f("numa_node", unsafe.Offsetof(c.NumaNode), unsafe.Sizeof(c.NumaNode), 24, 4, true),
		f("map_name", unsafe.Offsetof(c.MapName), unsafe.Sizeof(c.MapName), 28, 16, true),
		f("map_ifindex", unsafe.Offsetof(c.MapIfindex), unsafe.Sizeof(c.MapIfindex), 44, 4, true),
		f("btf_fd", unsafe.Offsetof(c.BTFFD), unsafe.Sizeof(c.BTFFD), 48, 4, true),
		f("btf_key_type_id", unsafe.Offsetof(c.BTFKeyTypeID), unsafe.Sizeof(c.BTFKeyTypeID), 52, 4, true),
		f("btf_value_type_id", unsafe.Offsetof(c.BTFValueTypeID), unsafe.Sizeof(c.BTFValueTypeID), 56, 4, true),
		f("btf_vmlinux_value_type_id", unsafe.Offsetof(c.BTFVmlinuxValueTypeID), unsafe.Sizeof(c.BTFVmlinuxValueTypeID), 60, 4, true),
		f("map_extra", unsafe.Offsetof(c.MapExtra), unsafe.Sizeof(c.MapExtra), 64, 8, true),
		f("value_type_btf_obj_fd", unsafe.Offsetof(c.ValueTypeBTFObjFD), unsafe.Sizeof(c.ValueTypeBTFObjFD), 72, 4, false),
		f("map_token_fd", unsafe.Offsetof(c.MapTokenFD), unsafe.Sizeof(c.MapTokenFD), 76, 4, false),
		f("excl_prog_hash", unsafe.Offsetof(c.ExclProgHash), unsafe.Sizeof(c.ExclProgHash), 80, 8, false),
		f("excl_prog_hash_size", unsafe.Offsetof(c.ExclProgHashSize), unsafe.Sizeof(c.ExclProgHashSize), 88, 4, false),

		f("map_fd", unsafe.Offsetof(e.MapFD), unsafe.Sizeof(e.MapFD), 0, 4, true),
		f("key", unsafe.Offsetof(e.Key), unsafe.Sizeof(e.Key), 8, 8, true),
		f("value", unsafe.Offsetof(e.Value), unsafe.Sizeof(e.Value), 16, 8, true),
		f("next_key", unsafe.Offsetof(e.Value), unsafe.Sizeof(e.Value), 16, 8, true),
		f("flags", unsafe.Offsetof(e.Flags), unsafe.Sizeof(e.Flags), 24, 8, true),

		f("batch.in_batch", unsafe.Offsetof(b.InBatch), unsafe.Sizeof(b.InBatch), 0, 8, true),
		f("batch.out_batch", unsafe.Offsetof(b.OutBatch), unsafe.Sizeof(b.OutBatch), 8, 8, true),
		f("batch.keys", unsafe.Offsetof(b.Keys), unsafe.Sizeof(b.Keys), 16, 8, true),
		f("batch.values", unsafe.Offsetof(b.Values), unsafe.Sizeof(b.Values), 24, 8, true),
		f("batch.count", unsafe.Offsetof(b.Count), unsafe.Sizeof(b.Count), 32, 4, true),
		f("batch.map_fd", unsafe.Offsetof(b.MapFD), unsafe.Sizeof(b.MapFD), 36, 4, true),
		f("batch.elem_flags", unsafe.Offsetof(b.ElemFlags), unsafe.Sizeof(b.ElemFlags), 40, 8, true),
		f("batch.flags", unsafe.Offsetof(b.Flags), unsafe.Sizeof(b.Flags), 48, 8, true),

		f("pathname", unsafe.Offsetof(o.Pathname), unsafe.Sizeof(o.Pathname), 0, 8, true),
		f("bpf_fd", unsafe.Offsetof(o.BPFFD), unsafe.Sizeof(o.BPFFD), 8, 4, true),
		f("file_flags", unsafe.Offsetof(o.FileFlags), unsafe.Sizeof(o.FileFlags), 12, 4, true),
		f("path_fd", unsafe.Offsetof(o.PathFD), unsafe.Sizeof(o.PathFD), 16, 4, false),

		f("start_id", unsafe.Offsetof(g.ID), unsafe.Sizeof(g.ID), 0, 4, true),
		f("map_id", unsafe.Offsetof(g.ID), unsafe.Sizeof(g.ID), 0, 4, true),
		f("next_id", unsafe.Offsetof(g.NextID), unsafe.Sizeof(g.NextID), 4, 4, true),
		f("open_flags", unsafe.Offsetof(g.OpenFlags), unsafe.Sizeof(g.OpenFlags), 8, 4, true),

		f("info.bpf_fd", unsafe.Offsetof(i.BPFFD), unsafe.Sizeof(i.BPFFD), 0, 4, true),
		f("info.info_len", unsafe.Offsetof(i.InfoLen), unsafe.Sizeof(i.InfoLen), 4, 4, true),
		f("info.info", unsafe.Offsetof(i.Info), unsafe.Sizeof(i.Info), 8, 8, true),
	}
	info = []field{
		f("type", unsafe.Offsetof(m.Type), 4, 0, 4, true),
		f("id", unsafe.Offsetof(m.ID), 4, 4, 4, true),
		f("key_size", unsafe.Offsetof(m.KeySize), 4, 8, 4, true),
		f("value_size", unsafe.Offsetof(m.ValueSize), 4, 12, 4, true),
		f("max_entries", unsafe.Offsetof(m.MaxEntries), 4, 16, 4, true),
		f("map_flags", unsafe.Offsetof(m.MapFlags), 4, 20, 4, true),
		f("name", unsafe.Offsetof(m.Name), 16, 24, 16, true),
		f("ifindex", unsafe.Offsetof(m.Ifindex), 4, 40, 4, true),
		f("btf_vmlinux_value_type_id", unsafe.Offsetof(m.BTFVmlinuxValueTypeID), 4, 44, 4, true),
		f("netns_dev", unsafe.Offsetof(m.NetnsDev), 8, 48, 8, true),
		f("netns_ino", unsafe.Offsetof(m.NetnsIno), 8, 56, 8, true),
		f("btf_id", unsafe.Offsetof(m.BTFID), 4, 64, 4, true),
		f("btf_key_type_id", unsafe.Offsetof(m.BTFKeyTypeID), 4, 68, 4, true),
		f("btf_value_type_id", unsafe.Offsetof(m.BTFValueTypeID), 4, 72, 4, true),
		f("btf_vmlinux_id", unsafe.Offsetof(m.BTFVmlinuxID), 4, 76, 4, false),
		f("map_extra", unsafe.Offsetof(m.MapExtra), 8, 80, 8, true),
		f("hash", unsafe.Offsetof(m.Hash), 8, 88, 8, false),
		f("hash_size", unsafe.Offsetof(m.HashSize), 4, 96, 4, false),
	}
	return attr, info
}

// TestLayout checks the typed structs against the kernel's offsets: the
// Linux 6.18 layout written down here (confirmed on the live kernel by the
// envelope tests), and, where a C compiler and the uapi header are
// installed, offsetof from /usr/include/linux/bpf.h for every member that
// header has (it may be older than 6.18).
func TestLayout(t *testing.T) {
	attr, info := layout()
	for _, f := range append(attr, info...) {
		if f.goOff != f.off || f.goSize != f.size {
			t.Errorf("%s: Go offset %d size %d, kernel %d %d", f.c, f.goOff, f.goSize, f.off, f.size)
		}
	}
	sizes := []struct {
		name      string
		got, want uintptr
	}{
		{"MapCreateAttr", unsafe.Sizeof(sys.MapCreateAttr{}), 96},
		{"MapElemAttr", unsafe.Sizeof(sys.MapElemAttr{}), sys.MapElemAttrSize},
		{"MapBatchAttr", unsafe.Sizeof(sys.MapBatchAttr{}), sys.MapBatchAttrSize},
		{"ObjAttr", unsafe.Sizeof(sys.ObjAttr{}), 24},
		{"GetIDAttr", unsafe.Sizeof(sys.GetIDAttr{}), sys.GetFDByIDAttrSize},
		{"InfoAttr", unsafe.Sizeof(sys.InfoAttr{}), sys.InfoAttrSize},
		{"MapInfo", unsafe.Sizeof(sys.MapInfo{}), sys.MapInfoSize},
	}
	for _, s := range sizes {
		if s.got != s.want || s.got > sys.AttrSize && s.name != "MapInfo" {
			t.Errorf("sizeof %s = %d, want %d", s.name, s.got, s.want)
		}
	}
	if sys.MapCreateAttrSize != 92 || sys.ObjAttrSize != 20 || sys.GetNextIDAttrSize != 8 {
		t.Error("last-field ends")
	}

	// offsetof from the installed uapi header.
	cc, err := exec.LookPath("cc")
	if err != nil {
		if cc, err = exec.LookPath("clang"); err != nil {
			t.Skip("no C compiler: layout checked against the written-down offsets only")
		}
	}
	if _, err := os.Stat("/usr/include/linux/bpf.h"); err != nil {
		t.Skip("no /usr/include/linux/bpf.h")
	}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <linux/bpf.h>\nint main(void){\n")
	var checked []field
	for _, f := range attr {
		if f.inOldUAPI {
			src.WriteString("printf(\"%zu %zu\\n\", offsetof(union bpf_attr, " + f.c + "), sizeof(((union bpf_attr*)0)->" + f.c + "));\n")
			checked = append(checked, f)
		}
	}
	for _, f := range info {
		if f.inOldUAPI {
			src.WriteString("printf(\"%zu %zu\\n\", offsetof(struct bpf_map_info, " + f.c + "), sizeof(((struct bpf_map_info*)0)->" + f.c + "));\n")
			checked = append(checked, f)
		}
	}
	src.WriteString("return 0;}\n")
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "off.c"), []byte(src.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(cc, "-o", filepath.Join(dir, "off"), filepath.Join(dir, "off.c")).CombinedOutput(); err != nil {
		t.Fatalf("compiling the offsetof probe: %v\n%s", err, out)
	}
	out, err := exec.Command(filepath.Join(dir, "off")).Output()
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(checked) {
		t.Fatalf("%d lines for %d fields", len(lines), len(checked))
	}
	for i, l := range lines {
		var off, size uint64
		parts := strings.Fields(l)
		off, _ = strconv.ParseUint(parts[0], 10, 64)
		size, _ = strconv.ParseUint(parts[1], 10, 64)
		if f := checked[i]; uintptr(off) != f.goOff || uintptr(size) != f.goSize {
			t.Errorf("%s: header offset %d size %d, Go %d %d", f.c, off, size, f.goOff, f.goSize)
		}
	}
}

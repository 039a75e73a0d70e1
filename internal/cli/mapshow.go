package cli

import (
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func typeName(typ uint32) (string, bool) {
	if int(typ) < len(mapTypeNames) {
		return mapTypeNames[typ], true
	}
	return "", false
}

func (t *tool) showHeaderPlain(i *mapInfo) {
	t.printf("%d: ", i.id)
	if s, ok := typeName(i.typ); ok {
		t.printf("%s  ", s)
	} else {
		t.printf("type %d  ", i.typ)
	}
	if i.name != "" {
		t.printf("name %s  ", i.name)
	}
	t.printf("flags 0x%x", i.flags)
	if i.ifindex != 0 {
		t.printf("  offloaded_to ifindex %d ns_dev %d ns_ino %d", i.ifindex, i.netnsDev, i.netnsIno)
	}
	t.printf("\n")
}

func (t *tool) showHeaderJSON(w *jsonWriter, i *mapInfo) {
	w.uintField("id", uint64(i.id))
	if s, ok := typeName(i.typ); ok {
		w.strField("type", s)
	} else {
		w.uintField("type", uint64(i.typ))
	}
	if i.name != "" {
		w.strField("name", i.name)
	}
	w.name("flags")
	w.raw("%d", int32(i.flags))
}

// showMap prints one map as "map show" does.
func (t *tool) showMap(i *mapInfo) {
	if t.json != nil {
		w := t.json
		w.startObject()
		t.showHeaderJSON(w, i)
		if i.ifindex != 0 {
			w.name("dev")
			w.startObject()
			w.uintField("ifindex", uint64(i.ifindex))
			w.uintField("ns_dev", i.netnsDev)
			w.uintField("ns_inode", i.netnsIno)
			w.endObject()
		}
		w.uintField("bytes_key", uint64(i.keySize))
		w.uintField("bytes_value", uint64(i.valueSize))
		w.uintField("max_entries", uint64(i.maxEnts))
		if i.memlock != "" {
			n, _ := strconv.ParseInt(i.memlock, 10, 64)
			w.intField("bytes_memlock", n)
		}
		w.intField("frozen", int64(i.frozen))
		if i.btfID != 0 {
			w.intField("btf_id", int64(i.btfID))
		}
		if len(t.pinned) != 0 {
			w.name("pinned")
			w.startArray()
			for _, p := range t.pinned[i.id] {
				w.str(p)
			}
			w.endArray()
		}
		if i.root != "" {
			w.strField("user_space_namespace", i.root)
		}
		w.endObject()
		return
	}
	t.showHeaderPlain(i)
	t.printf("\tkey %dB  value %dB  max_entries %d", i.keySize, i.valueSize, i.maxEnts)
	if i.memlock != "" {
		t.printf("  memlock %sB", i.memlock)
	}
	for _, p := range t.pinned[i.id] {
		t.printf("\n\tpinned %s", p)
	}
	if i.btfID != 0 || i.frozen != 0 {
		t.printf("\n\t")
	}
	if i.btfID != 0 {
		t.printf("btf_id %d", i.btfID)
	}
	if i.frozen != 0 {
		if i.btfID != 0 {
			t.printf("  ")
		}
		t.printf("frozen")
	}
	if i.root != "" {
		t.printf("\n\tuser_space namespace %s", i.root)
	}
	t.printf("\n")
}

func (t *tool) doShow(args []string) int {
	if t.showPinned {
		t.pinned = pinnedTable()
	}
	if len(args) == 2 {
		return t.showSubset(args)
	}
	if len(args) != 0 {
		return t.badArg(args[0])
	}
	if t.json != nil {
		t.json.startArray()
		defer t.json.endArray()
	}
	for id := uint32(0); ; {
		next, e := nextID(id)
		if e != 0 {
			if e == syscall.ENOENT {
				return 0
			}
			t.perr("can't get next map: %s", strerror(e))
			return -1
		}
		id = next
		m, e := openID(id)
		if e != 0 {
			if e == syscall.ENOENT {
				continue
			}
			t.perr("can't get map by id (%d): %s", id, strerror(e))
			return -1
		}
		info, e := m.info()
		m.close()
		if e != 0 {
			t.perr("can't get map info: %s", strerror(e))
			return -1
		}
		t.showMap(&info)
	}
}

func (t *tool) showSubset(args []string) int {
	maps, _, ret := t.parseMaps(args)
	if ret != 0 || len(maps) == 0 {
		return -1
	}
	defer closeAll(maps)
	if t.json != nil && len(maps) > 1 {
		t.json.startArray()
		defer t.json.endArray()
	}
	for _, m := range maps {
		info, e := m.info()
		if e != 0 {
			t.perr("can't get map info: %s", strerror(e))
			return -int(e)
		}
		t.showMap(&info)
	}
	return 0
}

func closeAll(maps []bpfMap) {
	for _, m := range maps {
		m.close()
	}
}

// pinnedTable maps ids to their pin paths (-f): the pins on every bpffs,
// in directory order as bpftool's nftw walk finds them, then the pins of the
// default user-space namespace.
func pinnedTable() map[uint32][]string {
	tab := map[uint32][]string{}
	for _, dir := range bpffsMounts() {
		walkFiles(dir, func(path string) {
			m, e := openPinned(path)
			if e != 0 {
				return
			}
			defer m.close()
			if k, ok := m.(*kernelMap); ok && fdKind(k.fd) != "map" {
				return
			}
			if info, e := m.info(); e == 0 {
				tab[info.id] = append(tab[info.id], path)
			}
		})
	}
	if ns := defaultNS(); ns != nil {
		userPins(ns, tab)
	}
	return tab
}

// walkFiles calls fn for every regular file under dir, depth first in
// directory order, not following symbolic links. A directory for which fn
// is called is not entered (fn can prune by path only).
func walkFiles(dir string, fn func(string)) {
	f, err := os.Open(dir)
	if err != nil {
		return
	}
	ents, _ := f.ReadDir(-1)
	f.Close()
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		switch {
		case e.Type().IsRegular():
			fn(p)
		case e.IsDir():
			if e.Name() == namespace.InternalDir {
				continue
			}
			walkFiles(p, fn)
		}
	}
}

// entryPlain prints an element as bpftool's print_entry_plain.
func (t *tool) entryPlain(i *mapInfo, key, value []byte) {
	if !i.perCPU() {
		breakNames := i.keySize > 16 || i.valueSize > 16
		single := i.keySize+i.valueSize <= 24 && !breakNames
		sep := " "
		if breakNames {
			sep = "\n"
		}
		if i.keySize != 0 {
			t.printf("key:%s", sep)
			t.fprintHex(key[:i.keySize])
			if single {
				t.printf("  ")
			} else {
				t.printf("\n")
			}
		}
		if i.valueSize != 0 {
			t.printf("value:%s", sep)
			t.fprintHex(value[:i.valueSize])
		}
		t.printf("\n")
		return
	}
	step := int((i.valueSize + 7) &^ 7)
	if i.keySize != 0 {
		t.printf("key:\n")
		t.fprintHex(key[:i.keySize])
		t.printf("\n")
	}
	if i.valueSize != 0 {
		sep := " "
		if i.valueSize > 16 {
			sep = "\n"
		}
		for cpu := 0; cpu < i.ncpu; cpu++ {
			t.printf("value (CPU %02d):%s", cpu, sep)
			t.fprintHex(value[cpu*step : cpu*step+int(i.valueSize)])
			t.printf("\n")
		}
	}
}

// entryJSON prints an element as bpftool's print_entry_json, with the
// BTF-formatted element as "formatted" if spec is not nil.
func (t *tool) entryJSON(i *mapInfo, key, value []byte, spec *btfSpec) {
	w := t.json
	w.startObject()
	w.name("key")
	w.hexBytes(key[:i.keySize])
	if !i.perCPU() {
		w.name("value")
		w.hexBytes(value[:i.valueSize])
	} else {
		step := int((i.valueSize + 7) &^ 7)
		w.name("values")
		w.startArray()
		for cpu := 0; cpu < i.ncpu; cpu++ {
			w.startObject()
			w.intField("cpu", int64(cpu))
			w.name("value")
			w.hexBytes(value[cpu*step : cpu*step+int(i.valueSize)])
			w.endObject()
		}
		w.endArray()
	}
	if spec != nil {
		w.name("formatted")
		dumpBTF(&btfDumper{s: spec, w: w}, i, key, value)
	}
	w.endObject()
}

// printKeyValue is bpftool's print_key_value, for lookup, peek and pop: a
// map with BTF is printed in plain mode by a pretty JSON writer of its own.
func (t *tool) printKeyValue(i *mapInfo, key, value []byte) {
	spec, ok := t.mapBTF(i)
	if !ok {
		return
	}
	switch {
	case t.json != nil:
		t.entryJSON(i, key, value, spec)
	case spec != nil:
		w := newJSONWriter(t.out)
		w.pretty = true
		dumpBTF(&btfDumper{s: spec, w: w, plain: true}, i, key, value)
		w.finish()
	default:
		t.entryPlain(i, key, value)
	}
}

// entryError prints an element whose lookup failed during a dump.
func (t *tool) entryError(i *mapInfo, key []byte, e syscall.Errno) {
	if i.mapOfMaps() || uapi.MapType(i.typ) == uapi.MapTypeProgArray {
		if e == syscall.ENOENT {
			return
		}
	}
	if t.json != nil {
		w := t.json
		w.startObject()
		w.name("key")
		w.hexBytes(key[:i.keySize])
		w.name("value")
		w.startObject()
		w.strField("error", strerror(e))
		w.endObject()
		w.endObject()
		return
	}
	msg := strerror(e)
	switch {
	case e == syscall.ENOENT:
		msg = "<no entry>"
	case e == syscall.ENOSPC && uapi.MapType(i.typ) == uapi.MapTypeReuseportSockarray:
		msg = "<cannot read>"
	}
	breakNames := i.keySize > 16 || len(msg) > 16
	single := int(i.keySize)+len(msg) <= 24 && !breakNames
	sep := " "
	if breakNames {
		sep = "\n"
	}
	t.printf("key:%s", sep)
	t.fprintHex(key[:i.keySize])
	if single {
		t.printf("  ")
	} else {
		t.printf("\n")
	}
	t.printf("value:%s%s\n", sep, msg)
}

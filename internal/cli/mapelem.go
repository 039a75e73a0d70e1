package cli

import (
	"net"
	"os"
	"path/filepath"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/bpfmap/bpfmap/internal/namespace"
	"github.com/bpfmap/bpfmap/internal/uapi"
)

func (t *tool) doDump(args []string) int {
	if len(args) != 2 {
		return t.usage(args)
	}
	maps, _, ret := t.parseMaps(args)
	if ret != 0 || len(maps) == 0 {
		return -1
	}
	defer closeAll(maps)
	// wtr is the JSON writer of the dump: -j's, or in plain mode a pretty
	// one of its own when every map carries BTF (bpftool's btf_wtr).
	wtr := t.json
	if wtr == nil {
		all := true
		for _, m := range maps {
			info, e := m.info()
			if e != 0 {
				t.perr("can't get map info: %s", strerror(e))
				return -1
			}
			all = all && info.btfID != 0
		}
		if all {
			wtr = newJSONWriter(t.out)
			wtr.pretty = true
			defer wtr.finish()
		}
	}
	if wtr != nil && len(maps) > 1 {
		wtr.startArray()
		defer wtr.endArray()
	}
	for n, m := range maps {
		info, e := m.info()
		if e != 0 {
			t.perr("can't get map info: %s", strerror(e))
			return -1
		}
		err := t.dumpMap(m, &info, wtr, len(maps) > 1)
		if wtr == nil && n != len(maps)-1 {
			t.printf("\n")
		}
		if err != 0 {
			return err
		}
	}
	return 0
}

// dumpMap walks the map with GET_NEXT_KEY and prints every element,
// through wtr if not nil (JSON, or BTF-formatted plain output).
func (t *tool) dumpMap(m bpfMap, info *mapInfo, wtr *jsonWriter, header bool) int {
	e := newElem(info)
	key := make([]byte, info.keySize)
	var spec *btfSpec
	if wtr != nil {
		var ok bool
		if spec, ok = t.mapBTF(info); !ok {
			return -1
		}
		if header {
			wtr.startObject()
			t.showHeaderJSON(wtr, info)
			wtr.name("elements")
		}
		wtr.startArray()
	} else if header {
		t.showHeaderPlain(info)
	}
	var prev []byte
	n, ret := 0, 0
	for {
		if errno := m.nextKey(prev, key); errno != 0 {
			if errno != syscall.ENOENT {
				ret = -int(errno)
			}
			break
		}
		if errno := m.lookup(key, e.value); errno != 0 {
			t.entryError(info, key, errno)
		} else {
			switch {
			case t.json != nil:
				t.entryJSON(info, key, e.value, spec)
			case spec != nil:
				dumpBTF(&btfDumper{s: spec, w: wtr, plain: true}, info, key, e.value)
			default:
				t.entryPlain(info, key, e.value)
			}
			n++
		}
		prev = key
	}
	if wtr != nil {
		wtr.endArray()
		if header {
			wtr.endObject()
		}
	} else {
		s := "s"
		if n == 1 {
			s = ""
		}
		t.printf("Found %d element%s\n", n, s)
	}
	return ret
}

func (t *tool) doUpdate(args []string) int {
	m, info, rest, ret := t.mapArgs(args)
	if ret != 0 {
		return ret
	}
	defer m.close()
	e := newElem(&info)
	if !t.parseElem(rest, &info, e, e.key != nil, e.value != nil, true) {
		closeInner(e)
		return -1
	}
	var errno syscall.Errno
	if e.inner != nil {
		errno = m.updateInner(e.key, e.inner, e.flags)
		e.inner.close()
	} else {
		errno = m.update(e.key, e.value, e.flags)
	}
	return t.done(errno, "update failed: %s")
}

// mapArgs is the element commands' prologue: MAP's two words at least
// (else usage), then the map and its info.
func (t *tool) mapArgs(args []string) (bpfMap, mapInfo, []string, int) {
	if len(args) < 2 {
		return nil, mapInfo{}, nil, t.usage(args)
	}
	m, info, rest, ret := t.parseMapInfo(args)
	if ret != 0 {
		return nil, mapInfo{}, nil, -1
	}
	return m, info, rest, 0
}

// done ends a writing command: the failure message with the errno's text,
// or JSON's null for success.
func (t *tool) done(errno syscall.Errno, format string) int {
	if errno != 0 {
		t.perr(format, strerror(errno))
		return -int(errno)
	}
	if t.json != nil {
		t.json.null()
	}
	return 0
}

func closeInner(e *elem) {
	if e.inner != nil {
		e.inner.close()
	}
}

func (t *tool) doLookup(args []string) int {
	m, info, rest, ret := t.mapArgs(args)
	if ret != 0 {
		return ret
	}
	defer m.close()
	e := newElem(&info)
	if !t.parseElem(rest, &info, e, e.key != nil, false, false) {
		return -1
	}
	if errno := m.lookup(e.key, e.value); errno != 0 {
		if errno == syscall.ENOENT {
			if t.json != nil {
				t.json.null()
			} else {
				t.printf("key:\n")
				t.fprintHex(e.key)
				t.printf("\n\nNot found\n")
			}
		} else {
			t.perr("lookup failed: %s", strerror(errno))
		}
		return -int(errno)
	}
	t.printKeyValue(&info, e.key, e.value)
	return 0
}

func (t *tool) doGetNext(args []string) int {
	m, info, rest, ret := t.mapArgs(args)
	if ret != 0 {
		return ret
	}
	defer m.close()
	var key []byte
	if len(rest) > 0 {
		e := &elem{key: make([]byte, info.keySize)}
		if !t.parseElem(rest, &info, e, true, false, false) {
			return -1
		}
		key = e.key
	}
	next := make([]byte, info.keySize)
	if errno := m.nextKey(key, next); errno != 0 {
		t.perr("can't get next key: %s", strerror(errno))
		return -int(errno)
	}
	if t.json != nil {
		w := t.json
		w.startObject()
		if key != nil {
			w.name("key")
			w.hexBytes(key)
		} else {
			w.nullField("key")
		}
		w.name("next_key")
		w.hexBytes(next)
		w.endObject()
		return 0
	}
	if key != nil {
		t.printf("key:\n")
		t.fprintHex(key)
		t.printf("\n")
	} else {
		t.printf("key: None\n")
	}
	t.printf("next key:\n")
	t.fprintHex(next)
	t.printf("\n")
	return 0
}

func (t *tool) doDelete(args []string) int {
	m, info, rest, ret := t.mapArgs(args)
	if ret != 0 {
		return ret
	}
	defer m.close()
	e := &elem{key: make([]byte, info.keySize)}
	if !t.parseElem(rest, &info, e, true, false, false) {
		return -1
	}
	return t.done(m.delete(e.key), "delete failed: %s")
}

func (t *tool) doPop(args []string) int {
	m, info, _, ret := t.mapArgs(args)
	if ret != 0 {
		return ret
	}
	defer m.close()
	e := newElem(&info)
	if errno := m.lookupAndDelete(e.key, e.value); errno != 0 {
		if errno == syscall.ENOENT {
			if t.json != nil {
				t.json.null()
			} else {
				t.printf("Error: empty map\n")
			}
		} else {
			t.perr("pop failed: %s", strerror(errno))
		}
		return -int(errno)
	}
	t.printKeyValue(&info, e.key, e.value)
	return 0
}

func (t *tool) doFreeze(args []string) int {
	if !t.reqArgs("freeze", args, 2) {
		return -1
	}
	m, rest, ret := t.parseMap(args)
	if ret != 0 {
		return -1
	}
	defer m.close()
	if len(rest) != 0 {
		return t.badArg(rest[0])
	}
	return t.done(m.freeze(), "failed to freeze map: %s")
}

func (t *tool) doEventPipe(args []string) int {
	m, info, _, ret := t.mapArgs(args)
	if ret != 0 {
		return ret
	}
	m.close()
	if uapi.MapType(info.typ) != uapi.MapTypePerfEventArray {
		t.perr("map is not a perf event array")
		return -1
	}
	t.perr("event_pipe is not supported by bpfmap")
	return -1
}

func (t *tool) doPin(args []string) int {
	if len(args) < 3 {
		// bpftool's do_pin_any reads the path after the map.
		if !t.reqArgs("pin", args, 3) {
			return -1
		}
	}
	m, rest, ret := t.parseMap(args)
	if ret != 0 {
		return ret
	}
	defer m.close()
	if ret := t.pinMap(m, rest[0]); ret != 0 {
		return ret
	}
	if t.json != nil {
		t.json.null()
	}
	return 0
}

// pinMap is bpftool's do_pin_fd: a kernel map is pinned on a bpffs, a
// user-space map in its namespace.
func (t *tool) pinMap(m bpfMap, path string) int {
	if _, ok := m.(*kernelMap); ok {
		if !isBPFFS(dirname(path)) {
			t.perr("can't mount BPF file system to pin the object (%s): bpfmap does not mount file systems", path)
			return -1
		}
	}
	if errno := m.pin(path); errno != 0 {
		t.perr("can't pin the object (%s): %s", path, strerror(errno))
		return -int(errno)
	}
	return 0
}

func (t *tool) doCreate(args []string) int {
	if !t.reqArgs("create", args, 7) {
		return -1
	}
	file := args[0]
	args = args[1:]
	prev := file
	var a command.CreateAttr
	typeSet := false
	var nameArg *string
	var inner bpfMap
	defer func() {
		if inner != nil {
			inner.close()
		}
	}()
	u32 := func(what string, dst *uint32) bool {
		// bpftool's parse_u32_arg.
		if *dst != 0 {
			t.perr("%s already specified", what)
			return false
		}
		v, ok := strtoul(args[1], 0)
		if !ok {
			t.perr("can't parse %s as %s", args[1], what)
			return false
		}
		*dst = uint32(v)
		prev, args = args[1], args[2:]
		return true
	}
	for len(args) > 0 {
		if !t.reqArgs(prev, args, 2) {
			return -1
		}
		switch w := args[0]; {
		case isPrefix(w, "type"):
			if typeSet && a.MapType != 0 {
				t.perr("map type already specified")
				return -1
			}
			typ := -1
			for i, n := range mapTypeNames {
				if n == args[1] {
					typ = i
					break
				}
			}
			if typ < 0 {
				t.perr("unrecognized map type: %s", args[1])
				return -1
			}
			a.MapType, typeSet = uint32(typ), true
			prev, args = args[1], args[2:]
		case isPrefix(w, "name"):
			n := args[1]
			nameArg = &n
			prev, args = args[1], args[2:]
		case isPrefix(w, "key"):
			if !u32("key size", &a.KeySize) {
				return -1
			}
		case isPrefix(w, "value"):
			if !u32("value size", &a.ValueSize) {
				return -1
			}
		case isPrefix(w, "entries"):
			if !u32("max entries", &a.MaxEntries) {
				return -1
			}
		case isPrefix(w, "flags"):
			if !u32("flags", &a.MapFlags) {
				return -1
			}
		case isPrefix(w, "dev"):
			if a.MapIfindex != 0 {
				t.perr("offload device already specified")
				return -1
			}
			ifc, err := net.InterfaceByName(args[1])
			if err != nil {
				t.perr("unrecognized netdevice '%s': %s", args[1], strerror(syscall.ENODEV))
				return -1
			}
			a.MapIfindex = uint32(ifc.Index)
			prev, args = args[1], args[2:]
		case isPrefix(w, "inner_map"):
			args = args[1:]
			if len(args) < 2 {
				return t.usage(args)
			}
			m, _, rest, ret := t.parseMapInfo(args)
			if ret != 0 {
				return -1
			}
			if inner != nil {
				inner.close()
			}
			inner = m
			prev, args = args[1], rest
		default:
			t.perr("unknown arg %s", w)
			return -1
		}
	}
	if nameArg == nil {
		t.perr("map name not specified")
		return -1
	}
	// libbpf copies at most BPF_OBJ_NAME_LEN-1 bytes of the name.
	copy(a.MapName[:uapi.ObjNameLen-1], *nameArg)

	var m bpfMap
	if !kernelOff && isBPFFS(dirname(absPin(file))) {
		ka := kbpf.CreateAttr{
			MapType: a.MapType, KeySize: a.KeySize, ValueSize: a.ValueSize,
			MaxEntries: a.MaxEntries, MapFlags: a.MapFlags, MapName: a.MapName,
			MapIfindex: a.MapIfindex,
		}
		if inner != nil {
			k, ok := inner.(*kernelMap)
			if !ok {
				t.perr("map create failed: %s", strerror(syscall.EINVAL))
				return -1
			}
			ka.InnerMapFD = uint32(k.fd)
		}
		fd, errno := kbpf.CreateMap(&ka)
		if errno != 0 {
			t.perr("map create failed: %s", strerror(errno))
			return -1
		}
		m = &kernelMap{fd}
	} else {
		ns, ret := t.namespaceFor(file)
		if ret != 0 {
			return ret
		}
		if inner != nil {
			u, ok := inner.(*userMap)
			if !ok {
				t.perr("map create failed: %s", strerror(syscall.EINVAL))
				return -1
			}
			a.InnerMap = u.h
		}
		h, err := command.Create(&a, command.Options{Namespace: ns})
		if err != nil {
			t.perr("map create failed: %s", strerror(errnoOf(err)))
			return -1
		}
		m = &userMap{h}
	}
	defer m.close()
	t.debugf("create %s: %s", file, describe(m))
	if ret := t.pinMap(m, absPin(file)); ret != 0 {
		return ret
	}
	if t.json != nil {
		t.json.null()
	}
	return 0
}

// namespaceFor returns the user-space namespace a new map pinned at file
// belongs to. If file's directory is in none, it becomes a namespace root,
// as bpftool mounts a bpffs on a pin's directory; -n forbids that.
func (t *tool) namespaceFor(file string) (*namespace.NS, int) {
	root, ok := userPath(file)
	if !ok {
		if t.noMount {
			t.perr("no BPF file system found, not mounting it due to --nomount option")
			return nil, -1
		}
		root = dirname(file)
		if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
			errno := syscall.ENOTDIR
			if err != nil {
				errno = pathErrno(err)
			}
			t.perr("can't mount BPF file system to pin the object (%s): %s %s: %s", file, "bpfmap namespace", root, strerror(errno))
			return nil, -1
		}
	}
	root, _ = filepath.Abs(root)
	ns, err := namespace.Open(root)
	if err != nil {
		t.perr("can't mount BPF file system to pin the object (%s): %v", file, err)
		return nil, -1
	}
	return ns, 0
}

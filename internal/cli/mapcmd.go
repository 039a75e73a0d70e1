package cli

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/uapi"
)

// mapTypeNames are the type names bpftool prints and accepts (libbpf's
// names, index = enum bpf_map_type). Types past the end print as "type N".
var mapTypeNames = []string{
	"unspec", "hash", "array", "prog_array", "perf_event_array", "percpu_hash",
	"percpu_array", "stack_trace", "cgroup_array", "lru_hash", "lru_percpu_hash",
	"lpm_trie", "array_of_maps", "hash_of_maps", "devmap", "sockmap", "cpumap",
	"xskmap", "sockhash", "cgroup_storage", "reuseport_sockarray",
	"percpu_cgroup_storage", "queue", "stack", "sk_storage", "devmap_hash",
	"struct_ops", "ringbuf", "inode_storage", "task_storage", "bloom_filter",
	"user_ringbuf",
}

func (t *tool) doMap(args []string) int {
	return t.dispatch([]subcommand{
		{"show", t.doShow},
		{"list", t.doShow},
		{"help", t.doMapHelp},
		{"dump", t.doDump},
		{"update", t.doUpdate},
		{"lookup", t.doLookup},
		{"getnext", t.doGetNext},
		{"delete", t.doDelete},
		{"pin", t.doPin},
		{"event_pipe", t.doEventPipe},
		{"create", t.doCreate},
		{"peek", t.doLookup},
		{"push", t.doUpdate},
		{"enqueue", t.doUpdate},
		{"pop", t.doPop},
		{"dequeue", t.doPop},
		{"freeze", t.doFreeze},
	}, args, t.doMapHelp)
}

func (t *tool) doMapHelp([]string) int {
	if t.json != nil {
		t.json.null()
		return 0
	}
	s := `Usage: %[1]s %[2]s { show | list }   [MAP]
       %[1]s %[2]s create     FILE type TYPE key KEY_SIZE value VALUE_SIZE \
                                  entries MAX_ENTRIES name NAME [flags FLAGS] \
                                  [inner_map MAP] [dev NAME]
       %[1]s %[2]s dump       MAP
       %[1]s %[2]s update     MAP [key DATA] [value VALUE] [UPDATE_FLAGS]
       %[1]s %[2]s lookup     MAP [key DATA]
       %[1]s %[2]s getnext    MAP [key DATA]
       %[1]s %[2]s delete     MAP  key DATA
       %[1]s %[2]s pin        MAP  FILE
       %[1]s %[2]s event_pipe MAP [cpu N index M]
       %[1]s %[2]s peek       MAP
       %[1]s %[2]s push       MAP value VALUE
       %[1]s %[2]s pop        MAP
       %[1]s %[2]s enqueue    MAP value VALUE
       %[1]s %[2]s dequeue    MAP
       %[1]s %[2]s freeze     MAP
       %[1]s %[2]s help

       MAP := { id MAP_ID | pinned FILE | name MAP_NAME }
       DATA := { [hex] BYTES }
       PROG := { id PROG_ID | pinned FILE | tag PROG_TAG | name PROG_NAME }
       VALUE := { DATA | MAP | PROG }
       UPDATE_FLAGS := { any | exist | noexist }
       TYPE := { hash | array | prog_array | perf_event_array | percpu_hash |
                 percpu_array | stack_trace | cgroup_array | lru_hash |
                 lru_percpu_hash | lpm_trie | array_of_maps | hash_of_maps |
                 devmap | devmap_hash | sockmap | cpumap | xskmap | sockhash |
                 cgroup_storage | reuseport_sockarray | percpu_cgroup_storage |
                 queue | stack | sk_storage | struct_ops | ringbuf | inode_storage |
                 task_storage | bloom_filter | user_ringbuf }
       ` + helpSpecOptions + ` |
                    {-f|--bpffs} | {-n|--nomount} }
`
	fmt.Fprintf(t.errw, s, t.bin, "map")
	return 0
}

// parseMaps is bpftool's map_parse_fds: the maps a MAP argument names, and
// the words after it. A name can match several maps, or none (n == 0, no
// message).
func (t *tool) parseMaps(args []string) (maps []bpfMap, rest []string, ret int) {
	maps, rest, ret = t.parseMapsQuiet(args)
	for _, m := range maps {
		t.debugf("%s %s: %s", args[0], args[1], describe(m))
	}
	return maps, rest, ret
}

func (t *tool) parseMapsQuiet(args []string) (maps []bpfMap, rest []string, ret int) {
	if len(args) < 2 {
		// Callers check the count first; this only guards the parser.
		return nil, nil, t.usage(nil)
	}
	switch kw, arg := args[0], args[1]; {
	case isPrefix(kw, "id"):
		v, ok := strtoul(arg, 0)
		if !ok {
			t.perr("can't parse %s as ID", arg)
			return nil, nil, -1
		}
		m, e := openID(uint32(v))
		if e != 0 {
			t.perr("get map by id (%d): %s", uint32(v), strerror(e))
			return nil, nil, -1
		}
		return []bpfMap{m}, args[2:], 0
	case isPrefix(kw, "name"):
		if len(arg) > uapi.ObjNameLen-1 {
			t.perr("can't parse name")
			return nil, nil, -1
		}
		maps, ret := t.mapsByName(arg)
		return maps, args[2:], ret
	case isPrefix(kw, "pinned"):
		m, ret := t.openPinnedMap(arg)
		if ret != 0 {
			return nil, nil, ret
		}
		return []bpfMap{m}, args[2:], 0
	}
	t.perr("expected 'id', 'name' or 'pinned', got: '%s'?", args[0])
	return nil, nil, -1
}

// openPinnedMap is bpftool's open_obj_pinned_any for a map.
func (t *tool) openPinnedMap(path string) (bpfMap, int) {
	m, e := openPinned(path)
	if e != 0 {
		shown, msg := path, strerror(e)
		if e == syscall.EACCES {
			// bpftool reports the directory when the kernel refuses a
			// path, blaming a directory outside any bpffs.
			shown = dirname(path)
			if _, user := userPath(path); !user && !isBPFFS(shown) {
				msg = "directory not in bpf file system (bpffs)"
			}
		}
		t.perr("bpf obj get (%s): %s", shown, msg)
		return nil, -1
	}
	if k, ok := m.(*kernelMap); ok {
		if kind := fdKind(k.fd); kind != "map" {
			t.perr("incorrect object type: %s", kind)
			m.close()
			return nil, -1
		}
	}
	return m, 0
}

// mapsByName opens every map (kernel, then user-space) named name.
func (t *tool) mapsByName(name string) ([]bpfMap, int) {
	var maps []bpfMap
	fail := func() ([]bpfMap, int) {
		for _, m := range maps {
			m.close()
		}
		return nil, -1
	}
	for id := uint32(0); ; {
		next, e := nextID(id)
		if e != 0 {
			if e != syscall.ENOENT {
				t.perr("%s", strerror(e))
				return fail()
			}
			return maps, 0
		}
		id = next
		m, e := openID(id)
		if e != 0 {
			t.perr("can't get map by id (%d): %s", id, strerror(e))
			return fail()
		}
		info, e := m.info()
		if e != 0 {
			t.perr("can't get map info (%d): %s", id, strerror(e))
			m.close()
			return fail()
		}
		if info.name != name {
			m.close()
			continue
		}
		maps = append(maps, m)
	}
}

// parseMap is bpftool's map_parse_fd: exactly one map.
func (t *tool) parseMap(args []string) (bpfMap, []string, int) {
	maps, rest, ret := t.parseMaps(args)
	if ret != 0 {
		return nil, nil, ret
	}
	if len(maps) != 1 {
		if len(maps) > 1 {
			t.perr("several maps match this handle")
			for _, m := range maps {
				m.close()
			}
		}
		return nil, nil, -1
	}
	return maps[0], rest, 0
}

// parseMapInfo is bpftool's map_parse_fd_and_info.
func (t *tool) parseMapInfo(args []string) (bpfMap, mapInfo, []string, int) {
	m, rest, ret := t.parseMap(args)
	if ret != 0 {
		return nil, mapInfo{}, nil, ret
	}
	info, e := m.info()
	if e != 0 {
		t.perr("can't get map info: %s", strerror(e))
		m.close()
		return nil, mapInfo{}, nil, -1
	}
	return m, info, rest, 0
}

// fprintHex writes data as bpftool's fprint_hex: bytes separated by sep,
// two spaces after every 8th byte and a newline after every 16th.
func (t *tool) fprintHex(data []byte) {
	var b strings.Builder
	for i, c := range data {
		switch {
		case i == 0:
		case i%16 == 0:
			b.WriteByte('\n')
		case i%8 == 0:
			b.WriteString("  ")
		default:
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%02x", c)
	}
	t.printf("%s", b.String())
}

// parseBytes reads n bytes of DATA ([hex] BYTES) from args.
func (t *tool) parseBytes(args []string, what string, n int) ([]byte, []string, bool) {
	base := 0
	if len(args) > 0 && isPrefix(args[0], "hex") {
		base = 16
		args = args[1:]
	}
	val := make([]byte, n)
	i := 0
	for ; i < n && i < len(args); i++ {
		v, ok := strtoul(args[i], base)
		if !ok {
			t.perr("error parsing byte: %s", args[i])
			return nil, nil, false
		}
		val[i] = byte(v)
	}
	if i != n {
		t.perr("%s expected %d bytes got %d", what, n, i)
		return nil, nil, false
	}
	return val, args[i:], true
}

// elem is what parseElem fills: key, value (or an inner map for a map of
// maps) and flags.
type elem struct {
	key, value []byte
	inner      bpfMap
	flags      uint64
}

// parseElem is bpftool's parse_elem: "key DATA", "value VALUE" and an
// update flag, in any order; wantKey/wantValue say which are expected and
// keySize/valueSize how many bytes they take.
func (t *tool) parseElem(args []string, info *mapInfo, e *elem, wantKey, wantValue, wantFlags bool) bool {
	if len(args) == 0 {
		if !wantKey && !wantValue {
			return true
		}
		if wantKey {
			t.perr("did not find key")
		} else {
			t.perr("did not find value")
		}
		return false
	}
	switch w := args[0]; {
	case isPrefix(w, "key"):
		if !wantKey {
			if info.keySize != 0 {
				t.perr("duplicate key")
			} else {
				t.perr("unnecessary key")
			}
			return false
		}
		k, rest, ok := t.parseBytes(args[1:], "key", int(info.keySize))
		if !ok {
			return false
		}
		copy(e.key, k)
		return t.parseElem(rest, info, e, false, wantValue, wantFlags)
	case isPrefix(w, "value"):
		if !wantValue {
			if info.valueSize != 0 {
				t.perr("duplicate value")
			} else {
				t.perr("unnecessary value")
			}
			return false
		}
		rest := args[1:]
		switch {
		case info.mapOfMaps():
			if info.valueSize != 4 {
				t.perr("value smaller than 4B for map in map?")
				return false
			}
			if len(rest) < 2 {
				t.perr("not enough value arguments for map in map")
				return false
			}
			m, r, ret := t.parseMap(rest)
			if ret != 0 {
				return false
			}
			e.inner, rest = m, r
		case uapi.MapType(info.typ) == uapi.MapTypeProgArray:
			t.perr("bpfmap cannot name programs: program arrays are not supported")
			return false
		default:
			v, r, ok := t.parseBytes(rest, "value", int(info.valueSize))
			if !ok {
				return false
			}
			copy(e.value, v)
			if info.perCPU() {
				step := int((info.valueSize + 7) &^ 7)
				for cpu := 1; cpu < info.ncpu; cpu++ {
					copy(e.value[cpu*step:], v)
				}
			}
			rest = r
		}
		return t.parseElem(rest, info, e, wantKey, false, wantFlags)
	case isPrefix(w, "any") || isPrefix(w, "noexist") || isPrefix(w, "exist"):
		if !wantFlags {
			t.perr("flags specified multiple times: %s", w)
			return false
		}
		switch {
		case isPrefix(w, "any"):
			e.flags = uapi.Any
		case isPrefix(w, "noexist"):
			e.flags = uapi.NoExist
		default:
			e.flags = uapi.Exist
		}
		return t.parseElem(args[1:], info, e, wantKey, wantValue, false)
	}
	t.perr("expected key or value, got: %s", args[0])
	return false
}

// newElem allocates key and value buffers for info (nil when the size is
// zero, so the command passes NULL as bpftool does).
func newElem(info *mapInfo) *elem {
	e := &elem{}
	if info.keySize != 0 {
		e.key = make([]byte, info.keySize)
	}
	if info.valueSize != 0 {
		e.value = make([]byte, info.valueBufSize())
	}
	return e
}

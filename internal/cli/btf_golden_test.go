package cli

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bpfmap/bpfmap/internal/kbpf"
	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
)

var reBTFID = regexp.MustCompile(`btf_id("?:? ?)\d+`)

// zeroSeed is BPF_F_ZERO_SEED: hash maps of the same elements iterate
// alike, for bpftool's run and bpfmap's.
const zeroSeed = 1 << 6

// BTF types of the golden maps.
var (
	btU8   = &btf.Int{Name: "unsigned char", Size: 1}
	btS8   = &btf.Int{Name: "signed char", Size: 1, Encoding: btf.Signed}
	btU16  = &btf.Int{Name: "unsigned short", Size: 2}
	btS16  = &btf.Int{Name: "short", Size: 2, Encoding: btf.Signed}
	btU32  = &btf.Int{Name: "unsigned int", Size: 4}
	btS32  = &btf.Int{Name: "int", Size: 4, Encoding: btf.Signed}
	btU64  = &btf.Int{Name: "unsigned long long", Size: 8}
	btS64  = &btf.Int{Name: "long long", Size: 8, Encoding: btf.Signed}
	btU128 = &btf.Int{Name: "unsigned __int128", Size: 16}
	btBool = &btf.Int{Name: "_Bool", Size: 1, Encoding: btf.Bool}
	btChar = &btf.Int{Name: "char", Size: 1, Encoding: btf.Signed} // clang's char
	btXChr = &btf.Int{Name: "xchar", Size: 1, Encoding: btf.Char}  // BTF_INT_CHAR
	btF32  = &btf.Float{Name: "float", Size: 4}
)

func member(name string, typ btf.Type, byteOff int) btf.Member {
	return btf.Member{Name: name, Type: typ, Offset: btf.Bits(byteOff * 8)}
}

func bitfield(name string, typ btf.Type, bitOff, bits int) btf.Member {
	return btf.Member{Name: name, Type: typ, Offset: btf.Bits(bitOff), BitfieldSize: btf.Bits(bits)}
}

func arrayOf(typ btf.Type, n uint32) *btf.Array {
	return &btf.Array{Index: btU32, Type: typ, Nelems: n}
}

// btfMapSpec is one BTF-carrying kernel map of the golden test: its spec,
// the elements it is filled with (raw key, value) and the commands run on it
// ({M} is its pin).
type btfMapSpec struct {
	name  string
	spec  ebpf.MapSpec
	elems [][2][]byte
	cmds  []string
}

// le builds a little-endian byte image from integers and byte slices.
func le(parts ...any) []byte {
	var b []byte
	for _, p := range parts {
		switch v := p.(type) {
		case int8:
			b = append(b, byte(v))
		case uint8:
			b = append(b, v)
		case int16:
			b = binary.LittleEndian.AppendUint16(b, uint16(v))
		case uint16:
			b = binary.LittleEndian.AppendUint16(b, v)
		case int32:
			b = binary.LittleEndian.AppendUint32(b, uint32(v))
		case uint32:
			b = binary.LittleEndian.AppendUint32(b, v)
		case int64:
			b = binary.LittleEndian.AppendUint64(b, uint64(v))
		case uint64:
			b = binary.LittleEndian.AppendUint64(b, v)
		case []byte:
			b = append(b, v...)
		case string:
			b = append(b, v...)
		default:
			panic(fmt.Sprintf("le: %T", p))
		}
	}
	return b
}

func pad(b []byte, n int) []byte { return append(b, make([]byte, n-len(b))...) }

func btfGoldenMaps(ncpu int) []btfMapSpec {
	ints := &btf.Struct{Name: "ints", Size: 32, Members: []btf.Member{
		member("a", btS8, 0), member("b", btU8, 1), member("c", btS16, 2),
		member("d", btU16, 4), member("e", btS32, 8), member("f", btU32, 12),
		member("g", btS64, 16), member("h", btU64, 24),
	}}
	u32t := &btf.Typedef{Name: "__u32", Type: btU32}
	chars := &btf.Struct{Name: "chars", Size: 24, Members: []btf.Member{
		member("c", btXChr, 0), member("sc", btChar, 1), member("flag", btBool, 2),
		member("flag2", btBool, 3), member("name", arrayOf(btChar, 8), 4),
		member("raw", arrayOf(btChar, 4), 12), member("craw", arrayOf(btXChr, 4), 16),
		member("bytes", arrayOf(btU8, 4), 20),
	}}
	color := &btf.Enum{Name: "color", Size: 4, Values: []btf.EnumValue{
		{Name: "RED", Value: 0}, {Name: "GREEN", Value: 1}, {Name: "BLUE", Value: 7},
	}}
	small := &btf.Enum{Name: "small", Size: 1, Signed: true, Values: []btf.EnumValue{
		{Name: "X", Value: 1}, {Name: "Y", Value: 0xfffffffffffffffe},
	}}
	mid := &btf.Enum{Name: "mid", Size: 2, Values: []btf.EnumValue{{Name: "P", Value: 300}}}
	big := &btf.Enum{Name: "big", Size: 8, Values: []btf.EnumValue{
		{Name: "HUGE", Value: 1 << 40}, {Name: "ALL", Value: ^uint64(0)},
	}}
	enums := &btf.Struct{Name: "enums", Size: 16, Members: []btf.Member{
		member("e4", color, 0), member("e1", small, 4), member("e2", mid, 6), member("e8", big, 8),
	}}
	inner := &btf.Struct{Name: "in", Size: 8, Members: []btf.Member{
		member("x", btU8, 0), member("y", btS32, 4),
	}}
	un := &btf.Union{Name: "un", Size: 4, Members: []btf.Member{
		member("i", btU32, 0), member("b", arrayOf(btU8, 4), 0), member("s", btS16, 0),
	}}
	anon := &btf.Union{Size: 4, Members: []btf.Member{member("ua", btU32, 0), member("ub", btS16, 0)}}
	cu64 := &btf.Typedef{Name: "cu64", Type: &btf.Const{Type: &btf.Volatile{Type: btU64}}}
	nested := &btf.Struct{Name: "outer", Size: 96, Members: []btf.Member{
		member("in", inner, 0),
		bitfield("flags", btU32, 64, 3), bitfield("mode", btU32, 67, 5), bitfield("wide", btU32, 72, 20),
		member("after", btU8, 12),
		member("u", un, 16),
		member("tv", cu64, 24),
		member("p", &btf.Pointer{Target: &btf.Void{}}, 32),
		member("ps", &btf.Pointer{Target: inner}, 40),
		member("arr", arrayOf(btU32, 3), 48),
		member("items", arrayOf(inner, 2), 64),
		bitfield("b40", btU64, 80*8, 40), bitfield("sb", btS32, 85*8+1, 4),
		member("", anon, 88),
		member("cc", &btf.Const{Type: btS16}, 92),
	}}
	key := &btf.Struct{Name: "key", Size: 8, Members: []btf.Member{
		member("addr", btU32, 0), member("port", btU16, 4), member("proto", btU8, 6),
	}}
	stats := &btf.Struct{Name: "stats", Size: 12, Members: []btf.Member{
		member("packets", btU32, 0), member("bytes", btU32, 4), member("delta", btS32, 8),
	}}
	item := &btf.Struct{Name: "item", Size: 8, Members: []btf.Member{
		member("id", btU32, 0), member("tag", arrayOf(btChar, 4), 4),
	}}
	misc := &btf.Struct{Name: "misc", Size: 32, Members: []btf.Member{
		member("big", btU128, 0), member("x", btU32, 16), member("f", btF32, 20), member("after", btU32, 24),
	}}
	// A keyless map whose value is a DATASEC of VARs, as libbpf's .data.
	ds := &btf.Datasec{Name: ".data", Size: 16, Vars: []btf.VarSecinfo{
		{Type: &btf.Var{Name: "counter", Type: btS32, Linkage: btf.GlobalVar}, Offset: 0, Size: 4},
		{Type: &btf.Var{Name: "label", Type: arrayOf(btChar, 4), Linkage: btf.GlobalVar}, Offset: 4, Size: 4},
		{Type: &btf.Var{Name: "pair", Type: inner, Linkage: btf.GlobalVar}, Offset: 8, Size: 8},
	}}
	k32 := func(v uint32) []byte { return le(v) }
	pcpu := func(vals ...[]byte) []byte {
		var b []byte
		for i := 0; i < ncpu; i++ {
			b = append(b, pad(vals[i%len(vals)], 16)...)
		}
		return b
	}
	return []btfMapSpec{{
		name: "ints",
		spec: ebpf.MapSpec{Type: ebpf.Hash, Flags: zeroSeed, KeySize: 4, ValueSize: 32, MaxEntries: 8, Key: btU32, Value: ints},
		elems: [][2][]byte{
			{k32(1), le(int8(-1), uint8(255), int16(-300), uint16(65000), uint16(0), int32(-100000), uint32(4000000000), int64(-5), ^uint64(0))},
			{k32(2), le(int8(127), uint8(0), int16(32767), uint16(1), uint16(0xaaaa), int32(2147483647), uint32(0), int64(-9223372036854775808), uint64(42))},
		},
		cmds: []string{"map dump pinned {M}", "map lookup pinned {M} key 1 0 0 0", "map lookup pinned {M} key 7 0 0 0"},
	}, {
		name: "chars",
		spec: ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 24, MaxEntries: 4, Key: u32t, Value: chars},
		elems: [][2][]byte{
			{k32(1), le("AB", uint8(1), uint8(0), pad([]byte("hello"), 8), "abcd", "x\x01\x00\x00", "\x00\xff\x10A")},
			{k32(2), le("\x07\"", uint8(2), uint8(0), pad([]byte("a\"b\\c'"), 8), "ab\x00\x01", "\x7f\x80\x00\x00", "zzzz")},
			{k32(3), le("\\\xff", uint8(0), uint8(0), "zz\x00\x00\x00\x00\x00\x00", "\x00bcd", "\x00\x00\x00\x00", "\x00\x00\x00\x00")},
		},
		cmds: []string{"map dump pinned {M}", "map lookup pinned {M} key 2 0 0 0", "map lookup pinned {M} key 9 0 0 0"},
	}, {
		name: "enums",
		spec: ebpf.MapSpec{Type: ebpf.Hash, Flags: zeroSeed, KeySize: 4, ValueSize: 16, MaxEntries: 8, Key: color, Value: enums},
		elems: [][2][]byte{
			{k32(7), le(uint32(1), uint8(0xfe), uint8(0), uint16(300), uint64(1<<40))},
			{k32(5), le(uint32(5), uint8(1), uint8(0), uint16(3), ^uint64(0))},
			{k32(0xffffffff), le(uint32(0xffffffff), uint8(0x80), uint8(0), uint16(0xffff), uint64(3))},
		},
		cmds: []string{"map dump pinned {M}", "map lookup pinned {M} key 5 0 0 0", "map lookup pinned {M} key 6 0 0 0"},
	}, {
		name: "nested",
		spec: ebpf.MapSpec{Type: ebpf.Hash, Flags: zeroSeed, KeySize: 8, ValueSize: 96, MaxEntries: 8, Key: key, Value: nested},
		elems: [][2][]byte{
			{le(uint32(0x0100007f), uint16(80), uint8(6), uint8(0xee)), le(
				uint8(9), "\xaa\xbb\xcc", int32(-2), // in
				uint32(0b1011_0101_1110_1101_1010_1101), uint8(200), "\x01\x02\x03", // bitfields, after, padding
				uint32(0xdeadbeef), uint32(0), // union, pad
				uint64(1234567890123),                 // tv
				uint64(0xffff888812345678), uint64(0), // pointers
				uint32(1), uint32(2), uint32(3), uint32(0), // arr, pad
				uint8(1), "\x00\x00\x00", int32(-1), uint8(2), "\x00\x00\x00", int32(2), // items
				uint64(0xfedcba9876543210),                 // b40 + sb
				uint32(0x8000ffff), int16(-2), uint16(0))}, // anon, cc
			{le(uint32(0), uint16(0), uint8(0), uint8(0)), make([]byte, 96)},
		},
		cmds: []string{"map dump pinned {M}", "map lookup pinned {M} key 0x7f 0 0 1 80 0 6 0xee", "map lookup pinned {M} key 1 1 1 1 1 1 1 1"},
	}, {
		name: "pcpu",
		spec: ebpf.MapSpec{Type: ebpf.PerCPUHash, Flags: zeroSeed, KeySize: 4, ValueSize: 12, MaxEntries: 8, Key: btS32, Value: stats},
		elems: [][2][]byte{
			{k32(3), pcpu(le(uint32(10), uint32(1500), int32(-3)), le(uint32(20), uint32(3000), int32(4)))},
		},
		cmds: []string{"map dump pinned {M}", "map lookup pinned {M} key 3 0 0 0", "map lookup pinned {M} key 4 0 0 0"},
	}, {
		name:  "pcpuarr",
		spec:  ebpf.MapSpec{Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: 2, Key: btU32, Value: btS64},
		elems: [][2][]byte{{k32(1), pcpu(le(int64(-7)), le(int64(8)))}},
		cmds:  []string{"map dump pinned {M}", "map lookup pinned {M} key 1 0 0 0"},
	}, {
		name: "queue",
		spec: ebpf.MapSpec{Type: ebpf.Queue, ValueSize: 8, MaxEntries: 4, Value: item},
		elems: [][2][]byte{
			{nil, le(uint32(1), "ab\x00\x00")}, {nil, le(uint32(2), "wxyz")},
		},
		cmds: []string{"map peek pinned {M}", "map pop pinned {M}", "map pop pinned {M}", "map pop pinned {M}", "map peek pinned {M}"},
	}, {
		name: "data",
		spec: ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 16, MaxEntries: 1, Value: ds},
		elems: [][2][]byte{
			{k32(0), le(int32(-42), "ok\x00\x00", uint8(3), "\x00\x00\x00", int32(9))},
		},
		cmds: []string{"map dump pinned {M}", "map lookup pinned {M} key 0 0 0 0", "map lookup pinned {M} key 1 0 0 0"},
	}, {
		name: "misc",
		spec: ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: 32, MaxEntries: 2, Key: btU32, Value: misc},
		elems: [][2][]byte{
			{k32(0), le(uint64(0x1122334455667788), uint64(0x99), uint32(5), uint32(0x3f800000), uint32(6), uint32(0))},
			{k32(1), le(uint64(0xabc), uint64(0), uint32(7), uint32(0), uint32(8), uint32(0))},
		},
		cmds: []string{"map dump pinned {M}", "map lookup pinned {M} key 1 0 0 0"},
	}}
}

// setupBTFMaps creates, fills and pins the golden maps under dir, their
// names prefixed with prefix; it returns the maps' pins by name.
func setupBTFMaps(t *testing.T, dir, prefix string, specs []btfMapSpec) map[string]string {
	t.Helper()
	pins := map[string]string{}
	for _, s := range specs {
		spec := s.spec.Copy()
		spec.Name = prefix + s.name
		m, err := ebpf.NewMap(spec)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		for _, e := range s.elems {
			var kp any = e[0]
			if e[0] == nil {
				kp = nil
			}
			var err error
			if spec.Type == ebpf.PerCPUHash || spec.Type == ebpf.PerCPUArray {
				if errno := kbpf.Update(m.FD(), e[0], e[1], 0); errno != 0 {
					err = errno
				}
			} else {
				err = m.Update(kp, e[1], ebpf.UpdateAny)
			}
			if err != nil {
				m.Close()
				t.Fatalf("%s: update: %v", s.name, err)
			}
		}
		pin := filepath.Join(dir, s.name)
		if err := m.Pin(pin); err != nil {
			m.Close()
			t.Fatal(err)
		}
		m.Close()
		pins[s.name] = pin
	}
	// Two maps of one name: a dump by name prints both, with headers.
	for _, n := range []string{"dupa", "dupb"} {
		spec := &ebpf.MapSpec{Name: prefix + "dup", Type: ebpf.Array, KeySize: 4, ValueSize: 4, MaxEntries: 1, Key: btU32, Value: btS32}
		m, err := ebpf.NewMap(spec)
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Pin(filepath.Join(dir, n)); err != nil {
			m.Close()
			t.Fatal(err)
		}
		m.Close()
	}
	return pins
}

// TestBTFGoldenAgainstBpftool compares bpftool and bpfmap on kernel maps
// that carry BTF: dump, lookup, peek and pop in plain, JSON and pretty JSON
// modes must print the same BTF-formatted output, byte for byte.
func TestBTFGoldenAgainstBpftool(t *testing.T) {
	bpftool := bpftoolPath(t)
	ncpu := 0
	if n, err := ebpf.PossibleCPU(); err == nil {
		ncpu = n
	} else {
		t.Fatal(err)
	}
	specs := btfGoldenMaps(ncpu)
	root := bpffsDir(t)
	for _, mode := range []struct {
		name string
		opts []string
	}{{"plain", nil}, {"json", []string{"-j"}}, {"pretty", []string{"-p"}}} {
		t.Run(mode.name, func(t *testing.T) {
			type run struct {
				dir, prefix string
				pins        map[string]string
			}
			mk := func(tool string) run {
				dir := filepath.Join(root, mode.name+"-"+tool)
				if err := os.Mkdir(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				prefix := fmt.Sprintf("b%04x", rand.IntN(1<<16))
				return run{dir, prefix, setupBTFMaps(t, dir, prefix, specs)}
			}
			want, got := mk("bpftool"), mk("bpfmap")
			var cmds []struct{ m, cmd string }
			for _, s := range specs {
				for _, c := range s.cmds {
					cmds = append(cmds, struct{ m, cmd string }{s.name, c})
				}
				cmds = append(cmds, struct{ m, cmd string }{s.name, "map show pinned {M}"})
			}
			cmds = append(cmds, struct{ m, cmd string }{"", "map dump name {N}dup"})
			for _, c := range cmds {
				do := func(r run, exec func([]string) result) result {
					l := strings.ReplaceAll(c.cmd, "{M}", r.pins[c.m])
					l = strings.ReplaceAll(l, "{N}", r.prefix)
					res := exec(append(append([]string{}, mode.opts...), strings.Fields(l)...))
					res.stdout = normalise(res.stdout, r.dir, r.prefix, false)
					res.stderr = normalise(res.stderr, r.dir, r.prefix, false)
					res.stdout = reBTFID.ReplaceAllString(res.stdout, "btf_id${1}N")
					return res
				}
				w := do(want, func(a []string) result { return runBpftool(bpftool, a) })
				g := do(got, runBpfmap)
				if os.Getenv("BPFMAP_BTF_SHOW") != "" {
					t.Logf("%s %s: code %d\n%s%s", c.m, c.cmd, w.code, w.stdout, w.stderr)
				}
				if g != w {
					t.Errorf("%s: %s\n got: code %d\nstdout:\n%s\nstderr:\n%s\nwant (bpftool): code %d\nstdout:\n%s\nstderr:\n%s",
						c.m, c.cmd, g.code, g.stdout, g.stderr, w.code, w.stdout, w.stderr)
				}
			}
		})
	}
}

package cli

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"

	"github.com/bpfmap/bpfmap/internal/kbpf"
)

// BTF kinds (include/uapi/linux/btf.h).
const (
	btfKindUnkn     = 0
	btfKindInt      = 1
	btfKindPtr      = 2
	btfKindArray    = 3
	btfKindStruct   = 4
	btfKindUnion    = 5
	btfKindEnum     = 6
	btfKindFwd      = 7
	btfKindTypedef  = 8
	btfKindVolatile = 9
	btfKindConst    = 10
	btfKindRestrict = 11
	btfKindFunc     = 12
	btfKindProto    = 13
	btfKindVar      = 14
	btfKindDatasec  = 15
	btfKindFloat    = 16
	btfKindDeclTag  = 17
	btfKindTypeTag  = 18
	btfKindEnum64   = 19
)

// BTF_INT_ENCODING bits.
const (
	btfIntSigned = 1 << 0
	btfIntChar   = 1 << 1
	btfIntBool   = 1 << 2
)

// btfMaxResolveDepth is libbpf's MAX_RESOLVE_DEPTH.
const btfMaxResolveDepth = 32

// btfType is one type of a BTF blob, decoded: the common header plus the
// kind's trailing records.
type btfType struct {
	name     string
	kind     int
	kflag    bool
	vlen     int
	sizeType uint32 // size or type, by kind
	intData  uint32 // INT: encoding, offset, bits
	arr      struct{ typ, nelems uint32 }
	members  []btfMember // STRUCT, UNION; DATASEC (name unused, typ, offset, size)
	enums    []btfEnum   // ENUM, ENUM64
}

type btfMember struct {
	name         string
	typ          uint32
	offset, size uint32
}

type btfEnum struct {
	name string
	val  int64 // ENUM: the s32 sign-extended; ENUM64: the u64's bits
}

// btfSpec is a parsed BTF blob; types[0] is void.
type btfSpec struct{ types []btfType }

// parseBTF decodes a raw BTF blob as the kernel returns it. Like libbpf's
// parser, it refuses a blob it cannot make sense of: unknown kinds, records
// past the end, type ids out of range.
func parseBTF(raw []byte) (*btfSpec, error) {
	bad := fmt.Errorf("invalid BTF")
	if len(raw) < 24 {
		return nil, bad
	}
	var bo binary.ByteOrder = binary.LittleEndian
	switch {
	case binary.LittleEndian.Uint16(raw) == 0xeb9f:
	case binary.BigEndian.Uint16(raw) == 0xeb9f:
		bo = binary.BigEndian
	default:
		return nil, bad
	}
	hdrLen := uint64(bo.Uint32(raw[4:]))
	typeOff, typeLen := uint64(bo.Uint32(raw[8:])), uint64(bo.Uint32(raw[12:]))
	strOff, strLen := uint64(bo.Uint32(raw[16:])), uint64(bo.Uint32(raw[20:]))
	n := uint64(len(raw))
	if hdrLen < 24 || hdrLen+typeOff+typeLen > n || hdrLen+strOff+strLen > n {
		return nil, bad
	}
	types := raw[hdrLen+typeOff : hdrLen+typeOff+typeLen]
	strs := raw[hdrLen+strOff : hdrLen+strOff+strLen]
	str := func(off uint32) (string, bool) {
		if uint64(off) >= uint64(len(strs)) {
			return "", off == 0
		}
		for i := int(off); i < len(strs); i++ {
			if strs[i] == 0 {
				return string(strs[off:i]), true
			}
		}
		return "", false
	}
	s := &btfSpec{types: []btfType{{}}}
	for p := 0; p < len(types); {
		if len(types)-p < 12 {
			return nil, bad
		}
		nameOff, info := bo.Uint32(types[p:]), bo.Uint32(types[p+4:])
		var t btfType
		var ok bool
		if t.name, ok = str(nameOff); !ok {
			return nil, bad
		}
		t.kind = int(info>>24) & 0x1f
		t.kflag = info>>31 != 0
		t.vlen = int(info & 0xffff)
		t.sizeType = bo.Uint32(types[p+8:])
		p += 12
		rec := func(size int) []byte {
			if len(types)-p < size {
				return nil
			}
			b := types[p : p+size]
			p += size
			return b
		}
		switch t.kind {
		case btfKindInt:
			b := rec(4)
			if b == nil {
				return nil, bad
			}
			t.intData = bo.Uint32(b)
		case btfKindArray:
			b := rec(12)
			if b == nil {
				return nil, bad
			}
			t.arr.typ, t.arr.nelems = bo.Uint32(b), bo.Uint32(b[8:])
		case btfKindStruct, btfKindUnion, btfKindDatasec:
			b := rec(12 * t.vlen)
			if b == nil {
				return nil, bad
			}
			t.members = make([]btfMember, t.vlen)
			for i := range t.members {
				r := b[12*i:]
				m := &t.members[i]
				if t.kind == btfKindDatasec {
					m.typ, m.offset, m.size = bo.Uint32(r), bo.Uint32(r[4:]), bo.Uint32(r[8:])
					continue
				}
				if m.name, ok = str(bo.Uint32(r)); !ok {
					return nil, bad
				}
				m.typ, m.offset = bo.Uint32(r[4:]), bo.Uint32(r[8:])
			}
		case btfKindEnum, btfKindEnum64:
			size := 8
			if t.kind == btfKindEnum64 {
				size = 12
			}
			b := rec(size * t.vlen)
			if b == nil {
				return nil, bad
			}
			t.enums = make([]btfEnum, t.vlen)
			for i := range t.enums {
				r := b[size*i:]
				e := &t.enums[i]
				if e.name, ok = str(bo.Uint32(r)); !ok {
					return nil, bad
				}
				if t.kind == btfKindEnum {
					e.val = int64(int32(bo.Uint32(r[4:])))
				} else {
					e.val = int64(uint64(bo.Uint32(r[8:]))<<32 | uint64(bo.Uint32(r[4:])))
				}
			}
		case btfKindProto:
			if rec(8*t.vlen) == nil && t.vlen != 0 {
				return nil, bad
			}
		case btfKindVar, btfKindDeclTag:
			if rec(4) == nil {
				return nil, bad
			}
		case btfKindPtr, btfKindFwd, btfKindTypedef, btfKindVolatile, btfKindConst,
			btfKindRestrict, btfKindFunc, btfKindFloat, btfKindTypeTag:
		default:
			return nil, bad
		}
		s.types = append(s.types, t)
	}
	// Every reference must name a type of the blob.
	n32 := uint32(len(s.types))
	for _, t := range s.types[1:] {
		refs := []uint32{}
		switch t.kind {
		case btfKindPtr, btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict,
			btfKindFunc, btfKindVar, btfKindDeclTag, btfKindTypeTag:
			refs = append(refs, t.sizeType)
		case btfKindArray:
			refs = append(refs, t.arr.typ)
		}
		for _, m := range t.members {
			refs = append(refs, m.typ)
		}
		for _, r := range refs {
			if r >= n32 {
				return nil, bad
			}
		}
	}
	return s, nil
}

func (s *btfSpec) typ(id uint32) *btfType {
	if s == nil || uint64(id) >= uint64(len(s.types)) {
		return nil
	}
	return &s.types[id]
}

func isMod(k int) bool {
	return k == btfKindVolatile || k == btfKindConst || k == btfKindRestrict || k == btfKindTypeTag
}

// resolve is btf__resolve_type: through modifiers, typedefs and vars.
func (s *btfSpec) resolve(id uint32) (uint32, bool) {
	t := s.typ(id)
	depth := 0
	for depth < btfMaxResolveDepth && t != nil && id != 0 &&
		(isMod(t.kind) || t.kind == btfKindTypedef || t.kind == btfKindVar) {
		id = t.sizeType
		t = s.typ(id)
		depth++
	}
	if depth == btfMaxResolveDepth || t == nil || id == 0 {
		return 0, false
	}
	return id, true
}

// resolveSize is btf__resolve_size.
func (s *btfSpec) resolveSize(id uint32) (int64, bool) {
	nelems := int64(1)
	for depth := 0; depth < btfMaxResolveDepth; depth++ {
		t := s.typ(id)
		if t == nil {
			return 0, false
		}
		var size int64
		switch t.kind {
		case btfKindInt, btfKindStruct, btfKindUnion, btfKindEnum, btfKindEnum64,
			btfKindDatasec, btfKindFloat:
			size = int64(t.sizeType)
		case btfKindPtr:
			size = 8
		case btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict,
			btfKindVar, btfKindTypeTag:
			id = t.sizeType
			continue
		case btfKindArray:
			if t.arr.nelems != 0 && nelems > int64(^uint32(0))/int64(t.arr.nelems) {
				return 0, false
			}
			nelems *= int64(t.arr.nelems)
			id = t.arr.typ
			continue
		default:
			return 0, false
		}
		if nelems != 0 && size > int64(^uint32(0))/nelems {
			return 0, false
		}
		return nelems * size, true
	}
	return 0, false
}

// btfDumper is bpftool's btf_dumper: it writes data of a BTF type through
// a jsonWriter; plain selects the plain-text variants (the separate pretty
// writer of plain-mode output).
type btfDumper struct {
	s     *btfSpec
	w     *jsonWriter
	plain bool
	steps int // types visited: a malformed blob's blow-up stops at btfMaxSteps
}

// btfMaxSteps bounds the types one element's dump visits.
const btfMaxSteps = 1 << 20

// at returns n bytes of data from off, zero-filled past its end (bpftool
// reads raw memory; a kernel-checked type stays within the value).
func at(data []byte, off, n int) []byte {
	b := make([]byte, n)
	if off >= 0 && off < len(data) {
		copy(b, data[off:])
	}
	return b
}

func skip(data []byte, off int) []byte {
	if off < 0 || off >= len(data) {
		return nil
	}
	return data[off:]
}

// dump is btf_dumper_type; it reports false where bpftool's returns an
// error (the output written so far stays).
func (d *btfDumper) dump(id uint32, data []byte) bool { return d.do(id, 0, data, 0) }

func (d *btfDumper) do(id uint32, bitOff uint8, data []byte, depth int) bool {
	d.steps++
	if d.steps > btfMaxSteps {
		return false
	}
	t := d.s.typ(id)
	if t == nil || depth > 64 {
		d.w.raw("(unsupported-kind")
		return false
	}
	switch t.kind {
	case btfKindInt:
		return d.dumpInt(t, bitOff, data)
	case btfKindStruct, btfKindUnion:
		return d.dumpStruct(t, data, depth)
	case btfKindArray:
		return d.dumpArray(t, data, depth)
	case btfKindEnum, btfKindEnum64:
		return d.dumpEnum(t, data)
	case btfKindPtr:
		v := nativeEndian.Uint64(at(data, 0, 8))
		switch {
		case !d.plain:
			d.w.raw("%d", v)
		case v == 0:
			d.w.raw("(nil)")
		default:
			d.w.raw("0x%x", v)
		}
		return true
	case btfKindUnkn:
		d.w.raw("(unknown)")
		return true
	case btfKindFwd:
		d.w.raw("(fwd-kind-invalid)")
		return false
	case btfKindTypedef, btfKindVolatile, btfKindConst, btfKindRestrict:
		r, ok := d.s.resolve(id)
		if !ok {
			return false
		}
		return d.do(r, bitOff, data, depth+1)
	case btfKindVar:
		d.w.startObject()
		d.w.name(t.name)
		ok := d.do(t.sizeType, bitOff, data, depth+1)
		d.w.endObject()
		return ok
	case btfKindDatasec:
		d.w.startObject()
		d.w.name(t.name)
		d.w.startArray()
		ok := true
		for _, m := range t.members {
			if ok = d.do(m.typ, 0, skip(data, int(m.offset)), depth+1); !ok {
				break
			}
		}
		d.w.endArray()
		d.w.endObject()
		return ok
	}
	d.w.raw("(unsupported-kind")
	return false
}

func (d *btfDumper) dumpEnum(t *btfType, data []byte) bool {
	var v int64
	if t.kind == btfKindEnum64 {
		v = int64(nativeEndian.Uint64(at(data, 0, 8)))
	} else {
		switch t.sizeType {
		case 8:
			v = int64(nativeEndian.Uint64(at(data, 0, 8)))
		case 4:
			v = int64(int32(nativeEndian.Uint32(at(data, 0, 4))))
		case 2:
			v = int64(int16(nativeEndian.Uint16(at(data, 0, 2))))
		case 1:
			v = int64(int8(at(data, 0, 1)[0]))
		default:
			return false
		}
	}
	for _, e := range t.enums {
		if e.val == v {
			d.w.str(e.name)
			return true
		}
	}
	d.w.int(v)
	return true
}

func (d *btfDumper) dumpArray(t *btfType, data []byte, depth int) bool {
	if d.isString(t, data) {
		n := 0
		for n < len(data) && data[n] != 0 {
			n++
		}
		d.w.str(string(data[:n]))
		return true
	}
	size, ok := d.s.resolveSize(t.arr.typ)
	if !ok {
		return false
	}
	d.w.startArray()
	for i := uint32(0); i < t.arr.nelems; i++ {
		off := int64(i) * size
		if size > 0 && off >= int64(len(data)) {
			// Past the value: only a malformed type gets here (bpftool
			// would read beyond its buffer).
			break
		}
		if ok = d.do(t.arr.typ, 0, skip(data, int(off)), depth+1); !ok {
			break
		}
	}
	d.w.endArray()
	return ok
}

// isString is bpftool's is_str_array.
func (d *btfDumper) isString(t *btfType, data []byte) bool {
	if t.arr.nelems == 0 {
		return false
	}
	e := d.s.typ(t.arr.typ)
	for depth := 0; e != nil && isMod(e.kind) && depth < btfMaxResolveDepth; depth++ {
		e = d.s.typ(e.sizeType)
	}
	if e == nil || e.kind != btfKindInt || e.sizeType != 1 {
		return false
	}
	if (e.intData>>24)&0xf != btfIntChar && e.name != "char" {
		return false
	}
	for i := uint32(0); i < t.arr.nelems; i++ {
		c := int8(at(data, int(i), 1)[0])
		if c == 0 {
			return true
		}
		if c <= 0x1f || c == 0x7f { // signed: bytes from 0x80 are negative
			return false
		}
	}
	return false
}

func (d *btfDumper) dumpStruct(t *btfType, data []byte, depth int) bool {
	d.w.startObject()
	ok := true
	for _, m := range t.members {
		bitOff, bitSize := m.offset, uint32(0)
		if t.kflag {
			bitSize, bitOff = bitOff>>24, bitOff&0xffffff
		}
		d.w.name(m.name)
		sub := skip(data, int(bitOff/8))
		if bitSize != 0 {
			d.bitfield(bitSize, uint8(bitOff%8), sub)
		} else if ok = d.do(m.typ, uint8(bitOff%8), sub, depth+1); !ok {
			break
		}
	}
	d.w.endObject()
	return ok
}

func (d *btfDumper) dumpInt(t *btfType, bitOff uint8, data []byte) bool {
	enc, off, bits := (t.intData>>24)&0xf, (t.intData>>16)&0xff, t.intData&0xff
	if bitOff != 0 || off != 0 || bits%8 != 0 {
		d.intBits(off, bits, bitOff, data)
		return true
	}
	if bits == 128 {
		d.int128(at(data, 0, 16))
		return true
	}
	switch enc {
	case 0:
		switch bits {
		case 64:
			d.w.raw("%d", nativeEndian.Uint64(at(data, 0, 8)))
		case 32:
			d.w.raw("%d", nativeEndian.Uint32(at(data, 0, 4)))
		case 16:
			d.w.raw("%d", nativeEndian.Uint16(at(data, 0, 2)))
		case 8:
			d.w.raw("%d", at(data, 0, 1)[0])
		default:
			d.intBits(off, bits, bitOff, data)
		}
	case btfIntSigned:
		switch bits {
		case 64:
			d.w.raw("%d", int64(nativeEndian.Uint64(at(data, 0, 8))))
		case 32:
			d.w.raw("%d", int32(nativeEndian.Uint32(at(data, 0, 4))))
		case 16:
			d.w.raw("%d", int16(nativeEndian.Uint16(at(data, 0, 2))))
		case 8:
			d.w.raw("%d", int8(at(data, 0, 1)[0]))
		default:
			d.intBits(off, bits, bitOff, data)
		}
	case btfIntChar:
		c := at(data, 0, 1)[0]
		switch {
		case c >= 0x20 && c < 0x7f:
			d.w.raw(`"%c"`, c)
		case d.plain:
			d.w.raw("0x%x", c)
		default:
			d.w.raw(`"\u00%02x"`, c)
		}
	case btfIntBool:
		if at(data, 0, 1)[0] != 0 {
			d.w.raw("true")
		} else {
			d.w.raw("false")
		}
	default:
		return false
	}
	return true
}

// intBits is btf_dumper_int_bits.
func (d *btfDumper) intBits(intOff, bits uint32, bitOff uint8, data []byte) {
	total := uint32(bitOff) + intOff
	d.bitfield(bits, uint8(total%8), skip(data, int(total/8)))
}

// bitfield is btf_dumper_bitfield: nrBits bits from bitOff of data, in
// hex (little-endian bit order).
func (d *btfDumper) bitfield(nrBits uint32, bitOff uint8, data []byte) {
	n := (uint32(bitOff) + nrBits + 7) / 8
	if n > 16 {
		n = 16
	}
	b := at(data, 0, 16)
	for i := n; i < 16; i++ {
		b[i] = 0
	}
	lo, hi := nativeEndian.Uint64(b), nativeEndian.Uint64(b[8:])
	// Shift right by bitOff, then keep nrBits bits.
	if bitOff != 0 {
		lo = lo>>bitOff | hi<<(64-bitOff)
		hi >>= bitOff
	}
	switch {
	case nrBits >= 128:
	case nrBits >= 64:
		hi &= 1<<(nrBits-64) - 1
	default:
		hi, lo = 0, lo&(1<<nrBits-1)
	}
	binary.LittleEndian.PutUint64(b, lo)
	binary.LittleEndian.PutUint64(b[8:], hi)
	d.int128(b)
}

// int128 is btf_int128_print of a little-endian 128-bit number.
func (d *btfDumper) int128(b []byte) {
	lo, hi := binary.LittleEndian.Uint64(b), binary.LittleEndian.Uint64(b[8:])
	var s string
	if hi == 0 {
		s = fmt.Sprintf("0x%x", lo)
	} else {
		s = fmt.Sprintf("0x%x%016x", hi, lo)
	}
	if !d.plain {
		s = `"` + s + `"`
	}
	d.w.raw("%s", s)
}

// loadBTF is libbpf's btf__load_from_kernel_by_id: the kernel's BTF object
// id, read back raw and parsed.
func loadBTF(id uint32) (*btfSpec, syscall.Errno) {
	raw, errno := kbpf.BTFByID(id)
	if errno != 0 {
		return nil, errno
	}
	s, err := parseBTF(raw)
	if err != nil {
		return nil, syscall.EINVAL
	}
	return s, 0
}

// mapBTF is bpftool's get_map_kv_btf: the BTF a map's elements are
// formatted with, nil for a map without; false after reporting a failure.
func (t *tool) mapBTF(i *mapInfo) (*btfSpec, bool) {
	switch {
	case i.root != "":
		return nil, true
	case i.btfVmlinuxValueType != 0:
		s, err := loadVmlinuxBTF()
		if err != nil {
			t.perr("failed to get kernel btf")
			return nil, false
		}
		return s, true
	case i.btfValueType != 0:
		s, errno := loadBTF(i.btfID)
		if errno != 0 {
			t.perr("failed to get btf")
			return nil, false
		}
		return s, true
	}
	return nil, true
}

func loadVmlinuxBTF() (*btfSpec, error) {
	raw, err := os.ReadFile("/sys/kernel/btf/vmlinux")
	if err != nil {
		return nil, err
	}
	return parseBTF(raw)
}

// dumpBTF is bpftool's do_dump_btf: one element as an object of its
// formatted key (if the map has a key type) and value, or values per CPU.
func dumpBTF(d *btfDumper, i *mapInfo, key, value []byte) {
	w := d.w
	w.startObject()
	defer w.endObject()
	if i.btfKeyType != 0 {
		w.name("key")
		if !d.dump(i.btfKeyType, key) {
			return
		}
	}
	vt := i.btfVmlinuxValueType
	if vt == 0 {
		vt = i.btfValueType
	}
	if !i.perCPU() {
		w.name("value")
		d.dump(vt, value)
		return
	}
	w.name("values")
	w.startArray()
	step := int((i.valueSize + 7) &^ 7)
	for cpu := 0; cpu < i.ncpu; cpu++ {
		w.startObject()
		w.intField("cpu", int64(cpu))
		w.name("value")
		ok := d.dump(vt, skip(value, cpu*step))
		w.endObject()
		if !ok {
			break
		}
	}
	w.endArray()
}

package cli

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/cilium/ebpf/btf"
)

// marshalBTF builds a raw BTF blob of the given types (little-endian).
func marshalBTF(t testing.TB, types ...btf.Type) []byte {
	t.Helper()
	var b btf.Builder
	for _, typ := range types {
		if _, err := b.Add(typ); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := b.Marshal(nil, &btf.MarshalOptions{Order: binary.LittleEndian})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// dumpAll formats data as every type of the spec, in both modes, and
// reports nothing: it must only not panic nor hang.
func dumpAll(s *btfSpec, data []byte) {
	for id := range s.types {
		for _, plain := range []bool{true, false} {
			w := newJSONWriter(io.Discard)
			w.pretty = plain
			(&btfDumper{s: s, w: w, plain: plain}).dump(uint32(id), data)
			i := &mapInfo{typ: 5, btfKeyType: uint32(id), btfValueType: uint32(id), ncpu: 2, valueSize: uint32(len(data))}
			dumpBTF(&btfDumper{s: s, w: w, plain: plain}, i, data, data)
		}
	}
}

func btfSeeds(t testing.TB) [][]byte {
	inner := &btf.Struct{Name: "in", Size: 8, Members: []btf.Member{member("x", btU8, 0), member("y", btS32, 4)}}
	return [][]byte{
		marshalBTF(t, btU32, btS8, btBool, btXChr, btU128, btF32),
		marshalBTF(t, arrayOf(btChar, 8), &btf.Pointer{Target: inner}, &btf.Typedef{Name: "t", Type: &btf.Const{Type: btU16}}),
		marshalBTF(t, &btf.Struct{Name: "bf", Size: 8, Members: []btf.Member{bitfield("a", btU32, 0, 3), bitfield("b", btU64, 3, 61)}}),
		marshalBTF(t, &btf.Enum{Name: "e", Size: 8, Values: []btf.EnumValue{{Name: "A", Value: 1 << 40}}}),
		marshalBTF(t, &btf.Datasec{Name: ".data", Size: 4, Vars: []btf.VarSecinfo{{Type: &btf.Var{Name: "v", Type: btU32}, Size: 4}}}),
	}
}

// TestBTFMalformed: blobs the parser must refuse, and types the dumper must
// survive (cycles, unknown kinds, huge arrays, ids out of range).
func TestBTFMalformed(t *testing.T) {
	for _, raw := range [][]byte{nil, {0x9f, 0xeb}, bytes.Repeat([]byte{0xff}, 64)} {
		if _, err := parseBTF(raw); err == nil {
			t.Errorf("parseBTF(%x) accepted", raw)
		}
	}
	for _, seed := range btfSeeds(t) {
		for n := 0; n < len(seed); n++ {
			if s, err := parseBTF(seed[:n]); err == nil {
				dumpAll(s, make([]byte, 16))
			}
		}
		s, err := parseBTF(seed)
		if err != nil {
			t.Fatalf("parseBTF: %v", err)
		}
		dumpAll(s, bytes.Repeat([]byte{0x41}, 40))
	}
	self := btfType{kind: btfKindStruct, sizeType: 8, members: []btfMember{{name: "a", typ: 1}, {name: "b", typ: 1}}}
	loop := btfType{kind: btfKindTypedef, sizeType: 2}
	huge := btfType{kind: btfKindArray}
	huge.arr.typ, huge.arr.nelems = 4, ^uint32(0)
	empty := btfType{kind: btfKindStruct}
	weird := []btfType{
		{}, self, loop, huge, empty,
		{kind: btfKindArray}, {kind: btfKindEnum, sizeType: 3}, {kind: btfKindInt, sizeType: 1, intData: 0xff},
		{kind: btfKindInt, sizeType: 1, intData: 0x0f0000ff}, {kind: btfKindVar, sizeType: 99}, {kind: 31},
		{kind: btfKindFwd}, {kind: btfKindFunc}, {kind: btfKindDatasec, members: []btfMember{{typ: 1, offset: 1 << 30}}},
		{kind: btfKindStruct, kflag: true, members: []btfMember{{typ: 7, offset: 0xff<<24 | 0xffffff}}},
	}
	weird[5].arr.typ, weird[5].arr.nelems = 99, 3
	dumpAll(&btfSpec{types: weird}, []byte{1, 2, 3})
}

// FuzzBTF parses arbitrary blobs and dumps arbitrary data with them.
func FuzzBTF(f *testing.F) {
	for _, s := range btfSeeds(f) {
		f.Add(s, []byte("0123456789abcdef"))
	}
	f.Fuzz(func(t *testing.T, raw, data []byte) {
		if s, err := parseBTF(raw); err == nil && len(s.types) < 64 {
			dumpAll(s, data)
		}
	})
}

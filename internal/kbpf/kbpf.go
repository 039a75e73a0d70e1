// Package kbpf drives the running kernel's bpf(2) directly, with raw attr
// bytes, so differential tests see the kernel's exact errnos, and measures the
// kernel's in-BPF cost of map operations for benchmarks. The bpfmap command
// reaches kernel maps through it too, for the same reason: bpftool passes
// the user's attr untouched and prints the kernel's errno.
//
// It owns the kernel side of every comparison bpfmap makes: the encoding of
// the bpf_attr layouts of Linux 6.18 for map creation, element, batch and
// info commands, the plain syscall wrappers that return the kernel's errno
// untouched, and a bpf_loop based XDP program that times map operations
// inside BPF. It holds no emulation logic. On systems other than Linux every
// call reports that the kernel's BPF is unavailable (ENOSYS).
package kbpf

import (
	"encoding/binary"
	"os"
)

// TB is the part of testing.TB that Need uses; the package does not import
// testing, so the bpfmap command can use its kernel client.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Skip(args ...any)
}

// Need skips t with a clear message when Available() fails, unless the
// environment variable BPFMAP_REQUIRE_KERNEL is set to a non-empty value
// other than "0", in which case it calls t.Fatalf with the same message.
func Need(t TB) {
	t.Helper()
	err := Available()
	if err == nil {
		return
	}
	msg := "kernel BPF oracle not available: " + err.Error()
	if v := os.Getenv("BPFMAP_REQUIRE_KERNEL"); v != "" && v != "0" {
		t.Fatalf("%s (BPFMAP_REQUIRE_KERNEL=%q)", msg, v)
	}
	t.Skip(msg)
}

// Op names an operation measured inside BPF by LoopCost.
type Op int

const (
	// OpLookup is bpf_map_lookup_elem on an existing key.
	OpLookup Op = iota
	// OpUpdate is bpf_map_update_elem(BPF_ANY) of an 8-byte value.
	OpUpdate
	// OpPeek is bpf_map_peek_elem of a bloom filter with 4-byte values, on
	// values that were pushed (every probe is present).
	OpPeek
	// OpPushPop is bpf_map_push_elem(BPF_ANY) then bpf_map_pop_elem of an
	// 8-byte value on a queue or stack.
	OpPushPop
)

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case OpLookup:
		return "lookup"
	case OpUpdate:
		return "update"
	case OpPeek:
		return "peek"
	case OpPushPop:
		return "push+pop"
	}
	return "Op(?)"
}

// ne is the byte order of the kernel ABI on the running machine.
var ne = binary.NativeEndian

// CreateAttr mirrors the leading part of union bpf_attr used by
// BPF_MAP_CREATE in Linux 6.18, field by field at the kernel's offsets.
// Pointer-valued fields (ExclProgHash) are raw addresses chosen by the caller.
type CreateAttr struct {
	MapType    uint32   // offset 0: enum bpf_map_type
	KeySize    uint32   // offset 4
	ValueSize  uint32   // offset 8
	MaxEntries uint32   // offset 12
	MapFlags   uint32   // offset 16
	InnerMapFD uint32   // offset 20
	NumaNode   uint32   // offset 24
	MapName    [16]byte // offset 28: char map_name[BPF_OBJ_NAME_LEN]
	MapIfindex uint32   // offset 44
	BTFFD      uint32   // offset 48
	// BTFKeyTypeID is btf_key_type_id (offset 52).
	BTFKeyTypeID uint32
	// BTFValueTypeID is btf_value_type_id (offset 56).
	BTFValueTypeID uint32
	// BTFVmlinuxValueTypeID is btf_vmlinux_value_type_id (offset 60).
	BTFVmlinuxValueTypeID uint32
	// MapExtra is map_extra (offset 64).
	MapExtra uint64
	// ValueTypeBTFObjFD is value_type_btf_obj_fd (offset 72, __s32).
	ValueTypeBTFObjFD int32
	// MapTokenFD is map_token_fd (offset 76, __s32).
	MapTokenFD int32
	// ExclProgHash is excl_prog_hash (offset 80), a user address.
	ExclProgHash uint64
	// ExclProgHashSize is excl_prog_hash_size (offset 88).
	ExclProgHashSize uint32
}

// CreateAttrSize is offsetofend(union bpf_attr, excl_prog_hash_size) in
// Linux 6.18: the length of the attr CreateAttr.Bytes returns.
const CreateAttrSize = 92

// Bytes returns the attr bytes for BPF_MAP_CREATE; its length is the offset
// just past the last field (CreateAttrSize).
func (a *CreateAttr) Bytes() []byte {
	b := make([]byte, CreateAttrSize)
	ne.PutUint32(b[0:], a.MapType)
	ne.PutUint32(b[4:], a.KeySize)
	ne.PutUint32(b[8:], a.ValueSize)
	ne.PutUint32(b[12:], a.MaxEntries)
	ne.PutUint32(b[16:], a.MapFlags)
	ne.PutUint32(b[20:], a.InnerMapFD)
	ne.PutUint32(b[24:], a.NumaNode)
	copy(b[28:44], a.MapName[:])
	ne.PutUint32(b[44:], a.MapIfindex)
	ne.PutUint32(b[48:], a.BTFFD)
	ne.PutUint32(b[52:], a.BTFKeyTypeID)
	ne.PutUint32(b[56:], a.BTFValueTypeID)
	ne.PutUint32(b[60:], a.BTFVmlinuxValueTypeID)
	ne.PutUint64(b[64:], a.MapExtra)
	ne.PutUint32(b[72:], uint32(a.ValueTypeBTFObjFD))
	ne.PutUint32(b[76:], uint32(a.MapTokenFD))
	ne.PutUint64(b[80:], a.ExclProgHash)
	ne.PutUint32(b[88:], a.ExclProgHashSize)
	return b
}

// BatchAttr is the batch part of bpf_attr used by the four batch commands:
// in_batch, out_batch, keys and values are buffers (nil is passed as NULL, a
// non-nil slice as a pointer to its first byte), Count is the element count
// passed in, ElemFlags and Flags are passed verbatim. The map fd is an
// argument of Batch.
type BatchAttr struct {
	InBatch, OutBatch, Keys, Values []byte
	Count                           uint32
	ElemFlags, Flags                uint64
}

// MapInfoSize is sizeof(struct bpf_map_info) in Linux 6.18.
const MapInfoSize = 104

// MapInfo is struct bpf_map_info of Linux 6.18, decoded.
type MapInfo struct {
	Type       uint32   // offset 0
	ID         uint32   // offset 4
	KeySize    uint32   // offset 8
	ValueSize  uint32   // offset 12
	MaxEntries uint32   // offset 16
	MapFlags   uint32   // offset 20
	Name       [16]byte // offset 24
	Ifindex    uint32   // offset 40
	// BTFVmlinuxValueTypeID is btf_vmlinux_value_type_id (offset 44).
	BTFVmlinuxValueTypeID uint32
	NetnsDev              uint64 // offset 48
	NetnsIno              uint64 // offset 56
	BTFID                 uint32 // offset 64
	BTFKeyTypeID          uint32 // offset 68
	BTFValueTypeID        uint32 // offset 72
	BTFVmlinuxID          uint32 // offset 76
	MapExtra              uint64 // offset 80
	Hash                  uint64 // offset 88: user address of the hash buffer (0 here)
	HashSize              uint32 // offset 96
	// Len is the info_len the kernel wrote back into the attr: how many
	// bytes of the structure it filled.
	Len uint32
}

// NameString returns Name up to its first NUL byte.
func (m *MapInfo) NameString() string {
	for i, c := range m.Name {
		if c == 0 {
			return string(m.Name[:i])
		}
	}
	return string(m.Name[:])
}

// decodeMapInfo decodes a struct bpf_map_info buffer of MapInfoSize bytes.
func decodeMapInfo(b []byte, n uint32) MapInfo {
	var m MapInfo
	m.Type = ne.Uint32(b[0:])
	m.ID = ne.Uint32(b[4:])
	m.KeySize = ne.Uint32(b[8:])
	m.ValueSize = ne.Uint32(b[12:])
	m.MaxEntries = ne.Uint32(b[16:])
	m.MapFlags = ne.Uint32(b[20:])
	copy(m.Name[:], b[24:40])
	m.Ifindex = ne.Uint32(b[40:])
	m.BTFVmlinuxValueTypeID = ne.Uint32(b[44:])
	m.NetnsDev = ne.Uint64(b[48:])
	m.NetnsIno = ne.Uint64(b[56:])
	m.BTFID = ne.Uint32(b[64:])
	m.BTFKeyTypeID = ne.Uint32(b[68:])
	m.BTFValueTypeID = ne.Uint32(b[72:])
	m.BTFVmlinuxID = ne.Uint32(b[76:])
	m.MapExtra = ne.Uint64(b[80:])
	m.Hash = ne.Uint64(b[88:])
	m.HashSize = ne.Uint32(b[96:])
	m.Len = n
	return m
}

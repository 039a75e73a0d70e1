package sys

// Commands of bpf(2) that BPF implements (enum bpf_cmd). Every other
// command is EINVAL, as an unknown command is for the kernel.
const (
	BPF_MAP_CREATE                  = 0
	BPF_MAP_LOOKUP_ELEM             = 1
	BPF_MAP_UPDATE_ELEM             = 2
	BPF_MAP_DELETE_ELEM             = 3
	BPF_MAP_GET_NEXT_KEY            = 4
	BPF_OBJ_PIN                     = 6
	BPF_OBJ_GET                     = 7
	BPF_MAP_GET_NEXT_ID             = 12
	BPF_MAP_GET_FD_BY_ID            = 14
	BPF_OBJ_GET_INFO_BY_FD          = 15
	BPF_MAP_LOOKUP_AND_DELETE_ELEM  = 21
	BPF_MAP_FREEZE                  = 22
	BPF_MAP_LOOKUP_BATCH            = 24
	BPF_MAP_LOOKUP_AND_DELETE_BATCH = 25
	BPF_MAP_UPDATE_BATCH            = 26
	BPF_MAP_DELETE_BATCH            = 27
)

// Flags of the attr fields BPF reads (include/uapi/linux/bpf.h).
const (
	BPF_ANY     = 0 // UPDATE flags: create or replace
	BPF_NOEXIST = 1 // UPDATE flags: create only
	BPF_EXIST   = 2 // UPDATE flags: replace only
	BPF_F_LOCK  = 4 // element flags: bpf_spin_lock values (no user-space map has one)

	BPF_F_RDONLY  = 1 << 3  // map_flags, file_flags, open_flags: read-only fd
	BPF_F_WRONLY  = 1 << 4  // map_flags, file_flags, open_flags: write-only fd
	BPF_F_PATH_FD = 1 << 14 // file_flags: pathname is relative to path_fd
)

// Sizes of the kernel's ABI structures in Linux 6.18, and the end of the
// fields each command reads (offsetofend of its last field: the bytes of
// the attr after it must be zero, else EINVAL).
const (
	// AttrSize is sizeof(union bpf_attr) in Linux 6.18: bytes of a
	// larger attr beyond it must be zero (E2BIG).
	AttrSize = 168
	// PageSize is the largest attr size (E2BIG above).
	PageSize = 4096

	MapCreateAttrSize  = 92 // BPF_MAP_CREATE: excl_prog_hash_size
	MapElemAttrSize    = 32 // LOOKUP/UPDATE/LOOKUP_AND_DELETE_ELEM: flags
	MapDeleteAttrSize  = 16 // DELETE_ELEM: key
	MapNextKeyAttrSize = 24 // GET_NEXT_KEY: next_key
	MapFreezeAttrSize  = 4  // FREEZE: map_fd
	MapBatchAttrSize   = 56 // the four batch commands: batch.flags
	ObjAttrSize        = 20 // OBJ_PIN, OBJ_GET: path_fd
	GetNextIDAttrSize  = 8  // MAP_GET_NEXT_ID: next_id
	GetFDByIDAttrSize  = 12 // MAP_GET_FD_BY_ID: open_flags
	InfoAttrSize       = 16 // OBJ_GET_INFO_BY_FD: info.info

	// MapInfoSize is sizeof(struct bpf_map_info) in Linux 6.18: the most
	// OBJ_GET_INFO_BY_FD writes, and the info_len it writes back at most.
	MapInfoSize = 104
	// mapInfoTail is where the kernel starts requiring a larger info
	// buffer to be zero (offsetofend of hash_size): non-zero bytes from
	// here to info_len are E2BIG.
	mapInfoTail = 100
)

// MapCreateAttr is union bpf_attr as BPF_MAP_CREATE reads it, with the
// kernel's layout: BPF(BPF_MAP_CREATE, unsafe.Pointer(&a), unsafe.Sizeof(a)).
type MapCreateAttr struct {
	MapType               uint32   // offset 0: enum bpf_map_type
	KeySize               uint32   // offset 4
	ValueSize             uint32   // offset 8
	MaxEntries            uint32   // offset 12
	MapFlags              uint32   // offset 16
	InnerMapFD            uint32   // offset 20: template of ARRAY/HASH_OF_MAPS
	NumaNode              uint32   // offset 24
	MapName               [16]byte // offset 28: NUL-terminated, [A-Za-z0-9_.]
	MapIfindex            uint32   // offset 44
	BTFFD                 uint32   // offset 48
	BTFKeyTypeID          uint32   // offset 52
	BTFValueTypeID        uint32   // offset 56
	BTFVmlinuxValueTypeID uint32   // offset 60
	MapExtra              uint64   // offset 64
	ValueTypeBTFObjFD     int32    // offset 72
	MapTokenFD            int32    // offset 76
	ExclProgHash          uint64   // offset 80: user address
	ExclProgHashSize      uint32   // offset 88
	_                     uint32   // padding to 96: zero
}

// MapElemAttr is union bpf_attr as LOOKUP_ELEM, UPDATE_ELEM, DELETE_ELEM,
// GET_NEXT_KEY, LOOKUP_AND_DELETE_ELEM and FREEZE read it. Key and Value
// are user addresses (0 is NULL); for GET_NEXT_KEY, Value is next_key.
type MapElemAttr struct {
	MapFD uint32 // offset 0
	_     uint32 // offset 4: padding, zero
	Key   uint64 // offset 8
	Value uint64 // offset 16: value, or next_key for GET_NEXT_KEY
	Flags uint64 // offset 24
}

// MapBatchAttr is union bpf_attr's batch part, read by the four batch
// commands. InBatch, OutBatch, Keys and Values are user addresses; Count is
// read as the capacity of Keys and Values (in elements) and written back as
// the number of elements processed.
type MapBatchAttr struct {
	InBatch   uint64 // offset 0
	OutBatch  uint64 // offset 8
	Keys      uint64 // offset 16
	Values    uint64 // offset 24
	Count     uint32 // offset 32
	MapFD     uint32 // offset 36
	ElemFlags uint64 // offset 40
	Flags     uint64 // offset 48
}

// ObjAttr is union bpf_attr as OBJ_PIN and OBJ_GET read it. Pathname is the
// user address of a NUL-terminated path.
type ObjAttr struct {
	Pathname  uint64 // offset 0
	BPFFD     uint32 // offset 8: the map to pin (OBJ_PIN); must be 0 for OBJ_GET
	FileFlags uint32 // offset 12
	PathFD    int32  // offset 16: directory fd for BPF_F_PATH_FD
	_         uint32 // padding to 24: zero
}

// GetIDAttr is union bpf_attr as MAP_GET_NEXT_ID (ID is start_id, NextID
// is written back) and MAP_GET_FD_BY_ID (ID is map_id, OpenFlags the fd's
// access mode) read it.
type GetIDAttr struct {
	ID        uint32 // offset 0: start_id / map_id
	NextID    uint32 // offset 4
	OpenFlags uint32 // offset 8
}

// InfoAttr is union bpf_attr's info part, read by OBJ_GET_INFO_BY_FD. Info
// is the user address of a struct bpf_map_info buffer of InfoLen bytes;
// InfoLen is written back.
type InfoAttr struct {
	BPFFD   uint32 // offset 0
	InfoLen uint32 // offset 4
	Info    uint64 // offset 8
}

// MapInfo is struct bpf_map_info of Linux 6.18.
type MapInfo struct {
	Type                  uint32   // offset 0
	ID                    uint32   // offset 4
	KeySize               uint32   // offset 8
	ValueSize             uint32   // offset 12
	MaxEntries            uint32   // offset 16
	MapFlags              uint32   // offset 20
	Name                  [16]byte // offset 24
	Ifindex               uint32   // offset 40
	BTFVmlinuxValueTypeID uint32   // offset 44
	NetnsDev              uint64   // offset 48
	NetnsIno              uint64   // offset 56
	BTFID                 uint32   // offset 64
	BTFKeyTypeID          uint32   // offset 68
	BTFValueTypeID        uint32   // offset 72
	BTFVmlinuxID          uint32   // offset 76
	MapExtra              uint64   // offset 80
	Hash                  uint64   // offset 88: user address for the map's SHA-256 (ARRAY, frozen)
	HashSize              uint32   // offset 96
	_                     uint32   // offset 100: padding, zero
}

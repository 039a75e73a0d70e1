// Package uapi holds the numbers of the kernel's BPF user-space ABI that
// bpfmap speaks: map types, map_flags bits, element-command flags, command
// numbers and the errno values the kernel returns. It owns no behaviour; every
// rule that uses these numbers lives in the command layer or a map family.
package uapi

import "syscall"

// MapType is the kernel's enum bpf_map_type.
type MapType uint32

// Map types (include/uapi/linux/bpf.h).
const (
	MapTypeUnspec             MapType = 0
	MapTypeHash               MapType = 1
	MapTypeArray              MapType = 2
	MapTypeProgArray          MapType = 3
	MapTypePerfEventArray     MapType = 4
	MapTypePercpuHash         MapType = 5
	MapTypePercpuArray        MapType = 6
	MapTypeStackTrace         MapType = 7
	MapTypeCgroupArray        MapType = 8
	MapTypeLRUHash            MapType = 9
	MapTypeLRUPercpuHash      MapType = 10
	MapTypeLPMTrie            MapType = 11
	MapTypeArrayOfMaps        MapType = 12
	MapTypeHashOfMaps         MapType = 13
	MapTypeDevmap             MapType = 14
	MapTypeSockmap            MapType = 15
	MapTypeCPUMap             MapType = 16
	MapTypeXSKMap             MapType = 17
	MapTypeSockhash           MapType = 18
	MapTypeCgroupStorage      MapType = 19
	MapTypeReuseportSockarray MapType = 20
	MapTypePercpuCgroupStor   MapType = 21
	MapTypeQueue              MapType = 22
	MapTypeStack              MapType = 23
	MapTypeSkStorage          MapType = 24
	MapTypeDevmapHash         MapType = 25
	MapTypeStructOps          MapType = 26
	MapTypeRingbuf            MapType = 27
	MapTypeInodeStorage       MapType = 28
	MapTypeTaskStorage        MapType = 29
	MapTypeBloomFilter        MapType = 30
	MapTypeUserRingbuf        MapType = 31
	MapTypeCgrpStorage        MapType = 32
	MapTypeArena              MapType = 33

	// MapTypeMax is one past the highest type the 6.18 kernel knows.
	MapTypeMax MapType = 34
)

// map_flags bits accepted by BPF_MAP_CREATE.
const (
	FNoPrealloc     uint32 = 1 << 0
	FNoCommonLRU    uint32 = 1 << 1
	FNumaNode       uint32 = 1 << 2
	FRdonly         uint32 = 1 << 3
	FWronly         uint32 = 1 << 4
	FStackBuildID   uint32 = 1 << 5
	FZeroSeed       uint32 = 1 << 6
	FRdonlyProg     uint32 = 1 << 7
	FWronlyProg     uint32 = 1 << 8
	FClone          uint32 = 1 << 9
	FMmapable       uint32 = 1 << 10
	FPreserveElems  uint32 = 1 << 11
	FInnerMap       uint32 = 1 << 12
	FLink           uint32 = 1 << 13
	FPathFD         uint32 = 1 << 14
	FVtypeBTFObjFD  uint32 = 1 << 15
	FTokenFD        uint32 = 1 << 16
	FSegvOnFault    uint32 = 1 << 17
	FNoUserConv     uint32 = 1 << 18
	FAccessMask            = FRdonly | FWronly
	FProgAccessMask        = FRdonlyProg | FWronlyProg
	FAllAccessFlags        = FAccessMask | FProgAccessMask
)

// Element-command flags (attr.flags of UPDATE/LOOKUP, batch.elem_flags).
const (
	Any     uint64 = 0
	NoExist uint64 = 1
	Exist   uint64 = 2
	FLock   uint64 = 4
)

// Cmd is the kernel's enum bpf_cmd.
type Cmd uint32

// Commands handled by bpfmap.
const (
	CmdMapCreate               Cmd = 0
	CmdMapLookupElem           Cmd = 1
	CmdMapUpdateElem           Cmd = 2
	CmdMapDeleteElem           Cmd = 3
	CmdMapGetNextKey           Cmd = 4
	CmdObjPin                  Cmd = 6
	CmdObjGet                  Cmd = 7
	CmdMapGetNextID            Cmd = 12
	CmdMapGetFDByID            Cmd = 14
	CmdObjGetInfoByFD          Cmd = 15
	CmdMapLookupAndDeleteElem  Cmd = 21
	CmdMapFreeze               Cmd = 22
	CmdMapLookupBatch          Cmd = 24
	CmdMapLookupAndDeleteBatch Cmd = 25
	CmdMapUpdateBatch          Cmd = 26
	CmdMapDeleteBatch          Cmd = 27
)

// Sizes fixed by the ABI or by the 6.18 kernel's allocator.
const (
	ObjNameLen     = 16      // BPF_OBJ_NAME_LEN
	KmallocMaxSize = 4 << 20 // KMALLOC_MAX_SIZE
	PcpuMinUnit    = 32 << 10
	PageSize       = 4096 // the kernel's PAGE_SIZE on the platforms modelled
)

// Errno values. ENOTSUPP (524) is kernel-internal but leaks to user space
// from BPF commands; it is distinct from EOPNOTSUPP.
const (
	EPERM      = syscall.EPERM
	ENOENT     = syscall.ENOENT
	E2BIG      = syscall.E2BIG
	EBADF      = syscall.EBADF
	ENOMEM     = syscall.ENOMEM
	EACCES     = syscall.EACCES
	EFAULT     = syscall.EFAULT
	EBUSY      = syscall.EBUSY
	EEXIST     = syscall.EEXIST
	EINVAL     = syscall.EINVAL
	ENOSPC     = syscall.ENOSPC
	ENOTDIR    = syscall.ENOTDIR
	EMFILE     = syscall.EMFILE
	ENFILE     = syscall.ENFILE
	EINTR      = syscall.EINTR
	EOPNOTSUPP = syscall.EOPNOTSUPP
	ENOTSUPP   = syscall.Errno(524)
)

// EBADFD is what BPF_OBJ_GET_INFO_BY_FD returns for an fd that is not open.
const EBADFD = syscall.Errno(77)

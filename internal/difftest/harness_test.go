//go:build linux

package difftest

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/bpfmap/bpfmap/internal/command"
	"github.com/bpfmap/bpfmap/internal/kbpf"
	"golang.org/x/sys/unix"
)

// Map types, flags and commands of the uapi, spelled out here so the tests
// do not depend on the code under test for their expectations.
const (
	tHash        = 1
	tArray       = 2
	tPercpuHash  = 5
	tPercpuArray = 6
	tLRU         = 9
	tLRUPercpu   = 10
	tQueue       = 22
	tStack       = 23
	tBloom       = 30

	fNoPrealloc  = 1 << 0
	fNoCommonLRU = 1 << 1
	fNumaNode    = 1 << 2
	fRdonly      = 1 << 3
	fWronly      = 1 << 4
	fZeroSeed    = 1 << 6
	fRdonlyProg  = 1 << 7
	fWronlyProg  = 1 << 8
	fMmapable    = 1 << 10
	fTokenFD     = 1 << 16

	updAny     = 0
	updNoExist = 1
	updExist   = 2
	fLock      = 4

	cmdLookupBatch          = 24
	cmdLookupAndDeleteBatch = 25
	cmdUpdateBatch          = 26
	cmdDeleteBatch          = 27

	eNOTSUPP = syscall.Errno(524)
	// eForeign stands for a bpfmap error that is not an errno at all.
	eForeign = syscall.Errno(1 << 20)
)

// allTypes are the keyed types; keylessTypes have key_size 0 and push,
// peek and pop instead of keys; lockTypes are all types the lockstep tests
// run.
var (
	allTypes     = []uint32{tHash, tArray, tPercpuHash, tPercpuArray, tLRU, tLRUPercpu}
	keylessTypes = []uint32{tQueue, tStack, tBloom}
	lockTypes    = append(append([]uint32(nil), allTypes...), keylessTypes...)
)

func typeName(t uint32) string {
	switch t {
	case tHash:
		return "HASH"
	case tArray:
		return "ARRAY"
	case tPercpuHash:
		return "PERCPU_HASH"
	case tPercpuArray:
		return "PERCPU_ARRAY"
	case tLRU:
		return "LRU_HASH"
	case tLRUPercpu:
		return "LRU_PERCPU_HASH"
	case tQueue:
		return "QUEUE"
	case tStack:
		return "STACK"
	case tBloom:
		return "BLOOM_FILTER"
	}
	return "type" + strconv.Itoa(int(t))
}

func isHash(t uint32) bool {
	return t == tHash || t == tPercpuHash || t == tLRU || t == tLRUPercpu
}
func isLRU(t uint32) bool { return t == tLRU || t == tLRUPercpu }
func isPercpu(t uint32) bool {
	return t == tPercpuHash || t == tPercpuArray || t == tLRUPercpu
}
func isKeyless(t uint32) bool {
	return t == tQueue || t == tStack || t == tBloom
}

func batchName(cmd uint32) string {
	switch cmd {
	case cmdLookupBatch:
		return "LOOKUP_BATCH"
	case cmdLookupAndDeleteBatch:
		return "LOOKUP_AND_DELETE_BATCH"
	case cmdUpdateBatch:
		return "UPDATE_BATCH"
	case cmdDeleteBatch:
		return "DELETE_BATCH"
	}
	return "BATCH" + strconv.Itoa(int(cmd))
}

var errnoNames = map[syscall.Errno]string{
	0:                  "OK",
	syscall.EPERM:      "EPERM",
	syscall.ENOENT:     "ENOENT",
	syscall.EINTR:      "EINTR",
	syscall.E2BIG:      "E2BIG",
	syscall.EBADF:      "EBADF",
	syscall.ENOMEM:     "ENOMEM",
	syscall.EACCES:     "EACCES",
	syscall.EFAULT:     "EFAULT",
	syscall.EBUSY:      "EBUSY",
	syscall.EEXIST:     "EEXIST",
	syscall.EINVAL:     "EINVAL",
	syscall.ENOSPC:     "ENOSPC",
	syscall.Errno(77):  "EBADFD",
	syscall.EOPNOTSUPP: "EOPNOTSUPP",
	eNOTSUPP:           "ENOTSUPP(524)",
	eForeign:           "non-errno error",
}

func errName(e syscall.Errno) string {
	if n, ok := errnoNames[e]; ok {
		return n
	}
	return "errno " + strconv.Itoa(int(e))
}

// errnoOf converts a bpfmap error to the errno the kernel would return. An
// error that is no errno becomes eForeign and is described by the caller.
func errnoOf(err error) syscall.Errno {
	if err == nil {
		return 0
	}
	var e syscall.Errno
	if errors.As(err, &e) {
		return e
	}
	return eForeign
}

// hx renders a buffer: "NULL" for nil, else hex (long buffers abbreviated).
func hx(b []byte) string {
	if b == nil {
		return "NULL"
	}
	if len(b) <= 48 {
		return hex.EncodeToString(b)
	}
	return fmt.Sprintf("%s…(%d bytes)", hex.EncodeToString(b[:48]), len(b))
}

// diffBytes describes where a and b differ (nil if they are equal).
func diffBytes(a, b []byte) string {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return fmt.Sprintf("lengths differ: kernel %s, bpfmap %s", hx(a), hx(b))
	}
	for i := range a {
		if a[i] != b[i] {
			lo := i &^ 15
			hi := min(lo+32, len(a))
			return fmt.Sprintf("first difference at byte %d of %d:\n\t\tkernel [%d:%d] %s\n\t\tbpfmap [%d:%d] %s",
				i, len(a), lo, hi, hex.EncodeToString(a[lo:hi]), lo, hi, hex.EncodeToString(b[lo:hi]))
		}
	}
	return ""
}

// attrString is a short, readable rendering of a create attr.
func attrString(a *kbpf.CreateAttr) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s key=%d value=%d max=%d flags=%#x", typeName(a.MapType), a.KeySize, a.ValueSize, a.MaxEntries, a.MapFlags)
	if a.NumaNode != 0 {
		fmt.Fprintf(&sb, " numa=%d", a.NumaNode)
	}
	if a.MapName != ([16]byte{}) {
		fmt.Fprintf(&sb, " name=%q", string(a.MapName[:]))
	}
	if a.MapIfindex != 0 {
		fmt.Fprintf(&sb, " ifindex=%d", a.MapIfindex)
	}
	if a.InnerMapFD != 0 {
		fmt.Fprintf(&sb, " inner_map_fd=%d", a.InnerMapFD)
	}
	if a.BTFFD != 0 || a.BTFKeyTypeID != 0 || a.BTFValueTypeID != 0 || a.BTFVmlinuxValueTypeID != 0 {
		fmt.Fprintf(&sb, " btf_fd=%d btf_key=%d btf_value=%d btf_vmlinux_value=%d", a.BTFFD, a.BTFKeyTypeID, a.BTFValueTypeID, a.BTFVmlinuxValueTypeID)
	}
	if a.MapExtra != 0 {
		fmt.Fprintf(&sb, " map_extra=%#x", a.MapExtra)
	}
	if a.ExclProgHash != 0 || a.ExclProgHashSize != 0 {
		fmt.Fprintf(&sb, " excl_prog_hash=%#x size=%d", a.ExclProgHash, a.ExclProgHashSize)
	}
	return sb.String()
}

// toCommand converts the kernel attr to bpfmap's identical attr.
func toCommand(a *kbpf.CreateAttr) *command.CreateAttr {
	return &command.CreateAttr{
		MapType: a.MapType, KeySize: a.KeySize, ValueSize: a.ValueSize, MaxEntries: a.MaxEntries,
		MapFlags: a.MapFlags, InnerMapFD: a.InnerMapFD, NumaNode: a.NumaNode, MapName: a.MapName,
		MapIfindex: a.MapIfindex, BTFFD: a.BTFFD, BTFKeyTypeID: a.BTFKeyTypeID,
		BTFValueTypeID: a.BTFValueTypeID, BTFVmlinuxValueTypeID: a.BTFVmlinuxValueTypeID,
		MapExtra: a.MapExtra, ValueTypeBTFObjFD: a.ValueTypeBTFObjFD, MapTokenFD: a.MapTokenFD,
		ExclProgHash: a.ExclProgHash, ExclProgHashSize: a.ExclProgHashSize,
	}
}

// ncpu is the kernel's number of possible CPUs, which bpfmap must model.
func ncpu() int { return command.PossibleCPUs() }

// options model the kernel's possible CPUs, and every operation runs on
// CPU 0: the kernel side of tests that depend on the CPU (LRU maps) runs on
// a thread pinned to CPU 0 (pinCPU).
func options() command.Options {
	return command.Options{PossibleCPUs: ncpu(), CPU: func() int { return 0 }}
}

// pinCPU locks the calling goroutine to its thread and pins the thread to
// CPU cpu, so that the kernel's LRU sees every command on that CPU. The
// returned function restores the thread's affinity and unlocks it.
func pinCPU(tb testing.TB, cpu int) (restore func()) {
	tb.Helper()
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("sched_getaffinity: %v", err)
	}
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		runtime.UnlockOSThread()
		tb.Fatalf("sched_setaffinity(CPU %d): %v", cpu, err)
	}
	return func() {
		_ = unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}

func roundUp8(v uint32) int { return int((uint64(v) + 7) &^ 7) }

// sysValueSize is the number of value bytes an element command moves.
func sysValueSize(a *kbpf.CreateAttr) int {
	if isPercpu(a.MapType) {
		return roundUp8(a.ValueSize) * ncpu()
	}
	return int(a.ValueSize)
}

func name16(s string) [16]byte {
	var n [16]byte
	copy(n[:], s)
	return n
}

func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }

// envInt reads a positive integer from the environment.
func envInt(name string, def int) int {
	if v := os.Getenv(name); v != "" {
		n, err := strconv.ParseInt(v, 0, 64)
		if err == nil && n > 0 {
			return int(n)
		}
	}
	return def
}

// envSeed returns the seed from the environment, or a fresh random one.
func envSeed(name string) (seed uint64, fromEnv bool) {
	if v := os.Getenv(name); v != "" {
		if n, err := strconv.ParseUint(v, 0, 64); err == nil {
			return n, true
		}
	}
	return rand.Uint64(), false
}

// ---- the two targets ----

// batchArgs is one batch call's attr; the buffers are the caller's.
type batchArgs struct {
	in, out, keys, values []byte
	count                 uint32
	elemFlags, flags      uint64
}

// target runs element commands on one side: the kernel or bpfmap.
type target interface {
	side() string
	lookup(key, value []byte, flags uint64) syscall.Errno
	update(key, value []byte, flags uint64) syscall.Errno
	del(key []byte) syscall.Errno
	next(key, next []byte) syscall.Errno
	lookupAndDelete(key, value []byte, flags uint64) syscall.Errno
	freeze() syscall.Errno
	// batch runs cmd and returns the count written back and the errno.
	batch(cmd uint32, b *batchArgs) (uint32, syscall.Errno)
	close()
}

type kernelTarget struct{ fd int }

func (k *kernelTarget) side() string { return "kernel" }
func (k *kernelTarget) lookup(key, value []byte, flags uint64) syscall.Errno {
	return kbpf.Lookup(k.fd, key, value, flags)
}
func (k *kernelTarget) update(key, value []byte, flags uint64) syscall.Errno {
	return kbpf.Update(k.fd, key, value, flags)
}
func (k *kernelTarget) del(key []byte) syscall.Errno { return kbpf.Delete(k.fd, key) }
func (k *kernelTarget) next(key, next []byte) syscall.Errno {
	return kbpf.GetNextKey(k.fd, key, next)
}
func (k *kernelTarget) lookupAndDelete(key, value []byte, flags uint64) syscall.Errno {
	return kbpf.LookupAndDelete(k.fd, key, value, flags)
}
func (k *kernelTarget) freeze() syscall.Errno { return kbpf.Freeze(k.fd) }
func (k *kernelTarget) batch(cmd uint32, b *batchArgs) (uint32, syscall.Errno) {
	return kbpf.Batch(cmd, k.fd, &kbpf.BatchAttr{
		InBatch: b.in, OutBatch: b.out, Keys: b.keys, Values: b.values,
		Count: b.count, ElemFlags: b.elemFlags, Flags: b.flags,
	})
}
func (k *kernelTarget) close() { _ = kbpf.Close(k.fd) }

type bpfmapTarget struct{ h *command.Handle }

func (m *bpfmapTarget) side() string { return "bpfmap" }
func (m *bpfmapTarget) lookup(key, value []byte, flags uint64) syscall.Errno {
	return errnoOf(m.h.Lookup(key, value, flags))
}
func (m *bpfmapTarget) update(key, value []byte, flags uint64) syscall.Errno {
	return errnoOf(m.h.Update(key, value, flags))
}
func (m *bpfmapTarget) del(key []byte) syscall.Errno { return errnoOf(m.h.Delete(key)) }
func (m *bpfmapTarget) next(key, next []byte) syscall.Errno {
	return errnoOf(m.h.GetNextKey(key, next))
}
func (m *bpfmapTarget) lookupAndDelete(key, value []byte, flags uint64) syscall.Errno {
	return errnoOf(m.h.LookupAndDelete(key, value, flags))
}
func (m *bpfmapTarget) freeze() syscall.Errno { return errnoOf(m.h.Freeze()) }
func (m *bpfmapTarget) batch(cmd uint32, b *batchArgs) (uint32, syscall.Errno) {
	cb := &command.Batch{
		InBatch: b.in, OutBatch: b.out, Keys: b.keys, Values: b.values,
		Count: b.count, ElemFlags: b.elemFlags, Flags: b.flags,
	}
	var err error
	switch cmd {
	case cmdLookupBatch:
		err = m.h.LookupBatch(cb)
	case cmdLookupAndDeleteBatch:
		err = m.h.LookupAndDeleteBatch(cb)
	case cmdUpdateBatch:
		err = m.h.UpdateBatch(cb)
	case cmdDeleteBatch:
		err = m.h.DeleteBatch(cb)
	default:
		return b.count, syscall.EINVAL
	}
	return cb.Count, errnoOf(err)
}
func (m *bpfmapTarget) close() { _ = m.h.Close() }

// createKernel creates the kernel map.
func createKernel(a *kbpf.CreateAttr) (target, syscall.Errno) {
	fd, e := kbpf.CreateMap(a)
	if e != 0 {
		return nil, e
	}
	return &kernelTarget{fd: fd}, 0
}

// createBpfmap creates the bpfmap map; err is the raw error for messages.
func createBpfmap(a *kbpf.CreateAttr) (target, syscall.Errno, error) {
	h, err := command.Create(toCommand(a), options())
	if err != nil {
		return nil, errnoOf(err), err
	}
	return &bpfmapTarget{h: h}, 0, nil
}

// mustPair creates the map on both sides or fails the test.
func mustPair(tb testing.TB, a kbpf.CreateAttr) (k, b target) {
	tb.Helper()
	k, ke := createKernel(&a)
	if ke != 0 {
		tb.Fatalf("kernel BPF_MAP_CREATE %s: %s", attrString(&a), errName(ke))
	}
	b, be, err := createBpfmap(&a)
	if be != 0 {
		k.close()
		tb.Fatalf("bpfmap Create %s: %v", attrString(&a), err)
	}
	tb.Cleanup(func() { k.close(); b.close() })
	return k, b
}

// ---- randomness: a seeded PRNG for tests, the input bytes for fuzzing ----

// src supplies the choices of a lockstep run.
type src interface {
	intn(n int) int // uniform-ish in [0, n); n > 0
	u64() uint64
	fill(b []byte) // arbitrary bytes
	done() bool    // the input is exhausted (fuzzing only)
}

type randSrc struct{ r *rand.Rand }

func newRandSrc(seed uint64) *randSrc {
	return &randSrc{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
}

func (s *randSrc) intn(n int) int { return s.r.IntN(n) }
func (s *randSrc) u64() uint64    { return s.r.Uint64() }
func (s *randSrc) done() bool     { return false }
func (s *randSrc) fill(b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := s.r.Uint64()
		for j := i; j < len(b) && j < i+8; j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

// byteSrc decodes choices from fuzz input; past the end every choice is 0.
type byteSrc struct {
	data []byte
	pos  int
}

func (s *byteSrc) byte() byte {
	if s.pos >= len(s.data) {
		s.pos++
		return 0
	}
	c := s.data[s.pos]
	s.pos++
	return c
}

func (s *byteSrc) done() bool { return s.pos >= len(s.data) }

func (s *byteSrc) intn(n int) int {
	if n <= 256 {
		return int(s.byte()) % n
	}
	v := uint32(s.byte()) | uint32(s.byte())<<8 | uint32(s.byte())<<16 | uint32(s.byte())<<24
	return int(v % uint32(n))
}

func (s *byteSrc) u64() uint64 {
	var v uint64
	for i := 0; i < 8; i++ {
		v |= uint64(s.byte()) << (8 * i)
	}
	return v
}

// fill derives the bytes from one input byte, keeping inputs short.
func (s *byteSrc) fill(b []byte) {
	x := uint64(s.byte())*0x9e3779b97f4a7c15 + 0x632be59bd9b4e019
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
}

// Package bpfmap implements Linux BPF maps in user space, with the kernel's
// exact behaviour and cilium/ebpf's Go API.
//
// A map is created from the same *ebpf.MapSpec a kernel map is created from,
// and has the same methods with the same signatures and marshalling rules as
// *ebpf.Map — Lookup, Update, Delete, NextKey, Iterate, the batch
// operations, Freeze, Info — so code written against cilium/ebpf runs on a
// bpfmap map unchanged: an eBPF control plane can be tested without root, on
// any OS. Every error a caller can cause carries the kernel's errno and
// matches cilium/ebpf's sentinels (errors.Is(err, ebpf.ErrKeyNotExist) and
// errors.Is(err, unix.ENOENT) both hold for a missing key).
//
// Map state lives in one flat memory region per map, outside the Go heap, so
// a map of millions of entries costs the garbage collector nothing. Maps are
// safe for any number of goroutines: lookups take no lock and never see a
// value half-written; updates lock one hash bucket or one array element.
//
// The package owns the public API: spec handling, marshalling of Go values
// (through internal/marshal), errors, iteration and batches. The kernel's
// rules live in internal/command (the generic ones, once) and in one package
// per map family; see ARCHITECTURE.md in the repository.
package bpfmap

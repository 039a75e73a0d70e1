// Package marshal owns the conversion between the Go values passed to
// bpfmap's public, cilium/ebpf-shaped map API (the `any` key, value, keyOut
// and valueOut arguments) and the raw key/value bytes stored by a map.
//
// The rules follow github.com/cilium/ebpf v0.22.0 (its marshalers.go and
// internal/sysenc), so that code can move between kernel maps and bpfmap maps
// unchanged:
//
//   - Inputs ([Bytes]): []byte (length must equal the size), unsafe.Pointer
//     (trusted to point at size readable bytes), string, values implementing
//     [encoding.BinaryMarshaler], and any value that encoding/binary can
//     encode (fixed-size integers, floats, bools, arrays and structs of those,
//     slices of those, and pointers to any of them), in native byte order.
//   - Outputs ([Unmarshal]): []byte (length must equal the buffer), *[]byte
//     (reused if the length matches, else replaced by a copy), *string,
//     unsafe.Pointer (trusted to point at len(buf) writable bytes), values
//     implementing [encoding.BinaryUnmarshaler], and pointers to / slices of
//     anything encoding/binary can decode.
//   - Per-CPU values ([PerCPUBytes], [UnmarshalPerCPU]): a slice with one
//     element per possible CPU; in the map's byte layout each CPU owns a slot
//     of [Stride](elemSize) = round_up(elemSize, 8) bytes.
//   - Batches ([BatchLen], [BatchBytes], [UnmarshalBatch], [PerCPUBatchBytes],
//     [UnmarshalPerCPUBatch]): slices of count elements (per-CPU values: a
//     flat slice of count*ncpu elements).
//
// Every error returned by this package wraps [syscall.EINVAL] (test with
// errors.Is) and names the offending Go type (via reflect.TypeOf, never the
// value itself) and the sizes involved. Errors returned by user
// MarshalBinary/UnmarshalBinary methods are wrapped as well.
//
// # Zero-copy and aliasing
//
// Types whose memory layout equals their encoding/binary encoding (no
// padding, no pointers; see the per-type cache in types.go) are never
// encoded: [Bytes] returns a view of the caller's memory and [Unmarshal]
// copies straight into it. A view returned by [Bytes] must only be read, and
// only until the caller's value changes; callers of this package copy it
// into map storage and never retain it.
//
// # Escape analysis
//
// The v/out arguments of [Bytes] and [Unmarshal] do not escape, so callers'
// keys and values can live on their stacks. To keep that property while
// calling user MarshalBinary/UnmarshalBinary methods through an interface,
// the package hides those calls from escape analysis; such methods must
// therefore not retain their receiver (or memory reachable from it) after
// they return. Returning a slice that aliases the receiver from
// MarshalBinary is fine: it is only used during the map operation.
//
// # bpfmap extensions to cilium/ebpf's rules
//
//   - Per-CPU values may also be given as a []byte holding the raw
//     ncpu*stride layout (input and output), and a *[]byte output receives a
//     fresh copy of that raw layout when elemSize != 1. Because cilium/ebpf
//     requires len(slice) <= ncpu (input) or == ncpu (output) for per-CPU
//     slices, a []byte of exactly ncpu*stride bytes is never ambiguous.
//   - [PerCPUBytes] also accepts a pointer to a slice.
//   - A batch given as a []byte whose length is a multiple of the element
//     size counts len/elemSize elements (cilium/ebpf counts len, which only
//     works for one-byte elements, where both rules agree).
//
// # Deliberate deviations (all where cilium/ebpf panics or misbehaves)
//
//   - nil pointers, including nil BinaryMarshaler/BinaryUnmarshaler
//     receivers, are rejected with EINVAL instead of being dereferenced.
//   - Decoding into a type with unexported non-blank fields returns EINVAL
//     (encoding/binary, and so cilium/ebpf, panics).
//   - A bool is always decoded as b != 0 (encoding/binary's rule); cilium/ebpf
//     copies the raw byte into padding-free types, which can create an
//     invalid Go bool.
//   - float32 bits (including signalling NaNs) are preserved when encoding
//     from and decoding into memory; values passed by value go through
//     reflect and, like encoding/binary, through float64.
package marshal

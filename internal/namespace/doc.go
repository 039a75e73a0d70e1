// Package namespace owns the pin namespace: the directory that plays
// bpffs's part for user-space maps. It holds every shared map object (one
// file each, named by its id), the id allocator, the pins (hard links to the
// object files, so a pin is a file holding the map's self-describing
// region), and the process table that tells a live lock holder from a dead
// one. It implements the kernel's object lifetime across processes with the
// kernel's own file machinery:
//
//   - Every process that has a map open holds one descriptor of its object
//     file with a shared flock(2). The kernel drops it when the process
//     exits or is killed, so a dead process holds nothing.
//   - A map object dies when no process holds it open and no pin links it:
//     the process closing it last sees its flock upgrade to exclusive succeed
//     and a link count of one, punches the pages out and unlinks the file.
//     Objects whose last holder was killed are removed by the next sweep
//     (any process's first use of the namespace, id iteration, and creation
//     at most once a second).
//   - Pins are hard links into the namespace directory tree; unpinning is
//     unlinking. An object lives while it has a pin, whoever holds it.
//   - A slot of a map-in-map holds its inner map through a reference link,
//     <root>/.bpfmap/refs/<outer id>/<slot name>, a hard link to the inner
//     map's object file that counts like a pin (refs_linux.go). A dead
//     outer map's links are removed with it and the inner maps they held
//     are swept.
//   - The process table has one slot per live process, each held with a
//     byte-range lock the kernel also drops at death. A lock word in a map
//     records its holder's owner token (slot and generation), so that a
//     waiter can tell a holder that is slow from one that is dead.
//
// The root directory is $BPFMAP_ROOT when set; otherwise
// $XDG_RUNTIME_DIR/bpfmap, /dev/shm/bpfmap-<uid>, or
// <os.TempDir()>/bpfmap-<uid>, the first whose parent exists. Map objects
// and the namespace's own files live in the hidden ".bpfmap" directory
// under the root; everything else under the root is for pins.
package namespace

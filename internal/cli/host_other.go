//go:build !linux

package cli

import "github.com/bpfmap/bpfmap/internal/namespace"

// isBPFFS reports whether dir is on a bpf file system: never, here.
func isBPFFS(string) bool { return false }

// fdKind is what bpftool's get_fd_type reads; there are no kernel map fds
// here.
func fdKind(int) string { return "unknown" }

// fdinfo returns a kernel fdinfo value; there is none here.
func fdinfo(int, string) string { return "" }

// bpffsMounts returns the bpf file systems; there are none here.
func bpffsMounts() []string { return nil }

// inode returns the device and inode of path; user-space pins do not exist
// here.
func inode(string) (dev, ino uint64, ok bool) { return 0, 0, false }

// userPins adds the pins of ns's maps to tab; there are none here.
func userPins(*namespace.NS, map[uint32][]string) {}

//go:build !unix

package region

import "unsafe"

// addr is the address of b's first byte, used only to align the fallback
// allocation; the slice keeps the memory alive.
func addr(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

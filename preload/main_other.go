//go:build !linux || !cgo

package main

// The preload library exists for Linux programs and needs cgo; elsewhere
// the command builds to nothing.
func main() {}

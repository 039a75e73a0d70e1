package ringbuf

// OfMap is set by package bpfmap (the module root) at init: it returns the
// ring of a *bpfmap.Map of type RINGBUF and a release function for a
// reference that keeps the map alive meanwhile (the public ringbuf package's
// Reader holds one, as the kernel's mmap of a ring holds the map). It lets
// the public sub-package reach a Map's ring without widening the root API.
var OfMap func(m any) (g *Ring, release func() error, err error)

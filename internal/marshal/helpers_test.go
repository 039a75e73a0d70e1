package marshal

import "unsafe"

func unsafePointerOf[T any](p *T) unsafe.Pointer { return unsafe.Pointer(p) }

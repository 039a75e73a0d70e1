package sharetest

import "golang.org/x/sys/unix"

var (
	errE2BIG  = unix.E2BIG
	errEPERM  = unix.EPERM
	errENOSPC = unix.ENOSPC
	errENOENT = unix.ENOENT
)

package sharetest

import "syscall"

var (
	errE2BIG  = syscall.E2BIG
	errEPERM  = syscall.EPERM
	errENOSPC = syscall.ENOSPC
	errENOENT = syscall.ENOENT
)

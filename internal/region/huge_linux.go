package region

import "golang.org/x/sys/unix"

func adviseHugeOS(mem []byte) { _ = unix.Madvise(mem, unix.MADV_HUGEPAGE) }

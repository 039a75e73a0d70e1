package command

import (
	"errors"

	"github.com/bpfmap/bpfmap/internal/uapi"
)

// CheckNextIDStart is BPF_MAP_GET_NEXT_ID's check of start_id, made before
// any map is looked at: INT_MAX and above is EINVAL.
func CheckNextIDStart(start uint32) error {
	if start >= 1<<31-1 {
		return uapi.EINVAL
	}
	return nil
}

// CheckOpenFlags is bpf_get_file_flag's check of the access mode flags of
// BPF_OBJ_GET and BPF_MAP_GET_FD_BY_ID (OpenPinned and OpenID make it
// too), for callers that must answer it before the path or the id is
// looked up: a flag other than BPF_F_RDONLY and BPF_F_WRONLY, or both of
// them, is EINVAL.
func CheckOpenFlags(flags uint32) error {
	_, _, err := checkOpenFlags(flags)
	return err
}

// outOfFDs reports whether err is the process (EMFILE) or the system
// (ENFILE) running out of file descriptors, which the kernel answers as
// such when it has no descriptor for a map.
func outOfFDs(err error) bool {
	return errors.Is(err, uapi.EMFILE) || errors.Is(err, uapi.ENFILE)
}

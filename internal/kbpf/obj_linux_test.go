//go:build linux

package kbpf

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// bpffsDir returns a fresh directory on a bpffs, mounting /sys/fs/bpf if it
// is not mounted; the directory is removed with everything pinned in it.
func bpffsDir(t *testing.T) string {
	t.Helper()
	const mnt = "/sys/fs/bpf"
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil || st.Type != unix.BPF_FS_MAGIC {
		if err := unix.Mount("bpf", mnt, "bpf", 0, ""); err != nil {
			t.Fatalf("mount bpffs at %s: %v", mnt, err)
		}
	}
	dir, err := os.MkdirTemp(mnt, "kbpf-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func TestObjPinGetAndIDs(t *testing.T) {
	Need(t)
	dir := bpffsDir(t)
	fd := mustCreate(t, &CreateAttr{MapType: mapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 2})
	info, e := Info(fd)
	wantErrno(t, "info", e, 0)
	path := filepath.Join(dir, "m")
	wantErrno(t, "pin", ObjPin(fd, path, 0), 0)
	wantErrno(t, "pin again", ObjPin(fd, path, 0), syscall.EEXIST)
	wantErrno(t, "pin with bad file_flags", ObjPin(fd, filepath.Join(dir, "x"), 1), syscall.EINVAL)

	fd2, e := ObjGet(path, 0)
	wantErrno(t, "get", e, 0)
	defer Close(fd2)
	info2, e := Info(fd2)
	wantErrno(t, "info of got fd", e, 0)
	if info2.ID != info.ID {
		t.Errorf("OBJ_GET: id %d, pinned map has id %d", info2.ID, info.ID)
	}
	_, e = ObjGet(path, 1<<3|1<<4)
	wantErrno(t, "get RDONLY|WRONLY", e, syscall.EINVAL)
	_, e = ObjGet(filepath.Join(dir, "missing"), 0)
	wantErrno(t, "get missing", e, syscall.ENOENT)

	fd3, e := MapGetFDByID(info.ID, 0)
	wantErrno(t, "get fd by id", e, 0)
	defer Close(fd3)
	_, e = MapGetFDByID(0, 0)
	wantErrno(t, "get fd by id 0", e, syscall.ENOENT)
	_, e = MapGetFDByID(info.ID, 1<<3|1<<4)
	wantErrno(t, "get fd by id RDONLY|WRONLY", e, syscall.EINVAL)

	next, e := MapGetNextID(info.ID - 1)
	wantErrno(t, "next id", e, 0)
	if next != info.ID {
		t.Errorf("GET_NEXT_ID(%d) = %d, want %d", info.ID-1, next, info.ID)
	}
	_, e = MapGetNextID(1<<31 - 1)
	wantErrno(t, "next id from INT_MAX", e, syscall.EINVAL)
}

func TestMmap(t *testing.T) {
	Need(t)
	const mmapable = 1 << 10
	fd := mustCreate(t, &CreateAttr{MapType: mapTypeArray, KeySize: 4, ValueSize: 8, MaxEntries: 4, MapFlags: mmapable})
	b, e := Mmap(fd, 4096, unix.PROT_READ|unix.PROT_WRITE)
	wantErrno(t, "mmap", e, 0)
	b[8] = 7
	v := make([]byte, 8)
	wantErrno(t, "lookup", Lookup(fd, u32(1), v, 0), 0)
	if v[0] != 7 {
		t.Errorf("value written through the mapping not seen by lookup: %x", v)
	}
	wantErrno(t, "freeze with a writable mapping", Freeze(fd), syscall.EBUSY)
	if err := Munmap(b); err != nil {
		t.Fatal(err)
	}
	wantErrno(t, "freeze", Freeze(fd), 0)
	_, e = Mmap(fd, 4096, unix.PROT_READ|unix.PROT_WRITE)
	wantErrno(t, "writable mmap of a frozen map", e, syscall.EPERM)
	b, e = Mmap(fd, 4096, unix.PROT_READ)
	wantErrno(t, "read-only mmap of a frozen map", e, 0)
	if e == 0 {
		_ = Munmap(b)
	}
	if _, e := Mmap(-1, 4096, unix.PROT_READ); !errors.Is(e, syscall.EBADF) {
		t.Errorf("mmap of fd -1: %v, want EBADF", e)
	}
}

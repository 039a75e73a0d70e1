//go:build linux

package sys_test

import (
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

// TestConcurrent drives the fd table from many goroutines at once (run it
// with -race): element commands on a shared map, maps created and closed
// with Close or close(2) (fd numbers reused all the time), GET_NEXT_ID
// sweeps, IsMapFD and FDInfo.
func TestConcurrent(t *testing.T) {
	shared, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(createAttr(t, tHash, 4, 8, 64, 0)), sys.MapCreateAttrSize)
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Close(shared)
	const workers, rounds = 6, 300
	var wg sync.WaitGroup
	errs := make(chan error, workers*rounds)
	for w := range workers {
		// Each goroutine's attrs and buffers are its own.
		key, val := mem(t, 4), mem(t, 8)
		ea := elemAttr(t, shared, key, val, 0)
		ca := createAttr(t, tArray, 4, 8, 2, 0)
		ia := idAttr(t, 0, 0, 0)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				ne.PutUint32(key, uint32(w*rounds+i)%64)
				ne.PutUint64(val, uint64(i))
				ne.PutUint32(ea, uint32(shared))
				if _, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, ptr(ea), uintptr(len(ea))); err != nil {
					errs <- err
				}
				if _, err := sys.BPF(sys.BPF_MAP_LOOKUP_ELEM, ptr(ea), uintptr(len(ea))); err != nil && err != syscall.ENOENT {
					errs <- err
				}
				fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(ca), uintptr(len(ca)))
				if err != nil {
					errs <- err
					continue
				}
				ne.PutUint32(key, 1)
				ne.PutUint32(ea, uint32(fd))
				if _, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, ptr(ea), uintptr(len(ea))); err != nil {
					errs <- err
				}
				if !sys.IsMapFD(fd) {
					errs <- syscall.EBADF
				}
				if _, ok := sys.FDInfo(fd); !ok {
					errs <- syscall.EINVAL
				}
				if i%2 == 0 {
					err = sys.Close(fd)
				} else {
					err = unix.Close(fd)
				}
				if err != nil {
					errs <- err
				}
				if i%50 == 0 {
					ne.PutUint32(ia, 0)
					_, _ = sys.BPF(sys.BPF_MAP_GET_NEXT_ID, ptr(ia), uintptr(len(ia)))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

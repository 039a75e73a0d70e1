//go:build linux

package sys_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

func countDir(t *testing.T, dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func rssKB() int {
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	return 0
}

func heap() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestLeakCloseWithoutTelling creates 100,000 maps through BPF and closes
// each with plain close(2), never telling the package: the stale entries
// are released by the amortised sweeps, so descriptors, map objects, heap
// and RSS return to the baseline.
func TestLeakCloseWithoutTelling(t *testing.T) {
	n := 100000
	if testing.Short() {
		n = 10000
	}
	maps := os.Getenv("BPFMAP_ROOT") + "/.bpfmap/maps"
	attr := createAttr(t, tArray, 4, 8, 4, 0)
	key, val := mem(t, 4), mem(t, 8)
	ea := elemAttr(t, 0, key, val, 0)
	// Warm up (the namespace, the table), then take the baseline.
	for range 200 {
		fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(attr), uintptr(len(attr)))
		if err != nil {
			t.Fatal(err)
		}
		_ = unix.Close(fd)
	}
	idAttr := idAttr(t, 0, 0, 0)
	_, _ = sys.BPF(sys.BPF_MAP_GET_NEXT_ID, ptr(idAttr), uintptr(len(idAttr))) // sweeps
	fds0, objs0, heap0, rss0 := countDir(t, "/proc/self/fd"), countDir(t, maps), heap(), rssKB()
	start := time.Now()
	peakFDs := 0
	for i := range n {
		fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(attr), uintptr(len(attr)))
		if err != nil {
			t.Fatalf("create %d: %v", i, err)
		}
		ne.PutUint32(ea, uint32(fd))
		if i%1000 == 0 {
			if _, err := sys.BPF(sys.BPF_MAP_UPDATE_ELEM, ptr(ea), uintptr(len(ea))); err != nil {
				t.Fatalf("update %d: %v", i, err)
			}
			peakFDs = max(peakFDs, countDir(t, "/proc/self/fd"))
		}
		if err := unix.Close(fd); err != nil {
			t.Fatal(err)
		}
	}
	elapsed := time.Since(start)
	_, _ = sys.BPF(sys.BPF_MAP_GET_NEXT_ID, ptr(idAttr), uintptr(len(idAttr))) // sweeps
	fds1, objs1, heap1, rss1 := countDir(t, "/proc/self/fd"), countDir(t, maps), heap(), rssKB()
	t.Logf("%d maps in %v (%v each); fds %d → %d (peak %d), objects %d → %d, heap %d → %d KiB, RSS %d → %d KiB",
		n, elapsed.Round(time.Millisecond), elapsed/time.Duration(n), fds0, fds1, peakFDs, objs0, objs1, heap0>>10, heap1>>10, rss0, rss1)
	if fds1 > fds0 {
		t.Errorf("open fds %d → %d", fds0, fds1)
	}
	if objs1 > objs0 {
		t.Errorf("map objects %d → %d", objs0, objs1)
	}
	if heap1 > heap0+4<<20 {
		t.Errorf("heap grew %d → %d", heap0, heap1)
	}
	if rss1 > rss0+64<<10 {
		t.Errorf("RSS grew %d → %d KiB", rss0, rss1)
	}
}

package ringbuf_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
	"github.com/bpfmap/bpfmap/ringbuf"
)

// The map's region is the whole ring (three head pages and the data mapped
// twice, as the kernel maps it), and a Reader reads what the map's
// producers write, including records that wrap around the end of the data.
func TestReaderOverMapRegion(t *testing.T) {
	const size = 4 * 4096
	m, err := bpfmap.NewMap(&ebpf.MapSpec{Type: ebpf.RingBuf, MaxEntries: size})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	info, err := m.Info()
	if err != nil {
		t.Fatal(err)
	}
	p := uint64(os.Getpagesize())
	if got, want := info.Footprint(), 3*p+2*size; got != want {
		t.Fatalf("footprint %d, want %d", got, want)
	}
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if rd.BufferSize() != size {
		t.Fatalf("buffer size %d", rd.BufferSize())
	}
	payload := make([]byte, 1000)
	var rec ringbuf.Record
	for i := range 200 { // 200 KB through a 16 KiB ring: wraps many times
		payload[0], payload[999] = byte(i), byte(i+1)
		if err := m.RingOutput(payload); err != nil {
			t.Fatal(err)
		}
		rd.SetDeadline(time.Now().Add(5 * time.Second))
		if err := rd.ReadInto(&rec); err != nil {
			t.Fatal(err)
		}
		if len(rec.RawSample) != 1000 || rec.RawSample[0] != byte(i) || rec.RawSample[999] != byte(i+1) {
			t.Fatalf("record %d: %d bytes, ends %d %d", i, len(rec.RawSample), rec.RawSample[0], rec.RawSample[999])
		}
	}
	if err := rd.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Read(); !errors.Is(err, ringbuf.ErrClosed) {
		t.Fatalf("read after Close: %v", err)
	}
}

// childEnv names the pin a re-executed test binary produces into.
const childEnv = "BPFMAP_RINGBUF_PIN"

// TestMain lets the test binary run as a producer process for
// TestReaderOfPinnedMapInAnotherProcess.
func TestMain(m *testing.M) {
	if pin := os.Getenv(childEnv); pin != "" {
		os.Exit(childProducer(pin))
	}
	os.Exit(m.Run())
}

// childProducer opens the pinned ring, outputs "child-0".."child-49",
// reserves one more record and exits without committing it: a producer
// that dies between reserve and commit.
func childProducer(pin string) int {
	m, err := bpfmap.LoadPinnedMap(pin, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	time.Sleep(50 * time.Millisecond) // the parent's reader is asleep by now
	for i := range 50 {
		if err := m.RingOutput([]byte(fmt.Sprint("child-", i))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	if _, err := m.RingReserve(16); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	os.Exit(0) // no Close, no Submit
	return 0
}

// A Reader of a pinned ring buffer map reads what a producer in another
// process (which opened the pin) writes, woken across processes, and reads
// on past the record that producer left reserved when it exited.
func TestReaderOfPinnedMapInAnotherProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("maps are shared between processes on Linux only")
	}
	root := t.TempDir()
	m, err := bpfmap.NewMapWithOptions(&ebpf.MapSpec{Name: "events", Type: ebpf.RingBuf, MaxEntries: 4096},
		bpfmap.MapOptions{Namespace: root})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pin := filepath.Join(root, "events")
	if err := m.Pin(pin); err != nil {
		t.Fatal(err)
	}
	rd, err := ringbuf.NewReader(m)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	exe, err := os.Executable()
	if err != nil {
		t.Skip(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+pin)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Skip(err)
	}
	read := func() string {
		t.Helper()
		rd.SetDeadline(time.Now().Add(10 * time.Second))
		rec, err := rd.Read()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		return string(rec.RawSample)
	}
	for i := range 50 {
		if got, want := read(), fmt.Sprint("child-", i); got != want {
			t.Fatalf("read %q, want %q", got, want)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
	if err := m.RingOutput([]byte("parent")); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != "parent" {
		t.Fatalf("read %q, want the record after the dead child's", got)
	}
}

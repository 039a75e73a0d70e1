package sharetest

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"

	"github.com/bpfmap/bpfmap"
)

// The environment variables a child process reads its role and arguments from.
const (
	envRole = "BPFMAP_SHARETEST_ROLE"
	envArgs = "BPFMAP_SHARETEST_ARGS"
)

// childArgs are a child's arguments, passed as JSON in envArgs.
type childArgs struct {
	Root    string // namespace root
	Pin     string // path of the map's pin
	Worker  int    // writer/producer number (owns keys [Lo, Hi))
	Serial  int    // unique number of this child process (stamps)
	Lo, Hi  uint32 // key range
	Ops     int    // operations to run (0: until killed or stopped)
	Stop    string // a file whose existence tells the child to stop
	Go      string // a file whose existence tells the child to start
	Log     string // crash tests: the O_APPEND operation log
	Seed    uint64
	Kind    string // map kind ("hash", "percpu", "array", "lru", "lpm", "queue")
	Payload uint64 // role-specific
}

// TestHelperProcess is the body of every child process; it runs only when
// the test binary is re-executed by a test (envRole set).
func TestHelperProcess(t *testing.T) {
	role := os.Getenv(envRole)
	if role == "" {
		t.Skip("runs only as a child process of the other tests")
	}
	var a childArgs
	if err := json.Unmarshal([]byte(os.Getenv(envArgs)), &a); err != nil {
		fmt.Fprintln(os.Stderr, "bad child arguments:", err)
		os.Exit(2)
	}
	f, ok := roles[role]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown role", role)
		os.Exit(2)
	}
	res, err := f(a)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child %s %d: %v\n", role, a.Worker, err)
		os.Exit(1)
	}
	out, _ := json.Marshal(res)
	fmt.Printf("RESULT %s\n", out)
	os.Exit(0)
}

// roles maps a role name to its body, filled by init functions of the
// test files.
var roles = map[string]func(childArgs) (any, error){}

// skipUnlessLinux skips a test where maps cannot be shared.
func skipUnlessLinux(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("maps are shared between processes on Linux only")
	}
}

// child is a running child process.
type child struct {
	role string
	cmd  *exec.Cmd
	out  bytes.Buffer
	errb bytes.Buffer
	// ready receives one value when the child writes its first line of
	// progress on the ready pipe (crash children), or is nil.
	ready chan struct{}
}

func newCmd(role string, a childArgs) *exec.Cmd {
	js, _ := json.Marshal(a)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	// The race detector sleeps a second at exit unless told otherwise.
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	cmd.Env = append(os.Environ(), envRole+"="+role, envArgs+"="+string(js), "GOMAXPROCS=2", "GORACE="+gorace)
	dieWithParent(cmd)
	return cmd
}

// start starts a child that reports its result on stdout at exit.
func start(t *testing.T, role string, a childArgs) *child {
	t.Helper()
	c := &child{role: role, cmd: newCmd(role, a)}
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.errb
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

// wait waits for the child (at most d) and decodes its result into res.
func (c *child) wait(t *testing.T, d time.Duration, res any) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("child %s: %v\nstderr:\n%s", c.role, err, c.errb.String())
		}
	case <-time.After(d):
		_ = c.cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump on stderr
		time.Sleep(500 * time.Millisecond)
		_ = c.cmd.Process.Kill()
		<-done
		t.Fatalf("child %s hung for %v\nstderr:\n%s", c.role, d, c.errb.String())
	}
	if res == nil {
		return
	}
	for _, line := range strings.Split(c.out.String(), "\n") {
		if js, ok := strings.CutPrefix(line, "RESULT "); ok {
			if err := json.Unmarshal([]byte(js), res); err != nil {
				t.Fatalf("child %s result %q: %v", c.role, js, err)
			}
			return
		}
	}
	t.Fatalf("child %s printed no result; stdout:\n%s\nstderr:\n%s", c.role, c.out.String(), c.errb.String())
}

// startCrash starts a child whose stdout is a pipe: the child writes a line
// on it when it has made progress; ready is signalled at the first line.
func startCrash(role string, a childArgs) (*child, error) {
	c := &child{role: role, cmd: newCmd(role, a), ready: make(chan struct{}, 1)}
	c.cmd.Stderr = &c.errb
	pipe, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		r := bufio.NewReader(pipe)
		if _, err := r.ReadString('\n'); err == nil {
			c.ready <- struct{}{}
		}
		_, _ = io.Copy(io.Discard, r)
	}()
	return c, nil
}

// kill SIGKILLs the child and reaps it. It reports whether the child was
// still running (an exit before the kill is an error of the child).
func (c *child) kill() error {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	err := c.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return nil
		}
	}
	return fmt.Errorf("child %s ended before it was killed: %v\nstderr:\n%s", c.role, err, c.errb.String())
}

// signalProgress is a crash child's report of progress to its parent.
func signalProgress() { os.Stdout.WriteString("progress\n") }

// stopped reports whether the stop file exists.
func stopped(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// waitFile waits for path to exist (at most 30 s) and reports whether it
// does.
func waitFile(path string) bool {
	if path == "" {
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if stopped(path) {
			return true
		}
	}
	return false
}

// objects lists the map objects of a namespace.
func objects(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, ".bpfmap", "maps"))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// newPinned creates a map in a fresh namespace and pins it; the map is
// closed and unpinned when the test ends.
func newPinned(t *testing.T, spec *ebpf.MapSpec) (*bpfmap.Map, string, string) {
	t.Helper()
	skipUnlessLinux(t)
	root := t.TempDir()
	m, err := bpfmap.NewMapWithOptions(spec, bpfmap.MapOptions{Namespace: root})
	if err != nil {
		t.Fatal(err)
	}
	pin := filepath.Join(root, "m")
	if err := m.Pin(pin); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Unpin(); m.Close() })
	return m, root, pin
}

// Values carry their own checksum, so a torn read is detected: a 32-byte
// element value is
//
//	key u32 | ^key u32 | stamp u64 | mix(stamp, key) u64 | checksum u64
//
// and a 16-byte queue value is stamp u64 | mix(stamp) u64. Stamps are
// unique per write (child serial << 32 | counter) and never zero.
const valueSize = 32

func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

func putValue(b []byte, key uint32, stamp uint64) {
	le := binary.LittleEndian
	le.PutUint32(b[0:], key)
	le.PutUint32(b[4:], ^key)
	le.PutUint64(b[8:], stamp)
	le.PutUint64(b[16:], mix(stamp^uint64(key)<<32))
	le.PutUint64(b[24:], mix(le.Uint64(b[0:])^mix(stamp^mix(le.Uint64(b[16:])))))
}

// checkValue returns the stamp of a value stored under key, or an error if
// the value is torn or belongs to another key. An all-zero value (an array
// element never written) has stamp 0.
func checkValue(b []byte, key uint32) (uint64, error) {
	if len(b) != valueSize {
		return 0, fmt.Errorf("value of %d bytes", len(b))
	}
	le := binary.LittleEndian
	stamp := le.Uint64(b[8:])
	if stamp == 0 && bytes.Count(b, []byte{0}) == len(b) {
		return 0, nil
	}
	var want [valueSize]byte
	putValue(want[:], key, stamp)
	if !bytes.Equal(b, want[:]) {
		return 0, fmt.Errorf("key %d: torn or foreign value %x", key, b)
	}
	return stamp, nil
}

// putPerCPU fills each CPU's slot with the value of stamp+cpu.
func putPerCPU(b []byte, key uint32, stamp uint64) {
	for c := 0; c*valueSize < len(b); c++ {
		putValue(b[c*valueSize:(c+1)*valueSize], key, stamp+uint64(c))
	}
}

// checkPerCPU checks every slot and that they come from one update.
func checkPerCPU(b []byte, key uint32) (uint64, error) {
	first, err := checkValue(b[:valueSize], key)
	if err != nil {
		return 0, err
	}
	for c := 1; c*valueSize < len(b); c++ {
		s, err := checkValue(b[c*valueSize:(c+1)*valueSize], key)
		if err != nil {
			return 0, fmt.Errorf("cpu %d: %w", c, err)
		}
		if first != 0 && s != first+uint64(c) || first == 0 && s != 0 {
			return 0, fmt.Errorf("key %d: cpu %d holds stamp %#x, cpu 0 %#x: slots from different updates", key, c, s, first)
		}
	}
	return first, nil
}

func putQueueValue(b []byte, stamp uint64) {
	binary.LittleEndian.PutUint64(b[0:], stamp)
	binary.LittleEndian.PutUint64(b[8:], mix(stamp))
}

func checkQueueValue(b []byte) (uint64, error) {
	s := binary.LittleEndian.Uint64(b[0:])
	if len(b) != 16 || s == 0 || binary.LittleEndian.Uint64(b[8:]) != mix(s) {
		return 0, fmt.Errorf("torn queue value %x", b)
	}
	return s, nil
}

func stampOf(serial int, n uint64) uint64 { return uint64(serial)<<32 | n }

// ourGoroutines keeps the goroutines of a SIGQUIT dump that run bpfmap
// code (the first lines of the dump if none does).
func ourGoroutines(dump string) string {
	var keep []string
	for _, g := range strings.Split(dump, "\n\n") {
		for _, line := range strings.Split(g, "\n") {
			if strings.Contains(line, "github.com/bpfmap/bpfmap") && !strings.Contains(line, "/sharetest") {
				keep = append(keep, g)
				break
			}
		}
	}
	if len(keep) == 0 {
		return dump[:min(len(dump), 4000)]
	}
	return strings.Join(keep, "\n\n")
}

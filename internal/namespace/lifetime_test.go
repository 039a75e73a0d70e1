//go:build linux

package namespace

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The child roles of these tests run in a re-executed test binary.
func TestMain(m *testing.M) {
	switch os.Getenv("BPFMAP_NS_CHILD") {
	case "":
		os.Exit(m.Run())
	case "token":
		// Print this process's token and slot, then wait to be killed.
		ns, err := Open(os.Getenv("BPFMAP_NS_ROOT"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		obj, err := ns.Create(4096)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(ns.Token(), ns.Slot(), obj.ID())
		select {}
	}
}

// child starts a token child and reads its token, slot and object id.
func child(t *testing.T, root string) (cmd *exec.Cmd, token uint32, slot int, id uint32) {
	t.Helper()
	cmd = exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "BPFMAP_NS_CHILD=token", "BPFMAP_NS_ROOT="+root)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	f := strings.Fields(line)
	if len(f) != 3 {
		t.Fatalf("child said %q", line)
	}
	tok, _ := strconv.ParseUint(f[0], 10, 32)
	s, _ := strconv.Atoi(f[1])
	i, _ := strconv.ParseUint(f[2], 10, 32)
	return cmd, uint32(tok), s, uint32(i)
}

func kill(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

func TestTokenDiesWithItsProcess(t *testing.T) {
	root := t.TempDir()
	ns, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	if !ns.Alive(ns.Token()) {
		t.Fatal("own token reported dead")
	}
	cmd, tok, slot, _ := child(t, root)
	if tok == ns.Token() || slot == ns.Slot() {
		t.Fatalf("child shares token %d / slot %d with the parent", tok, slot)
	}
	if !ns.Alive(tok) || !ns.SlotAlive(slot) {
		t.Fatal("a running child's token reported dead")
	}
	kill(t, cmd)
	if ns.Alive(tok) || ns.SlotAlive(slot) {
		t.Fatal("a killed child's token reported alive")
	}
	// The next process may take the same slot: the old token stays dead.
	cmd2, tok2, slot2, _ := child(t, root)
	defer kill(t, cmd2)
	if slot2 == slot && tok2 == tok {
		t.Fatal("a reused slot kept its generation")
	}
	if ns.Alive(tok) {
		t.Fatal("a dead token came back to life with its slot's new process")
	}
	if !ns.Alive(tok2) {
		t.Fatal("the new child's token reported dead")
	}
	if ns.Alive(0) || ns.Alive(1<<TokenBits-1) {
		t.Fatal("a malformed token reported alive")
	}
}

func TestSweepRemovesObjectsOfKilledProcesses(t *testing.T) {
	root := t.TempDir()
	ns, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	cmd, _, _, id := child(t, root)
	path := filepath.Join(root, internalDir, "maps", strconv.FormatUint(uint64(id), 10))
	// The child never wrote a header: a fresh, unborn object survives a
	// sweep while its creator lives and for a while after.
	ns.Sweep()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("a live process's object was swept: %v", err)
	}
	kill(t, cmd)
	// Give the object a valid magic, as a map whose creator was killed.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("BPFMAP\x00\x01"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if ids := ns.IDs(); len(ids) != 0 {
		t.Fatalf("ids after the only holder died: %v", ids)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("object of a killed process not swept: %v", err)
	}
}

//go:build linux

package sys_test

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/bpfmap/bpfmap/sys"
)

// fuzzCmds are the commands the fuzz test drives, and a few that do not
// exist.
var fuzzCmds = []int{0, 1, 2, 3, 4, 6, 7, 12, 14, 15, 21, 22, 24, 25, 26, 27, 5, 100, -1}

// fuzzEnv is what the fuzz inputs point into: maps of every type, big
// buffers, and pathnames.
type fuzzEnv struct {
	fds   []int
	buf   []byte // pointer fields point here
	attr  []byte
	paths [][]byte
	dir   string
}

// fuzzStats counts results by command and error when set.
var fuzzStats map[string]int

// attrEnd is the end of each command's last field.
var attrEnd = map[int]int{
	0: 92, 1: 32, 2: 32, 3: 16, 4: 24, 6: 20, 7: 20, 12: 8, 14: 12, 15: 16, 21: 32, 22: 4,
	24: 56, 25: 56, 26: 56, 27: 56,
}

// maxElem bounds the key and value bytes of the fuzz maps, so that a
// count of elements within len(buf)/maxElem fits the buffers.
const maxElem = 64

func newFuzzEnv(t testing.TB) *fuzzEnv {
	dir, err := os.MkdirTemp(os.Getenv("BPFMAP_ROOT"), "fuzz-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	env := &fuzzEnv{buf: mem(t, 1<<20), attr: mem(t, 2*4096), dir: dir}
	for _, m := range specs {
		if int(m.ks) > maxElem || m.valueSys > maxElem {
			continue
		}
		a := m.attr(t)
		fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(a), uintptr(len(a)))
		if err != nil {
			t.Fatalf("%s: %v", m.name, err)
		}
		env.fds = append(env.fds, fd)
	}
	tmpl := env.fds[0]
	for _, typ := range []uint32{tArrayOfMaps, tHashOfMaps} {
		a := createAttr(t, typ, 4, 4, 4, 0)
		ne.PutUint32(a[20:], uint32(env.fds[2])) // the array
		if fd, err := sys.BPF(sys.BPF_MAP_CREATE, ptr(a), uintptr(len(a))); err == nil {
			env.fds = append(env.fds, fd)
		}
	}
	_ = tmpl
	for _, p := range []string{filepath.Join(dir, "pin"), filepath.Join(dir, "sub/pin"), "", "/", t.TempDir() + "/x", "rel", filepath.Join(dir, "pin/x")} {
		env.paths = append(env.paths, cstr(t, p))
	}
	t.Cleanup(func() {
		for _, fd := range env.fds {
			_ = sys.Close(fd)
		}
	})
	return env
}

// sanitize makes the pointer fields of attr for cmd valid (NULL or into
// env.buf; a pointer the size cuts through is NULL, since its truncated
// value would be an invalid address), its map fds mostly the fuzz maps',
// its counts fit the buffers and its map sizes small; every other byte
// stays as fuzzed.
func (env *fuzzEnv) sanitize(cmd int, a []byte, size int) {
	le := binary.NativeEndian
	ptrAt := func(off int) {
		v := le.Uint64(a[off:])
		if v&1 == 0 || size > off && size < off+8 {
			le.PutUint64(a[off:], 0)
		} else {
			// A buffer somewhere in the first half, room behind it.
			o := (v >> 1) % uint64(len(env.buf)/2)
			le.PutUint64(a[off:], addr(env.buf[o:]))
		}
	}
	fdAt := func(off int) {
		v := le.Uint32(a[off:])
		if v < 1<<31 {
			le.PutUint32(a[off:], uint32(env.fds[int(v)%len(env.fds)]))
		} else {
			le.PutUint32(a[off:], v%64) // whatever that fd is
		}
	}
	switch cmd {
	case sys.BPF_MAP_CREATE:
		le.PutUint32(a[4:], le.Uint32(a[4:])%300)   // key_size
		le.PutUint32(a[8:], le.Uint32(a[8:])%300)   // value_size
		le.PutUint32(a[12:], le.Uint32(a[12:])%300) // max_entries
		if le.Uint32(a[0:]) == tRingbuf {
			le.PutUint32(a[12:], 4096)
		}
		fdAt(20)
		ptrAt(80)
	case 1, 2, 3, 4, 21, 22:
		fdAt(0)
		ptrAt(8)
		ptrAt(16)
	case 24, 25, 26, 27:
		ptrAt(0)
		ptrAt(8)
		ptrAt(16)
		ptrAt(24)
		le.PutUint32(a[32:], le.Uint32(a[32:])%uint32(len(env.buf)/2/maxElem))
		fdAt(36)
	case sys.BPF_OBJ_PIN, sys.BPF_OBJ_GET:
		v := le.Uint64(a[0:])
		if v%8 == 0 || size > 0 && size < 8 {
			le.PutUint64(a[0:], 0)
		} else {
			le.PutUint64(a[0:], addr(env.paths[int(v%uint64(len(env.paths)))]))
		}
		if cmd == sys.BPF_OBJ_PIN {
			fdAt(8)
		}
	case sys.BPF_OBJ_GET_INFO_BY_FD:
		fdAt(0)
		ptrAt(8)
		if p := le.Uint64(a[8:]); p != 0 {
			// The hash pointer inside the info buffer, too.
			o := int(p - addr(env.buf))
			if o+104 <= len(env.buf) {
				ptrAt0 := le.Uint64(env.buf[o+88:])
				if n := int(le.Uint32(a[4:])); ptrAt0&1 == 0 || n > 88 && n < 96 {
					le.PutUint64(env.buf[o+88:], 0)
				} else {
					le.PutUint64(env.buf[o+88:], addr(env.buf[len(env.buf)-64:]))
				}
			}
		}
	}
}

// run feeds one input to BPF: cmd index, size, attr bytes.
func (env *fuzzEnv) run(t testing.TB, sel uint8, size uint16, data []byte) {
	cmd := fuzzCmds[int(sel&0x7f)%len(fuzzCmds)]
	clear(env.attr)
	copy(env.attr, data)
	if sel&0x80 == 0 {
		// Mostly get past CHECK_ATTR: zero what follows the last field.
		if end, ok := attrEnd[cmd]; ok {
			clear(env.attr[end:])
		}
	}
	size %= 4200
	env.sanitize(cmd, env.attr[:sys.AttrSize], int(size))
	r, err := sys.BPF(cmd, ptr(env.attr), uintptr(size))
	if fuzzStats != nil {
		fuzzStats[fmt.Sprint(cmd, " ", err)]++
	}
	if err == nil && (cmd == sys.BPF_MAP_CREATE || cmd == sys.BPF_OBJ_GET || cmd == sys.BPF_MAP_GET_FD_BY_ID) {
		if !sys.IsMapFD(r) {
			t.Fatalf("cmd %d returned fd %d, not a map fd", cmd, r)
		}
		if _, ok := sys.FDInfo(r); !ok {
			t.Fatalf("no fdinfo for fd %d", r)
		}
		_ = sys.Close(r)
	}
	if err == nil && r != 0 && cmd != sys.BPF_MAP_CREATE && cmd != sys.BPF_OBJ_GET && cmd != sys.BPF_MAP_GET_FD_BY_ID {
		t.Fatalf("cmd %d returned %d", cmd, r)
	}
}

// FuzzBPF feeds random attr bytes and sizes for every command to BPF over
// user-space maps of every type: it must never panic or crash, and fds it
// returns must be map fds.
func FuzzBPF(f *testing.F) {
	for i := range fuzzCmds {
		f.Add(uint8(i), uint16(sys.AttrSize), []byte{})
		f.Add(uint8(i), uint16(32), []byte{1, 0, 0, 0, 0, 0, 0, 0, 3})
	}
	f.Add(uint8(0), uint16(92), []byte{1, 0, 0, 0, 4, 0, 0, 0, 8, 0, 0, 0, 4})
	env := newFuzzEnv(f)
	f.Fuzz(func(t *testing.T, sel uint8, size uint16, data []byte) {
		env.run(t, sel, size, data)
	})
}

// TestRandomAttrs is FuzzBPF's body over a fixed number of random inputs,
// so that plain test runs cover it beyond the seed corpus.
func TestRandomAttrs(t *testing.T) {
	env := newFuzzEnv(t)
	if testing.Verbose() {
		fuzzStats = map[string]int{}
		defer func() {
			t.Logf("results: %v", fuzzStats)
			fuzzStats = nil
		}()
	}
	r := rand.New(rand.NewPCG(1, 2))
	n := 30000
	if testing.Short() {
		n = 3000
	}
	data := make([]byte, 200)
	for range n {
		// Word by word: mostly zero or small, as real attrs are.
		for i := 0; i+4 <= len(data); i += 4 {
			var w uint32
			switch r.IntN(10) {
			case 0, 1, 2, 3:
			case 4, 5, 6:
				w = uint32(r.IntN(8))
			default:
				w = r.Uint32()
			}
			binary.NativeEndian.PutUint32(data[i:], w)
		}
		size := uint16(r.IntN(180))
		if r.IntN(10) == 0 {
			size = uint16(r.IntN(4200))
		}
		env.run(t, uint8(r.IntN(256)), size, data[:r.IntN(len(data))])
	}
}

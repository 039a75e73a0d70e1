//go:build linux

package sys_test

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/bpfmap/bpfmap/sys"
)

// TestDiffPathResolution compares how OBJ_PIN and OBJ_GET resolve their
// pathnames: symbolic links are followed component by component, so that a
// ".." after a link is the parent of the link's target; the last component
// of a pin is not followed; ".", "..", trailing slashes, loops.
func TestDiffPathResolution(t *testing.T) {
	diff(t, func(s *side) {
		fd := s.create(mapSpec{name: "path", typ: tHash, ks: 4, vs: 8, max: 4})
		sub := joinPath(s.pinDir, "sub")
		deep := joinPath(sub, "deep")
		_ = os.Mkdir(sub, 0o700)
		_ = os.Mkdir(deep, 0o700)
		out := joinPath(s.other, "out")
		_ = os.Mkdir(out, 0o700)
		reg := joinPath(s.other, "regular")
		_ = os.WriteFile(reg, []byte("x"), 0o600)
		links := map[string]string{
			joinPath(s.pinDir, "lnk"):  sub,              // absolute, inside
			joinPath(s.pinDir, "rel"):  "sub/deep",       // relative, inside
			joinPath(s.pinDir, "away"): out,              // inside, to outside
			joinPath(s.pinDir, "loop"): "loop",           // a loop
			joinPath(s.pinDir, "dang"): "nothing",        // dangling
			joinPath(s.other, "in"):    deep,             // outside, to inside
			joinPath(s.other, "inrel"): "out",            // outside, relative
			joinPath(s.pinDir, "fin"):  s.pinDir + "/m0", // to a pin
		}
		for l, target := range links {
			if err := os.Symlink(target, l); err != nil {
				s.t.Fatal(err)
			}
		}
		if _, e := s.do(sys.BPF_OBJ_PIN, objAttr(s.t, cstr(s.t, joinPath(s.pinDir, "m0")), fd, 0, 0)); e != 0 {
			s.t.Fatal(e)
		}
		// "../../m10" from sub is beside pinDir (in /sys/fs/bpf for the
		// kernel).
		m10 := joinPath(filepath.Dir(s.pinDir), "m10")
		_ = os.Remove(m10)
		defer os.Remove(m10)
		subFD, err := unix.Open(joinPath(s.pinDir, "lnk"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			s.t.Fatal(err)
		}
		defer unix.Close(subFD)
		type pc struct {
			name   string
			path   string
			pathFD int32
		}
		p := func(rel string) string { return s.pinDir + "/" + rel }
		o := func(rel string) string { return s.other + "/" + rel }
		pins := []pc{
			{"link then ..", p("lnk/../m1"), 0},
			{"relative link then ..", p("rel/../m2"), 0},
			{"relative link then ../..", p("rel/../../m3"), 0},
			{"link to outside then ..", p("away/../m4"), 0},
			{"outside link to inside then ..", o("in/../m5"), 0},
			{"outside link to inside", o("in/m6"), 0},
			{"outside relative link then ..", o("inrel/../m7"), 0},
			{"textual .. without a link", p("sub/deep/../../m8"), 0},
			{"path_fd of a link then ..", "../m9", 1},
			{"path_fd of a link then ../..", "../../m10", 1},
			{"loop", p("loop/m"), 0},
			{"dangling", p("dang/m"), 0},
			{"final link", p("fin"), 0},
			{"final dangling link", p("dang"), 0},
			{"final ..", p("sub/.."), 0},
			{"final .", p("sub/."), 0},
			{"trailing slash, missing", p("t1/"), 0},
			{"trailing slash, exists", p("m0/"), 0},
			{"root", "/", 0},
			{"existing outside", reg, 0},
			{"existing outside dir", out, 0},
			{"outside, trailing slash", o("t2/"), 0},
			{"regular as dir", reg + "/x", 0},
		}
		for _, c := range pins {
			pathFD, flags := int32(0), uint32(0)
			if c.pathFD != 0 {
				pathFD, flags = int32(subFD), fPathFD
			}
			_, e := s.do(sys.BPF_OBJ_PIN, objAttr(s.t, cstr(s.t, c.path), fd, flags, pathFD))
			s.logf("pin %s: %s", c.name, errName(e))
		}
		for _, n := range []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"} {
			for _, dir := range []string{s.pinDir, sub, deep, s.other, out} {
				if _, err := os.Lstat(joinPath(dir, n)); err == nil {
					rel, _ := filepath.Rel(filepath.Dir(s.pinDir), dir)
					if dir == s.other || dir == out {
						rel = "other:" + filepath.Base(dir)
					} else if dir == s.pinDir {
						rel = "pinDir"
					}
					s.logf("  %s is in %s", n, filepath.Base(rel))
				}
			}
		}
		gets := []pc{
			{"link then ..", p("lnk/../m1"), 0},
			{"relative link then ..", p("rel/../m2"), 0},
			{"outside link to inside then ..", o("in/../m5"), 0},
			{"outside link to inside", o("in/m6"), 0},
			{"path_fd of a link then ..", "../m9", 1},
			{"textual .. after a link", p("lnk/../sub/deep/../../m0"), 0},
			{"final link", p("fin"), 0},
			{"link to outside then ..", p("away/../regular"), 0},
			{"loop", p("loop"), 0},
			{"dangling", p("dang"), 0},
			{"trailing slash on a pin", p("m0/"), 0},
			{"final ..", p("sub/.."), 0},
			{"link as dir", p("lnk"), 0},
		}
		for _, c := range gets {
			pathFD, flags := int32(0), uint32(0)
			if c.pathFD != 0 {
				pathFD, flags = int32(subFD), fPathFD
			}
			g, e := s.do(sys.BPF_OBJ_GET, objAttr(s.t, cstr(s.t, c.path), 0, flags, pathFD))
			s.logf("get %s: %s", c.name, res(g, e))
		}
		// Relative to the working directory, through a link.
		wd, _ := os.Getwd()
		if err := os.Chdir(joinPath(s.pinDir, "rel")); err != nil {
			s.t.Fatal(err)
		}
		_, e := s.do(sys.BPF_OBJ_PIN, objAttr(s.t, cstr(s.t, "../../mc"), fd, 0, 0))
		s.logf("pin cwd ../..: %s", errName(e))
		g, e := s.do(sys.BPF_OBJ_GET, objAttr(s.t, cstr(s.t, "../../mc"), 0, 0, 0))
		s.logf("get cwd ../..: %s", res(g, e))
		_ = os.Chdir(wd)
		s.closeAll()
		for l := range links {
			_ = os.Remove(l)
		}
		for _, n := range []string{"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9", "mc"} {
			for _, dir := range []string{s.pinDir, sub, deep, s.other, out} {
				_ = os.Remove(joinPath(dir, n))
			}
		}
	})
}

// TestPathInNamespace checks the routing predicate against where sys
// answers: names resolved as BPF resolves them, through links and "..".
func TestPathInNamespace(t *testing.T) {
	root := os.Getenv("BPFMAP_ROOT")
	pins := nsDir(t)
	other := t.TempDir()
	_ = os.Mkdir(pins+"/sub", 0o700)
	_ = os.Mkdir(other+"/dir", 0o700)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(pins+"/sub", pins+"/lnk"))
	must(os.Symlink(other+"/dir", pins+"/away"))
	must(os.Symlink(pins+"/sub", other+"/in"))
	must(os.Symlink(other+"/dir", pins+"/fin"))
	dirFD, err := unix.Open(pins+"/lnk", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	must(err)
	defer unix.Close(dirFD)
	wd, _ := os.Getwd()
	must(os.Chdir(other))
	defer func() { _ = os.Chdir(wd) }()
	for _, c := range []struct {
		name  string
		dirfd int
		want  bool
	}{
		{pins + "/m", unix.AT_FDCWD, true},
		{pins + "/lnk/../m", unix.AT_FDCWD, true},
		{pins + "/lnk/m", unix.AT_FDCWD, true},
		{pins + "/away/m", unix.AT_FDCWD, false},
		{pins + "/away/../m", unix.AT_FDCWD, false}, // the parent of other/dir
		{other + "/in/../m", unix.AT_FDCWD, true},   // textually outside
		{other + "/in/m", unix.AT_FDCWD, true},
		{"in/../m", unix.AT_FDCWD, true}, // relative to the working directory
		{"m", unix.AT_FDCWD, false},
		{"m", dirFD, true},
		{"../m", dirFD, true},
		{"../../m", dirFD, true},     // the namespace root
		{"../../../m", dirFD, false}, // the namespace root's parent
		{"../../m", 999, false},      // not open
		{pins + "/fin", unix.AT_FDCWD, false},
		{pins + "/a.b", unix.AT_FDCWD, true}, // sys answers EPERM
		{root, unix.AT_FDCWD, false},
		{root + "/.bpfmap/maps", unix.AT_FDCWD, true},
		{"", unix.AT_FDCWD, false},
		{"/", unix.AT_FDCWD, false},
		{pins + "/nodir/m", unix.AT_FDCWD, false},
	} {
		if got := sys.PathInNamespace(c.name, c.dirfd); got != c.want {
			t.Errorf("PathInNamespace(%q, %d) = %v, want %v", c.name, c.dirfd, got, c.want)
		}
	}
}

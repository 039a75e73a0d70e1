package cli

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/bpfmap/bpfmap/internal/namespace"
)

func FuzzStrtoul(f *testing.F) {
	for _, s := range []string{"1", "010", "0x1ff", "-1", "", " 7", "0x", "99999999999999999999", "ff"} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, hex bool) {
		base := 0
		if hex {
			base = 16
		}
		v, ok := strtoul(s, base)
		// Plain digit strings must agree with strconv.
		if s != "" && strings.Trim(s, "0123456789") == "" && (hex || s[0] != '0') {
			b := 10
			if hex {
				b = 16
			}
			if want, err := strconv.ParseUint(s, b, 64); err == nil && (!ok || v != want) {
				t.Fatalf("strtoul(%q, %d) = %d, %v; strconv says %d", s, base, v, ok, want)
			}
		}
	})
}

func FuzzSplitLine(f *testing.F) {
	for _, s := range []string{"map show", `map "a b" 'c'`, "\"", "a\\\n b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		words, ok := splitLine(s)
		if !ok {
			return
		}
		for _, w := range words {
			if strings.ContainsAny(w, " \t\r\n'\"") {
				return
			}
		}
		again, ok := splitLine(strings.Join(words, " "))
		if !ok || strings.Join(again, "\x00") != strings.Join(words, "\x00") {
			t.Fatalf("%q → %q → %q", s, words, again)
		}
	})
}

// safeForFuzz keeps a fuzzed command line on small user-space maps: no
// absolute or parent paths (pins stay in the test namespace) and no number
// above 4096 (no huge allocations).
func safeForFuzz(words []string) bool {
	for _, w := range words {
		if strings.Contains(w, "/") || strings.Contains(w, "..") || strings.HasPrefix(w, "-B") || strings.HasPrefix(w, "--b") {
			return false
		}
		if v, ok := strtoul(w, 0); ok && w != "" && v > 4096 {
			return false
		}
		if v, ok := strtoul(w, 16); ok && w != "" && v > 4096 && strings.HasPrefix(w, "0x") {
			return false
		}
	}
	return len(words) < 64
}

// FuzzCommands runs random command scripts on user-space maps (the kernel
// is out of reach): bpfmap must never panic, a successful command must
// report nothing on stderr but help, and a successful JSON command prints one JSON
// document.
func FuzzCommands(f *testing.F) {
	if fs, err := os.Open("testdata/golden.txt"); err == nil {
		sc := bufio.NewScanner(fs)
		var seed []string
		for sc.Scan() {
			l := strings.TrimSpace(stripComment(sc.Text()))
			if l == "" {
				continue
			}
			l = strings.ReplaceAll(l, "{P}/", "fz")
			l = strings.ReplaceAll(l, "{N}", "f")
			seed = append(seed, l)
			if len(seed) == 6 {
				f.Add(strings.Join(seed, "\n"))
				seed = seed[:0]
			}
		}
		fs.Close()
	}
	f.Add("-j map create fzq type queue key 0 value 1 entries 1 name q\n-j map push pinned fzq value 1\n-p map peek pinned fzq")
	root := namespace.DefaultRoot()
	if _, err := namespace.Default(); err != nil {
		f.Skipf("no user-space namespace: %v", err)
	}
	f.Fuzz(func(t *testing.T, script string) {
		kernelOff = true
		defer func() { kernelOff = false }()
		defer unpinAll(root)
		lines := strings.Split(script, "\n")
		if len(lines) > 12 {
			return
		}
		for _, l := range lines {
			words, ok := splitLine(l)
			if !ok || !safeForFuzz(words) {
				return
			}
			r := runBpfmap(words)
			jsonMode := len(words) > 0 && (words[0] == "-j" || words[0] == "-p")
			if r.code == 0 && r.stderr != "" && !strings.HasPrefix(r.stderr, "Usage: ") {
				t.Fatalf("%q succeeded with stderr %q", l, r.stderr)
			}
			if r.code == 0 && jsonMode && len(words) > 1 && isPrefix(words[1], "map") &&
				!json.Valid([]byte(r.stdout)) {
				t.Fatalf("%q: invalid JSON %q", l, r.stdout)
			}
		}
	})
}

// unpinAll removes the pins under root, so fuzz inputs do not see each
// other's maps.
func unpinAll(root string) {
	ents, _ := os.ReadDir(root)
	for _, e := range ents {
		if e.Name() != namespace.InternalDir {
			os.RemoveAll(filepath.Join(root, e.Name()))
		}
	}
}

package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bpfmap/bpfmap/internal/namespace"
)

// TestStrtoul pins C's strtoul semantics that bpftool's byte and number
// arguments inherit.
func TestStrtoul(t *testing.T) {
	for _, tc := range []struct {
		in   string
		base int
		want uint64
		ok   bool
	}{
		{"1", 0, 1, true},
		{"010", 0, 8, true},
		{"0x1ff", 0, 0x1ff, true},
		{"0X1F", 0, 0x1f, true},
		{"ff", 16, 0xff, true},
		{"0xff", 16, 0xff, true},
		{"1g", 16, 1, false},
		{"08", 0, 0, false},
		{"0x", 0, 0, false},
		{"0xg", 16, 0, false},
		{"", 0, 0, true}, // C: no digits, end == start == "\0"
		{" 7", 0, 7, true},
		{"7 ", 0, 7, false},
		{"-1", 0, ^uint64(0), true},
		{"+5", 0, 5, true},
		{"99999999999999999999999", 0, ^uint64(0), true},
		{"x", 0, 0, false},
		{"-", 0, 0, false},
	} {
		got, ok := strtoul(tc.in, tc.base)
		if got != tc.want || ok != tc.ok {
			t.Errorf("strtoul(%q, %d) = %d, %v; want %d, %v", tc.in, tc.base, got, ok, tc.want, tc.ok)
		}
	}
}

func TestDirname(t *testing.T) {
	for in, want := range map[string]string{
		"/a/b": "/a", "/a/b/": "/a", "/a": "/", "/": "/", "a": ".", "": ".", "a/b": "a", "//": "/",
	} {
		if got := dirname(in); got != want {
			t.Errorf("dirname(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSplitLine(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		ok   bool
	}{
		{"map show", []string{"map", "show"}, true},
		{"  map\tshow \n", []string{"map", "show"}, true},
		{`map "a b" 'c d'e`, []string{"map", "a b", "c d", "e"}, true},
		{`map "a b`, []string{"map"}, false},
		{"", nil, true},
	} {
		got, ok := splitLine(tc.in)
		if !slices.Equal(got, tc.want) || ok != tc.ok {
			t.Errorf("splitLine(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestJSONWriterPretty(t *testing.T) {
	var b bytes.Buffer
	w := newJSONWriter(&b)
	w.pretty = true
	w.startArray()
	w.startObject()
	w.name("key")
	w.hexBytes([]byte{1, 2})
	w.name("empty")
	w.startArray()
	w.endArray()
	w.strField("s", `a\b'c"`)
	w.endObject()
	w.endArray()
	want := "[{\n        \"key\": [\"0x01\",\"0x02\"\n        ],\n        \"empty\": [],\n        \"s\": \"a\\nb'c\\\"\"\n    }\n]"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}

// TestOptions covers getopt_long's rules: permutation, clusters, long
// prefixes, "--" and unknown options.
func TestOptions(t *testing.T) {
	for _, tc := range []struct {
		args       []string
		rest       []string
		json, pin  bool
		ok         bool
		stderrPart string
	}{
		{[]string{"map", "show", "-j"}, []string{"map", "show"}, true, false, true, ""},
		{[]string{"-jf", "map"}, []string{"map"}, true, true, true, ""},
		{[]string{"--js", "--bpf", "map"}, []string{"map"}, true, true, true, ""},
		{[]string{"--", "-j"}, []string{"-j"}, false, false, true, ""},
		{[]string{"-x"}, nil, false, false, false, "unrecognized option '-x'"},
		{[]string{"--b"}, nil, false, false, false, "unrecognized option '--b'"},
		{[]string{"--json=1"}, nil, false, false, false, "unrecognized option '--json=1'"},
		{[]string{"-B", "x", "map"}, []string{"map"}, false, false, true, ""},
		{[]string{"-B"}, nil, false, false, false, "unrecognized option '-B'"},
	} {
		var out, errw bytes.Buffer
		tl := &tool{bin: "bpfmap", out: &out, errw: &errw}
		rest, _, _, ok := tl.parseOptions(tc.args)
		if ok != tc.ok || (ok && !slices.Equal(rest, tc.rest)) || (tl.json != nil) != tc.json || tl.showPinned != tc.pin ||
			!strings.Contains(errw.String()+out.String(), tc.stderrPart) {
			t.Errorf("%q: rest %q ok %v json %v pin %v out %q err %q", tc.args, rest, ok, tl.json != nil, tl.showPinned, out.String(), errw.String())
		}
	}
}

// TestUserSpaceWithoutKernel runs a session on user-space maps with the
// kernel out of reach, as on a machine without BPF or without root.
func TestUserSpaceWithoutKernel(t *testing.T) {
	if _, err := namespace.Default(); err != nil {
		t.Skipf("no user-space namespace here: %v", err)
	}
	kernelOff = true
	defer func() { kernelOff = false }()
	dir, err := os.MkdirTemp(namespace.DefaultRoot(), "nokernel-")
	if err != nil {
		t.Fatal(err)
	}
	rel := filepath.Base(dir)
	name := "nk" + rel[len(rel)-6:] // unique per run: name lookups see every run's maps
	run := func(args ...string) result { return runBpfmap(args) }
	steps := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"map", "create", rel + "/q", "type", "queue", "key", "0", "value", "2", "entries", "2", "name", name}, 0, ""},
		{[]string{"map", "push", "pinned", rel + "/q", "value", "1", "2"}, 0, ""},
		{[]string{"-j", "map", "pop", "pinned", dir + "/q"}, 0, `{"key":[],"value":["0x01","0x02"]}` + "\n"},
		{[]string{"map", "pop", "pinned", rel + "/q"}, 254, "Error: empty map\n"},
	}
	for _, s := range steps {
		r := run(s.args...)
		if r.code != s.code || (s.out != "" && r.stdout != s.out) {
			t.Fatalf("%q: %+v", s.args, r)
		}
	}
	r := run("map", "show", "name", name)
	if r.code != 0 || !strings.Contains(r.stdout, ": queue  name "+name+"  flags 0x0\n") || !strings.Contains(r.stdout, "user_space namespace "+namespace.DefaultRoot()) {
		t.Fatalf("show by name: %+v", r)
	}
	id := strings.SplitN(r.stdout, ":", 2)[0]
	if n, err := strconv.ParseUint(id, 10, 32); err != nil || !namespace.ValidID(uint32(n)) {
		t.Fatalf("id %q is not a user-space id", id)
	}
	if r := run("-j", "map", "show", "id", id); r.code != 0 || !json.Valid([]byte(r.stdout)) {
		t.Fatalf("show by id: %+v", r)
	}
}

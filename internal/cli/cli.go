// Package cli is the bpfmap command: bpftool's "map" object, word for word
// (grammar, output, errors, exit codes), over user-space maps and kernel maps
// alike.
//
// A map is named as bpftool names one: "id ID", "pinned FILE" or "name
// NAME". A FILE inside a bpfmap pin namespace (see internal/namespace) is a
// user-space map; any other FILE is handed to the kernel (a bpffs pin). A
// relative FILE lies in the default namespace's root, the user-space
// counterpart of /sys/fs/bpf. Ids from namespace.MinID up are user-space
// maps of the default namespace, smaller ids are the kernel's, and listings
// and name searches cover both: kernel maps first, as far as the kernel lets
// this process see them (without privilege it sees none), then user-space
// maps. "create" makes a kernel map when FILE's directory is on a bpffs, and
// otherwise a user-space map in FILE's namespace, making FILE's directory a
// namespace root if it is in none (as bpftool mounts a bpffs there; -n
// forbids it).
//
// Output is bpftool v7's. The one intended difference: "show" adds a line
// "\tuser_space namespace ROOT" (JSON: "user_space_namespace") for a
// user-space map, so the two kinds can be told apart. Kernel maps are
// reached through bpf(2) directly (internal/kbpf), so the kernel sees the
// same attrs bpftool would pass and its errnos come back untouched.
// A kernel map that carries BTF (btf_id and a value type id in its
// bpf_map_info) is printed as bpftool prints it: "dump" in plain mode, when
// every map dumped has BTF, and "lookup"/"peek"/"pop" print its elements as
// pretty JSON of the formatted key and value (bpftool's btf_dumper: ints in
// decimal, bitfields and 128-bit ints in hex, chars, bools, enum names,
// char arrays as strings, structs, unions, arrays, pointers, DATASEC/VAR;
// other kinds print "(unsupported-kind"), with no "Found N elements"
// line; in JSON modes each element gets a "formatted" member. The map's BTF
// is read raw from the kernel by id and parsed here; if it cannot be
// loaded, the command fails with bpftool's "failed to get btf". Maps
// without BTF, and all user-space maps, are printed in hex.
package cli

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

var nativeEndian = binary.NativeEndian

// Version is the bpfmap command's version.
const Version = "0.1.0"

// tool is one run of the command: its options and output streams.
type tool struct {
	bin        string
	out, errw  io.Writer
	json       *jsonWriter
	pretty     bool
	showPinned bool
	noMount    bool
	debug      bool // -d: say on stderr which world each map is in
	exited     bool // usage() ran: bpftool exits at once
	help       func(args []string) int
	pinned     map[uint32][]string
}

// Run runs the command with args (without the program name) and returns
// its exit status. bin is the program name used in help texts.
func Run(bin string, args []string, stdout, stderr io.Writer) int {
	bw := bufio.NewWriter(stdout)
	defer bw.Flush()
	t := &tool{bin: bin, out: bw, errw: stderr}
	t.help = t.doHelp
	ret := t.main(args)
	if t.json != nil {
		t.json.finish()
	}
	return ret & 0xff
}

func (t *tool) printf(format string, args ...any) { fmt.Fprintf(t.out, format, args...) }

// perr is bpftool's p_err: an "Error: …" line on stderr, or an
// {"error": …} object in JSON mode (the message is not escaped there,
// as in bpftool).
func (t *tool) perr(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if t.json != nil {
		t.json.startObject()
		t.json.name("error")
		t.json.raw(`"%s"`, msg)
		t.json.endObject()
		return
	}
	fmt.Fprintf(t.errw, "Error: %s\n", msg)
}

// debugf reports a routing decision on stderr under -d (bpftool's -d
// shows libbpf's debug output there).
func (t *tool) debugf(format string, args ...any) {
	if t.debug {
		fmt.Fprintf(t.errw, "bpfmap: "+format+"\n", args...)
	}
}

// describe says which world m is in, for -d.
func describe(m bpfMap) string {
	info, e := m.info()
	switch {
	case e != 0:
		return "a map whose info fails: " + strerror(e)
	case info.root != "":
		return fmt.Sprintf("user-space map %d in namespace %s", info.id, info.root)
	}
	return fmt.Sprintf("kernel map %d", info.id)
}

// usage prints the current help and makes the command exit with -1.
func (t *tool) usage(args []string) int {
	t.help(args)
	t.exited = true
	return -1
}

// badArg is bpftool's BAD_ARG.
func (t *tool) badArg(arg string) int {
	t.perr("what is '%s'?", arg)
	return -1
}

// reqArgs is bpftool's REQ_ARGS: prev is the argument before args.
func (t *tool) reqArgs(prev string, args []string, n int) bool {
	if len(args) < n {
		t.perr("'%s' needs at least %d arguments, %d found", prev, n, len(args))
		return false
	}
	return true
}

// strerror is glibc's strerror for the errnos BPF commands return.
func strerror(e syscall.Errno) string {
	s := e.Error()
	if s == "" || strings.HasPrefix(s, "errno ") || e == 524 {
		return "Unknown error " + strconv.Itoa(int(e))
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

type option struct {
	long    string
	short   byte
	needArg bool
}

var options = []option{
	{"json", 'j', false}, {"help", 'h', false}, {"pretty", 'p', false},
	{"version", 'V', false}, {"bpffs", 'f', false}, {"mapcompat", 'm', false},
	{"nomount", 'n', false}, {"debug", 'd', false}, {"use-loader", 'L', false},
	{"base-btf", 'B', true}, {"legacy", 'l', false},
}

// parseOptions is getopt_long over bpftool's options, with GNU argument
// permutation: options may appear anywhere before "--". It returns the
// remaining words, or ok false after reporting an unknown option.
func (t *tool) parseOptions(args []string) (rest []string, version, help bool, ok bool) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			rest = append(rest, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			rest = append(rest, a)
			continue
		}
		var opts []byte
		if strings.HasPrefix(a, "--") {
			name, _, hasVal := strings.Cut(a[2:], "=")
			var match *option
			n := 0
			for k := range options {
				if options[k].long == name {
					match, n = &options[k], 1
					break
				}
				if strings.HasPrefix(options[k].long, name) {
					match = &options[k]
					n++
				}
			}
			if n != 1 || (hasVal && !match.needArg) {
				t.badOption(a)
				return nil, false, false, false
			}
			if match.needArg && !hasVal {
				if i+1 >= len(args) {
					t.badOption(a)
					return nil, false, false, false
				}
				i++
			}
			opts = []byte{match.short}
		} else {
			for j := 1; j < len(a); j++ {
				c := a[j]
				var match *option
				for k := range options {
					if options[k].short == c {
						match = &options[k]
					}
				}
				if match == nil {
					t.applyOptions(opts)
					t.badOption(a)
					return nil, false, false, false
				}
				opts = append(opts, c)
				if match.needArg {
					if j+1 == len(a) {
						if i+1 >= len(args) {
							t.applyOptions(opts[:len(opts)-1])
							t.badOption(a)
							return nil, false, false, false
						}
						i++
					}
					break
				}
			}
		}
		for _, c := range opts {
			switch c {
			case 'V':
				version = true
			case 'h':
				return nil, version, true, true
			}
		}
		t.applyOptions(opts)
	}
	return rest, version, false, true
}

func (t *tool) applyOptions(opts []byte) {
	for _, c := range opts {
		switch c {
		case 'p':
			t.pretty = true
			fallthrough
		case 'j':
			if t.json == nil {
				t.json = newJSONWriter(t.out)
			}
			t.json.pretty = t.pretty
		case 'f':
			t.showPinned = true
		case 'n':
			t.noMount = true
		case 'd':
			t.debug = true
		}
	}
}

func (t *tool) badOption(a string) {
	t.perr("unrecognized option '%s'", a)
	if t.json == nil {
		t.doHelp(nil)
	}
	t.exited = true
}

func (t *tool) main(args []string) int {
	rest, version, help, ok := t.parseOptions(args)
	if !ok {
		return -1
	}
	if help {
		return t.doHelp(nil)
	}
	if version {
		return t.doVersion()
	}
	return t.selectTop(rest)
}

type subcommand struct {
	name string
	fn   func(args []string) int
}

// dispatch is bpftool's cmd_select: the first command the word is a prefix
// of runs; no word runs the first command; an unknown word prints help.
func (t *tool) dispatch(cmds []subcommand, args []string, help func([]string) int) int {
	t.help = help
	if len(args) < 1 {
		return cmds[0].fn(args)
	}
	for _, c := range cmds {
		if isPrefix(args[0], c.name) {
			return c.fn(args[1:])
		}
	}
	help(args[1:])
	return -1
}

func (t *tool) selectTop(args []string) int {
	return t.dispatch([]subcommand{
		{"help", t.doHelp},
		{"batch", t.doBatch},
		{"map", t.doMap},
		{"version", func([]string) int { return t.doVersion() }},
	}, args, t.doHelp)
}

func (t *tool) doHelp([]string) int {
	if t.json != nil {
		t.json.null()
		return 0
	}
	b := t.bin
	fmt.Fprintf(t.errw, "Usage: %s [OPTIONS] OBJECT { COMMAND | help }\n"+
		"       %s batch file FILE\n"+
		"       %s version\n"+
		"\n"+
		"       OBJECT := { map }\n"+
		"       "+helpSpecOptions+" |\n"+
		"                    {-V|--version} }\n", b, b, b)
	return 0
}

const helpSpecOptions = "OPTIONS := { {-j|--json} [{-p|--pretty}] | {-d|--debug} | {-l|--legacy}"

func (t *tool) doVersion() int {
	if t.json != nil {
		t.json.startObject()
		t.json.name("version")
		t.json.raw(`"%s"`, Version)
		t.json.name("features")
		t.json.startObject()
		t.json.name("user_space_maps")
		t.json.raw("true")
		t.json.name("kernel_maps")
		t.json.raw("true")
		t.json.endObject()
		t.json.endObject()
		return 0
	}
	t.printf("%s v%s\nfeatures: user_space_maps, kernel_maps\n", t.bin, Version)
	return 0
}

// doBatch is "batch file FILE": one command per line, '#' comments, '\'
// continuation lines, quoted words; it stops at the first failing command.
func (t *tool) doBatch(args []string) int {
	switch {
	case len(args) < 2:
		t.perr("too few parameters for batch")
		return -1
	case !isPrefix(args[0], "file"):
		t.perr("expected 'file', got: %s", args[0])
		return -1
	case len(args) > 2:
		t.perr("too many parameters for batch")
		return -1
	}
	var r io.Reader
	if args[1] == "-" {
		r = os.Stdin
	} else {
		f, err := os.Open(args[1])
		if err != nil {
			t.perr("Can't open file (%s): %s", args[1], strerror(pathErrno(err)))
			return -1
		}
		defer f.Close()
		r = f
	}
	if t.json != nil {
		t.json.startArray()
		defer t.json.endArray()
	}
	br := bufio.NewReader(r)
	lines := 0
	for {
		line, err := readLine(br)
		if line == "" && err != nil {
			break
		}
		line = stripComment(line)
		for strings.HasSuffix(line, "\\\n") {
			cont, err := readLine(br)
			if cont == "" && err != nil {
				t.perr("missing continuation line on command %d", lines)
				return -1
			}
			line = line[:len(line)-2] + stripComment(cont)
		}
		words, ok := splitLine(line)
		if !ok {
			t.perr("unterminated quoted string in command %d", lines)
			return -1
		}
		if len(words) == 0 {
			continue
		}
		if t.json != nil {
			t.json.startObject()
			t.json.name("command")
			t.json.startArray()
			for _, w := range words {
				t.json.str(w)
			}
			t.json.endArray()
			t.json.name("output")
		}
		ret := t.selectTop(words)
		if t.json != nil {
			t.json.endObject()
		}
		if ret != 0 || t.exited {
			return ret
		}
		lines++
	}
	if t.json == nil {
		t.printf("processed %d commands\n", lines)
	}
	return 0
}

func readLine(br *bufio.Reader) (string, error) { return br.ReadString('\n') }

func stripComment(s string) string {
	if i := strings.IndexByte(s, '#'); i >= 0 {
		return s[:i]
	}
	return s
}

func pathErrno(err error) syscall.Errno {
	if pe, ok := err.(*os.PathError); ok {
		if e, ok := pe.Err.(syscall.Errno); ok {
			return e
		}
	}
	return syscall.EINVAL
}

func atoi(s string) int {
	n, _ := strconv.Atoi(strings.TrimSpace(s))
	return n
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

// dirname is C's dirname(3): "/a/b/" → "/a", "/a" → "/", "a" → ".".
func dirname(p string) string {
	if p == "" {
		return "."
	}
	if q := strings.TrimRight(p, "/"); q != "" {
		return filepath.Dir(q)
	}
	return "/"
}

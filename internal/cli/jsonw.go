package cli

import (
	"fmt"
	"io"
	"strings"
)

// jsonWriter is a streaming JSON writer with bpftool's observable output:
// compact by default; pretty-printed with four-space indents where every
// member name and every closing bracket of a non-empty container starts a
// new line, while array elements stay on the line of their opening bracket.
// Strings are escaped as bpftool escapes them (including its quirk: a
// backslash comes out as \n; a single quote is left as it is).
type jsonWriter struct {
	out    io.Writer
	depth  int
	pretty bool
	sep    bool // a comma is due before the next element
}

func newJSONWriter(out io.Writer) *jsonWriter { return &jsonWriter{out: out} }

func (w *jsonWriter) put(s string) { io.WriteString(w.out, s) }

func (w *jsonWriter) eol() {
	if w.pretty {
		w.put("\n" + strings.Repeat("    ", w.depth))
	}
}

func (w *jsonWriter) eor() {
	if w.sep {
		w.put(",")
	}
	w.sep = true
}

func (w *jsonWriter) begin(c string) {
	w.eor()
	w.put(c)
	w.depth++
	w.sep = false
}

func (w *jsonWriter) end(c string) {
	w.depth--
	if w.sep {
		w.eol()
	}
	w.put(c)
	w.sep = true
}

func (w *jsonWriter) startObject() { w.begin("{") }
func (w *jsonWriter) endObject()   { w.end("}") }
func (w *jsonWriter) startArray()  { w.begin("[") }
func (w *jsonWriter) endArray()    { w.end("]") }

// name writes a member name; the value follows.
func (w *jsonWriter) name(n string) {
	w.eor()
	w.eol()
	w.sep = false
	w.quote(n)
	w.put(":")
	if w.pretty {
		w.put(" ")
	}
}

func (w *jsonWriter) quote(s string) {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '\t':
			b.WriteString(`\t`)
		case '\n', '\\':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\f':
			b.WriteString(`\f`)
		case '\b':
			b.WriteString(`\b`)
		case '"':
			b.WriteString(`\"`)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	w.put(b.String())
}

// raw writes a preformatted value.
func (w *jsonWriter) raw(format string, args ...any) {
	w.eor()
	fmt.Fprintf(w.out, format, args...)
}

func (w *jsonWriter) str(s string)  { w.eor(); w.quote(s) }
func (w *jsonWriter) null()         { w.raw("null") }
func (w *jsonWriter) uint(v uint64) { w.raw("%d", v) }
func (w *jsonWriter) int(v int64)   { w.raw("%d", v) }

func (w *jsonWriter) strField(n, v string)         { w.name(n); w.str(v) }
func (w *jsonWriter) uintField(n string, v uint64) { w.name(n); w.uint(v) }
func (w *jsonWriter) intField(n string, v int64)   { w.name(n); w.int(v) }
func (w *jsonWriter) nullField(n string)           { w.name(n); w.null() }

// hexBytes writes data as an array of "0x%02x" strings.
func (w *jsonWriter) hexBytes(data []byte) {
	w.startArray()
	for _, b := range data {
		w.raw(`"0x%02x"`, b)
	}
	w.endArray()
}

// finish ends the stream as bpftool does when it exits: a newline.
func (w *jsonWriter) finish() { w.put("\n") }

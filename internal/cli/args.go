package cli

import "strings"

// isPrefix reports whether word is a prefix of keyword, bpftool's rule for
// commands and keywords ("sh" is show, "" matches anything).
func isPrefix(word, keyword string) bool { return strings.HasPrefix(keyword, word) }

// strtoul parses s as C's strtoul(s, &end, base) does for base 0 (decimal,
// 0x… hex, 0… octal) and base 16 (with an optional 0x), and reports whether
// the whole string was consumed (*end == '\0'). Like C it accepts leading
// white space and a sign (negative values wrap), saturates on overflow,
// and takes the empty string as 0.
func strtoul(s string, base int) (uint64, bool) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	hexAhead := i+2 < len(s) && s[i] == '0' && (s[i+1] == 'x' || s[i+1] == 'X') && digitVal(s[i+2]) < 16
	switch {
	case (base == 0 || base == 16) && hexAhead:
		base = 16
		i += 2
	case base == 0 && i < len(s) && s[i] == '0':
		base = 8
	case base == 0:
		base = 10
	}
	start := i
	var v uint64
	overflow := false
	for i < len(s) {
		d := digitVal(s[i])
		if d >= base {
			break
		}
		if v > (^uint64(0)-uint64(d))/uint64(base) {
			overflow = true
		}
		v = v*uint64(base) + uint64(d)
		i++
	}
	if i == start {
		// No digits: end is the start of the string, so only the empty
		// string counts as fully consumed.
		return 0, len(s) == 0
	}
	switch {
	case overflow:
		v = ^uint64(0)
	case neg:
		v = -v
	}
	return v, i == len(s)
}

func isSpace(c byte) bool { return c == ' ' || (c >= '\t' && c <= '\r') }

func digitVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'z':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'Z':
		return int(c-'A') + 10
	}
	return 99
}

// splitLine splits a batch-file line into words as bpftool does: white
// space separates words, and a word that begins with ' or " runs to the
// next identical quote. ok is false for an unterminated quote.
func splitLine(line string) (words []string, ok bool) {
	const ws = " \t\r\n"
	i := 0
	for i < len(line) {
		for i < len(line) && strings.IndexByte(ws, line[i]) >= 0 {
			i++
		}
		if i == len(line) {
			break
		}
		if q := line[i]; q == '\'' || q == '"' {
			j := strings.IndexByte(line[i+1:], q)
			if j < 0 {
				return words, false
			}
			words = append(words, line[i+1:i+1+j])
			i += j + 2
			continue
		}
		j := i
		for j < len(line) && strings.IndexByte(ws, line[j]) < 0 {
			j++
		}
		words = append(words, line[i:j])
		i = j + 1
	}
	return words, true
}

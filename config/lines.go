package config

import (
	"strconv"
	"strings"
)

// lineIndex maps a key path such as "storage.segment" or "camera.2.url" to
// the line where it is defined. BurntSushi/toml keeps key positions private,
// so a small scanner over the (already syntax-checked) source recovers them;
// that lets every semantic problem name its file:line, not only the first
// syntax error.
type lineIndex map[string]int

// indexLines scans TOML source for table headers and key/value lines. It
// understands the subset of TOML a buddyrec config uses: [table],
// [[array.of.tables]], bare/quoted/dotted keys and multi-line strings/arrays
// (whose inner lines are skipped).
func indexLines(src string) lineIndex {
	idx := lineIndex{}
	arrayCount := map[string]int{}
	prefix := ""
	inMultiString := ""
	depth := 0 // open [ or { of a multi-line value
	for i, raw := range strings.Split(src, "\n") {
		line := i + 1
		s := strings.TrimSpace(raw)
		if inMultiString != "" {
			if strings.Contains(s, inMultiString) {
				inMultiString = ""
			}
			continue
		}
		if depth > 0 {
			depth += bracketDelta(s)
			continue
		}
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(s, "[["):
			name := joinKey(splitKey(strings.TrimSpace(cutUntil(s[2:], "]]"))))
			n := arrayCount[name]
			arrayCount[name] = n + 1
			prefix = name + "." + strconv.Itoa(n)
			idx[name] = line
			idx[prefix] = line
			continue
		case strings.HasPrefix(s, "["):
			name := joinKey(splitKey(strings.TrimSpace(cutUntil(s[1:], "]"))))
			prefix = name
			idx[prefix] = line
			continue
		}
		eq := keyEnd(s)
		if eq < 0 {
			continue
		}
		key := joinKey(splitKey(strings.TrimSpace(s[:eq])))
		full := key
		if prefix != "" {
			full = prefix + "." + key
		}
		if _, dup := idx[full]; !dup {
			idx[full] = line
		}
		val := strings.TrimSpace(s[eq+1:])
		for _, q := range []string{`"""`, `'''`} {
			if strings.HasPrefix(val, q) && !strings.Contains(val[3:], q) {
				inMultiString = q
			}
		}
		if inMultiString == "" {
			depth = bracketDelta(stripComment(val))
			if depth < 0 {
				depth = 0
			}
		}
	}
	return idx
}

// lookup returns the line of the most specific known prefix of path, so a
// problem inside an inline value still points near its source.
func (idx lineIndex) lookup(path string) int {
	for p := path; p != ""; {
		if l, ok := idx[p]; ok {
			return l
		}
		dot := strings.LastIndexByte(p, '.')
		if dot < 0 {
			break
		}
		p = p[:dot]
	}
	return 0
}

func cutUntil(s, end string) string {
	if i := strings.Index(s, end); i >= 0 {
		return s[:i]
	}
	return s
}

// keyEnd returns the index of the '=' that ends the key part of a line, or
// -1, skipping '=' inside quoted keys.
func keyEnd(s string) int {
	end := -1
	outsideStrings(s, func(i int, c byte) bool {
		if c == '=' {
			end = i
			return false
		}
		return true
	})
	return end
}

// splitKey splits a dotted key, honouring quotes.
func splitKey(s string) []string {
	var parts []string
	var b strings.Builder
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				b.WriteByte(c)
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '.':
			parts = append(parts, strings.TrimSpace(b.String()))
			b.Reset()
		default:
			b.WriteByte(c)
		}
	}
	return append(parts, strings.TrimSpace(b.String()))
}

func joinKey(parts []string) string { return strings.Join(parts, ".") }

// outsideStrings calls fn with the index and byte of every byte of s that
// is outside a quoted string, until fn returns false.
func outsideStrings(s string, fn func(i int, c byte) bool) {
	var quote byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == '\\' && quote == '"' {
				i++
			} else if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		default:
			if !fn(i, c) {
				return
			}
		}
	}
}

// stripComment removes a trailing # comment outside strings.
func stripComment(s string) string {
	end := len(s)
	outsideStrings(s, func(i int, c byte) bool {
		if c == '#' {
			end = i
			return false
		}
		return true
	})
	return s[:end]
}

// bracketDelta counts unclosed [ and { outside strings and comments.
func bracketDelta(s string) int {
	d := 0
	outsideStrings(stripComment(s), func(_ int, c byte) bool {
		switch c {
		case '[', '{':
			d++
		case ']', '}':
			d--
		}
		return true
	})
	return d
}

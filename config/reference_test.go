package config

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// refKey is one key line of buddyrec.toml.
type refKey struct {
	table     string // "" for the top level
	array     bool   // the table is an array of tables ([[camera]])
	key       string
	value     string // the TOML value as written
	line      int
	commented bool
	required  bool // "required:": the value is an example; the key must be set
	noDefault bool // "no default": set or absent, no value means absent
	meaning   string
}

func (k refKey) path() string { return join(k.table, k.key) }

// setting is the key line as a config would hold it.
func (k refKey) setting() string { return k.key + " = " + k.value }

var (
	refHeaderRE = regexp.MustCompile(`^(#\s*)?(\[\[?)([a-z_]+)(\]\]?)\s*(#.*)?$`)
	refKeyRE    = regexp.MustCompile(`^(#\s*)?([a-z_]+)\s*=\s*(.*)$`)
)

// splitComment cuts a value from its trailing comment ("#" outside quotes).
func splitComment(s string) (value, comment string) {
	quoted := false
	for i, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == '#' && !quoted:
			return strings.TrimSpace(s[:i]), strings.TrimSpace(s[i+1:])
		}
	}
	return strings.TrimSpace(s), ""
}

// parseReference reads the key lines of the reference file, with the table
// each belongs to and the comment that explains it (its own, or the prose
// comment lines right above it).
func parseReference(t *testing.T, src string) []refKey {
	t.Helper()
	var out []refKey
	table, array := "", false
	var prose []string
	for i, line := range strings.Split(src, "\n") {
		n := i + 1
		if m := refHeaderRE.FindStringSubmatch(line); m != nil {
			if (m[2] == "[[") != (m[4] == "]]") {
				t.Errorf("buddyrec.toml:%d: unbalanced table header %q", n, line)
			}
			table, array, prose = m[3], m[2] == "[[", nil
			continue
		}
		if m := refKeyRE.FindStringSubmatch(line); m != nil {
			value, comment := splitComment(m[3])
			k := refKey{table: table, array: array, key: m[2], value: value, line: n, commented: m[1] != ""}
			k.meaning = comment
			if k.meaning == "" {
				k.meaning = strings.Join(prose, " ")
			}
			lower := strings.ToLower(k.meaning)
			k.required = strings.HasPrefix(lower, "required:")
			k.noDefault = strings.HasPrefix(lower, "no default")
			var v map[string]any
			if _, err := toml.Decode(k.setting(), &v); err != nil {
				t.Errorf("buddyrec.toml:%d: %s: value %s is not TOML: %v", n, k.path(), value, err)
			}
			out = append(out, k)
			prose = nil
			continue
		}
		if c, ok := strings.CutPrefix(line, "#"); ok {
			prose = append(prose, strings.TrimSpace(c))
		} else {
			prose = nil
		}
	}
	return out
}

// A minimal valid config, and the keys each array table requires, as the
// tests below write them. TestReferenceRequiredKeys checks that these are
// exactly the keys the reference marks required.
var refRequired = map[string][]string{
	"":       {`name = "t"`, `data_dir = "data"`},
	"camera": {`name = "c"`, `url = "rtsp://127.0.0.1:8554/c"`},
	"psim":   {`url = "http://127.0.0.1:9/hook"`, `secret_file = "psim.secret"`},
	"aspect": {`kind = "io"`, `name = "door"`},
}

// refSource is a config with the required keys, table's header (when not
// the top level) with its required keys, and extra last; omit leaves one
// required key of table out.
func refSource(table string, array bool, omit, extra string) string {
	var b strings.Builder
	keep := func(tbl string) {
		for _, l := range refRequired[tbl] {
			if tbl == table && strings.HasPrefix(l, omit+" ") {
				continue
			}
			b.WriteString(l + "\n")
		}
	}
	keep("")
	if table == "" {
		b.WriteString(extra + "\n")
		return b.String()
	}
	if array {
		fmt.Fprintf(&b, "[[%s]]\n", table)
	} else {
		fmt.Fprintf(&b, "[%s]\n", table)
	}
	keep(table)
	b.WriteString(extra + "\n")
	return b.String()
}

// refDir holds the files refSource names (a webhook secret).
func refDir(t *testing.T) string {
	dir := t.TempDir()
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123"))
	if err := os.WriteFile(filepath.Join(dir, "psim.secret"), []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "buddyrec.toml")
}

// TestReferenceIsValidConfig: as shipped, the reference is a config that
// loads (a standalone server with no cameras).
func TestReferenceIsValidConfig(t *testing.T) {
	c, err := Parse("/etc/buddyrec/buddyrec.toml", Reference)
	if err != nil {
		t.Fatalf("the reference config does not load:\n%v", err)
	}
	if c.Listen.Gossip != "" || len(c.Cameras) != 0 {
		t.Errorf("the shipped config should be standalone with no cameras: %+v", c)
	}
}

// TestReferenceDocumentsEveryKey: every key the loader accepts is in the
// reference with its meaning, once; the reference names no other key.
func TestReferenceDocumentsEveryKey(t *testing.T) {
	doc := parseReference(t, Reference)
	documented := map[string]refKey{}
	tables := map[string]bool{}
	for _, k := range doc {
		if prev, dup := documented[k.path()]; dup {
			t.Errorf("buddyrec.toml:%d: %s documented again (first at line %d)", k.line, k.path(), prev.line)
		}
		documented[k.path()] = k
		tables[k.table] = true
		if len(k.meaning) < 10 {
			t.Errorf("buddyrec.toml:%d: %s has no comment saying what it means", k.line, k.path())
		}
		if !slices.Contains(keys[k.table], k.key) {
			t.Errorf("buddyrec.toml:%d: %s is not a key the loader accepts", k.line, k.path())
		}
	}
	for table, ks := range keys {
		for _, k := range ks {
			if table == "" && keys[k] != nil {
				if !tables[k] {
					t.Errorf("table %s is not documented in buddyrec.toml", k)
				}
				continue
			}
			if _, ok := documented[join(table, k)]; !ok {
				t.Errorf("key %s is accepted by the loader but not documented in buddyrec.toml", join(table, k))
			}
		}
	}
}

// TestReferenceDefaults: each documented default is the loader's: a config
// with the line set loads to exactly what it loads to without it. Values
// uncommented in the shipped file are held to the same rule.
func TestReferenceDefaults(t *testing.T) {
	path := refDir(t)
	for _, k := range parseReference(t, Reference) {
		if k.required || k.noDefault {
			continue
		}
		without, err := Parse(path, refSource(k.table, k.array, "", ""))
		if err != nil {
			t.Fatalf("%s: the base config does not load:\n%v", k.path(), err)
		}
		with, err := Parse(path, refSource(k.table, k.array, "", k.setting()))
		if err != nil {
			t.Errorf("buddyrec.toml:%d: %s: the documented default does not load:\n%v", k.line, k.setting(), err)
			continue
		}
		if a, b := fmt.Sprintf("%+v", *without), fmt.Sprintf("%+v", *with); a != b {
			t.Errorf("buddyrec.toml:%d: %s is documented as the default, but setting it changes the config:\nwithout: %s\nwith:    %s", k.line, k.setting(), a, b)
		}
	}
}

// TestReferenceRequiredKeys: a key documented as required is reported at
// its name when it is missing, and its example value loads; a "no default"
// key is one the loader takes.
func TestReferenceRequiredKeys(t *testing.T) {
	path := refDir(t)
	requiredByTable := map[string][]string{}
	for _, k := range parseReference(t, Reference) {
		switch {
		case k.required:
			requiredByTable[k.table] = append(requiredByTable[k.table], k.key)
			_, err := Parse(path, refSource(k.table, k.array, k.key, ""))
			want := display(k.path())
			if k.array {
				want = display(fmt.Sprintf("%s.0.%s", k.table, k.key))
			}
			ps, _ := err.(Problems)
			if !slices.ContainsFunc(ps, func(p Problem) bool { return p.Key == want }) {
				t.Errorf("buddyrec.toml:%d: %s is documented as required, but a config without it gives: %v", k.line, k.path(), err)
			}
			if k.table != "" && k.table != "psim" { // the example secret_file is not on this machine
				src := refSource(k.table, k.array, k.key, k.setting())
				if _, err := Parse(path, src); err != nil {
					t.Errorf("buddyrec.toml:%d: the example %s does not load:\n%v", k.line, k.setting(), err)
				}
			}
		case k.noDefault:
			_, err := Parse(path, refSource(k.table, k.array, "", k.setting()))
			ps, _ := err.(Problems)
			for _, p := range ps {
				if p.Msg == "unknown key" || strings.HasPrefix(p.Msg, "must be") {
					t.Errorf("buddyrec.toml:%d: %s: %s", k.line, k.setting(), p)
				}
			}
		}
	}
	for table, lines := range refRequired {
		var want []string
		for _, l := range lines {
			want = append(want, strings.Fields(l)[0])
		}
		got := requiredByTable[table]
		sort.Strings(want)
		sort.Strings(got)
		if !slices.Equal(got, want) {
			t.Errorf("table %q: the reference marks %v required, the loader's minimal config needs %v", table, got, want)
		}
	}
}

// readmeConfigTable returns the rows of README.md's configuration table,
// as "table.key" → default cell, and the section's text.
func readmeConfigTable(t *testing.T) (map[string]string, string) {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Configuration reference\n")
	if !ok {
		t.Fatal(`README.md has no "## Configuration reference" section`)
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	rows := map[string]string{}
	keyRE := regexp.MustCompile("`(?:\\[\\[?([a-z_]+)\\]\\]? )?([a-z_]+)`")
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(line, " | ")
		if !strings.HasPrefix(line, "| `") || len(cells) < 3 {
			continue
		}
		table := ""
		for _, m := range keyRE.FindAllStringSubmatch(cells[0], -1) {
			if m[1] != "" {
				table = m[1]
			}
			k := join(table, m[2])
			if _, dup := rows[k]; dup {
				t.Errorf("README.md: %s is in the configuration table twice", k)
			}
			rows[k] = strings.TrimSpace(cells[1])
		}
	}
	return rows, section
}

// TestReadmeConfigTable: README.md's configuration table lists exactly the
// keys of the reference, with the same defaults (a literal in backquotes is
// the reference's value as written; words are allowed only for no value,
// such as "none" or "unlimited" for "" or 0, and "required" for required
// keys), and points to the reference for the rest.
func TestReadmeConfigTable(t *testing.T) {
	rows, section := readmeConfigTable(t)
	if !strings.Contains(section, "config/buddyrec.toml") {
		t.Error("README.md's configuration reference does not point to config/buddyrec.toml")
	}
	zero := []string{`""`, `0`, `false`, `[]`}
	for _, k := range parseReference(t, Reference) {
		def, ok := rows[k.path()]
		if !ok {
			t.Errorf("README.md: the configuration table has no row for %s (buddyrec.toml:%d)", k.path(), k.line)
			continue
		}
		delete(rows, k.path())
		switch lit, isLit := strings.CutPrefix(def, "`"); {
		case isLit:
			lit, _, _ = strings.Cut(lit, "`")
			if k.required || k.noDefault || lit != k.value {
				t.Errorf("README.md: %s default %s, but buddyrec.toml:%d says %s", k.path(), def, k.line, k.setting())
			}
		case (def == "required") != k.required:
			t.Errorf("README.md: %s default %q, but buddyrec.toml:%d marks it required=%v", k.path(), def, k.line, k.required)
		case !k.required && !k.noDefault && !slices.Contains(zero, k.value):
			t.Errorf("README.md: %s default %q, but buddyrec.toml:%d gives the value %s: write it in backquotes", k.path(), def, k.line, k.value)
		}
	}
	for k := range rows {
		t.Errorf("README.md: the configuration table names %s, which buddyrec.toml does not document", k)
	}
}

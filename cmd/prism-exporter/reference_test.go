package main

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"text/template"

	"github.com/kelseyhightower/envconfig"
)

// readmeRow is one variable as README.md's configuration table lists it.
type readmeRow struct {
	def      string // without backticks; "required" for a required variable
	required bool
}

// configTable reads the table that follows "## Configuration" in a README:
// every row's first cell may name one or more `PRISM_*` variables.
func configTable(readme []byte) map[string]readmeRow {
	names := regexp.MustCompile("`(PRISM_[A-Z0-9_]+)`")
	_, section, _ := strings.Cut(string(readme), "\n## Configuration\n")
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string]readmeRow{}
	for line := range strings.SplitSeq(section, "\n") {
		cells := strings.Split(line, "|")
		if !strings.HasPrefix(line, "|") || len(cells) < 4 {
			continue
		}
		def := strings.Trim(strings.TrimSpace(cells[2]), "`")
		for _, m := range names.FindAllStringSubmatch(cells[1], -1) {
			rows[m[1]] = readmeRow{def: def, required: def == "required"}
		}
	}
	return rows
}

// tableDiff lists how a README's table differs from the settings struct.
func tableDiff(readme []byte, ref []envVar) []string {
	rows := configTable(readme)
	var diffs []string
	for _, v := range ref {
		row, ok := rows[v.Name]
		switch {
		case !ok:
			diffs = append(diffs, v.Name+": in the settings struct, missing from the README's table")
		case row.required != v.Required:
			diffs = append(diffs, v.Name+": required in only one of the README and the struct")
		case !v.Required && row.def != v.Default:
			diffs = append(diffs, v.Name+": README default "+strconv.Quote(row.def)+", struct default "+strconv.Quote(v.Default))
		}
		delete(rows, v.Name)
	}
	for name := range rows {
		diffs = append(diffs, name+": in the README's table, but the exporter does not read it")
	}
	slices.Sort(diffs)
	return diffs
}

func TestReadmeConfigTableMatchesSettings(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range tableDiff(readme, envReference()) {
		t.Error(d + " (go run ./cmd/prism-exporter config --markdown prints the rows)")
	}
}

// The check above must catch a table that drifted: a misspelt name, a wrong
// default, a variable the struct does not have, and a missing row.
func TestReadmeConfigTableDriftIsCaught(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, old, new string }{
		{"misspelt", "`PRISM_KAFKA_TOPIC`", "`PRISM_KAFKA_TOPC`"},
		{"wrong default", "| `PRISM_COMMIT_INTERVAL` | `1s` |", "| `PRISM_COMMIT_INTERVAL` | `2s` |"},
		{"not required", "| `PRISM_KAFKA_BROKERS` | required |", "| `PRISM_KAFKA_BROKERS` | |"},
		{"unknown", "| `PRISM_LOG_LEVEL` |", "| `PRISM_LOG_LEVEL`, `PRISM_LOG_FORMAT` |"},
		{"missing", "| `PRISM_DRAIN_TIMEOUT` |", "| `DRAIN_TIMEOUT` |"},
	} {
		if !bytes.Contains(readme, []byte(c.old)) {
			t.Fatalf("%s: the README has no %q to change", c.name, c.old)
		}
		broken := bytes.Replace(readme, []byte(c.old), []byte(c.new), 1)
		if d := tableDiff(broken, envReference()); len(d) == 0 {
			t.Errorf("%s: a README with %q passed", c.name, c.new)
		}
	}
}

// config --markdown prints rows that the README check reads back as equal,
// so pasting them is always a fix.
func TestConfigMarkdownIsATable(t *testing.T) {
	var out bytes.Buffer
	if code := runConfig([]string{"--markdown"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	doc := append([]byte("\n## Configuration\n\n"), out.Bytes()...)
	if d := tableDiff(doc, envReference()); len(d) > 0 {
		t.Errorf("config --markdown does not read back: %v", d)
	}
}

// The reference names exactly the variables envconfig reads: envconfig's own
// usage output, over the same struct, is the other witness.
func TestReferenceNamesWhatEnvconfigReads(t *testing.T) {
	var buf bytes.Buffer
	tmpl := template.Must(template.New("keys").Parse("{{range .}}{{.Key}}\n{{end}}"))
	if err := envconfig.Usaget("PRISM", &settings{}, &buf, tmpl); err != nil {
		t.Fatal(err)
	}
	want := strings.Fields(buf.String())
	var got []string
	for _, v := range envReference() {
		got = append(got, v.Name)
	}
	if !slices.Equal(got, want) {
		t.Errorf("reference lists %v\nenvconfig reads %v", got, want)
	}
}

// A variable without a desc tag would print with no meaning.
func TestEveryVariableHasAMeaning(t *testing.T) {
	for _, v := range envReference() {
		if strings.TrimSpace(v.Meaning) == "" {
			t.Errorf("%s: no desc tag in the settings struct", v.Name)
		}
	}
}

// The defaults the reference prints are the ones envconfig applies.
func TestReferenceDefaultsAreApplied(t *testing.T) {
	for _, kv := range os.Environ() {
		if name, _, _ := strings.Cut(kv, "="); strings.HasPrefix(name, "PRISM_") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	var fromDefaults settings
	for _, v := range envReference() {
		if v.Required {
			t.Setenv(v.Name, "x:1")
		}
	}
	if err := envconfig.Process("PRISM", &fromDefaults); err != nil {
		t.Fatal(err)
	}
	for _, v := range envReference() {
		if !v.Required && v.Default != "" {
			t.Setenv(v.Name, v.Default)
		}
	}
	var fromReference settings
	if err := envconfig.Process("PRISM", &fromReference); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromDefaults, fromReference) {
		t.Errorf("setting every variable to its printed default changes the settings:\n%+v\n%+v", fromDefaults, fromReference)
	}
}

// -h prints the commands and every variable.
func TestHelpListsCommandsAndVariables(t *testing.T) {
	var out bytes.Buffer
	usage(&out)
	for _, want := range []string{"demo", "healthcheck", "config", "version"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-h does not mention %q", want)
		}
	}
	for _, v := range envReference() {
		if !strings.Contains(out.String(), v.Name) {
			t.Errorf("-h does not list %s", v.Name)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	var out bytes.Buffer
	if code := runConfig([]string{"--json"}, &out, &out); code != 0 {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	var vars []envVar
	if err := json.Unmarshal(out.Bytes(), &vars); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vars, envReference()) {
		t.Errorf("config --json does not round-trip: %+v", vars)
	}
	if code := runConfig([]string{"--yaml"}, &out, &out); code != 2 {
		t.Errorf("config --yaml: exit %d, want 2", code)
	}
}

package schemas

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The shared samples live beside the repository (<dir>/main and
// <dir>/shared), in CI as on a developer's machine. testdata/ holds a copy of
// part of them so the tests never run empty; the shared files are used as
// well whenever they are there.
const sharedSamples = "../../shared/samples"

const (
	goodFile = "gateway-records.jsonl"
	badFile  = "malformed-records.txt"
)

// sampleSources lists the files to read for name: the testdata copy, then the
// shared original if present. Under CI the shared copy must be there: a
// missing one means the layout changed, and the tests would quietly shrink.
func sampleSources(t testing.TB, name string) []string {
	t.Helper()
	paths := []string{filepath.Join("testdata", name)}
	shared := filepath.Join(sharedSamples, name)
	switch _, err := os.Stat(shared); {
	case err == nil:
		paths = append(paths, shared)
	case os.Getenv("CI") == "true":
		t.Fatalf("shared samples not found at %s (CI=true): %v", shared, err)
	default:
		t.Logf("shared samples not found at %s; using testdata only", shared)
	}
	return paths
}

// sampleLines returns every line of every source of name, tagged with where
// it came from. An empty line is a record too (malformed-records.txt has
// one); only the newline that ends the file does not start another.
func sampleLines(t testing.TB, name string) []sampleLine {
	t.Helper()
	var out []sampleLine
	for _, path := range sampleSources(t, name) {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		data = bytes.TrimSuffix(data, []byte("\n"))
		for i, line := range bytes.Split(data, []byte("\n")) {
			out = append(out, sampleLine{path: path, line: i + 1, data: line})
		}
	}
	if len(out) == 0 {
		t.Fatalf("no lines in %s", name)
	}
	return out
}

type sampleLine struct {
	path string
	line int
	data []byte
}

func (s sampleLine) String() string { return s.path + ":" + strconv.Itoa(s.line) }

package schemas

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// The samples are copies, in testdata/, of the gateway records the project
// was given (1,000 records of five organisations, and one malformed record a
// line). Tests read only these copies, so a bare clone is enough.
const (
	goodFile = "gateway-records.jsonl"
	badFile  = "malformed-records.txt"
)

// sampleLines returns every line of testdata/name, tagged with where it came
// from. An empty line is a record too (malformed-records.txt has one); only
// the newline that ends the file does not start another.
func sampleLines(t testing.TB, name string) []sampleLine {
	t.Helper()
	path := filepath.Join("testdata", name)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data = bytes.TrimSuffix(data, []byte("\n"))
	var out []sampleLine
	for i, line := range bytes.Split(data, []byte("\n")) {
		out = append(out, sampleLine{path: path, line: i + 1, data: line})
	}
	if len(out) == 0 {
		t.Fatalf("no lines in %s", path)
	}
	return out
}

type sampleLine struct {
	path string
	line int
	data []byte
}

func (s sampleLine) String() string { return s.path + ":" + strconv.Itoa(s.line) }

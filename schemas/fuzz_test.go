package schemas

import (
	"encoding/json"
	"errors"
	"testing"
)

// FuzzDecode holds the decoder to its promises on any input: no panic, and on
// success an event that satisfies every rule and says what encoding/json
// reads in the same bytes. A long-lived Decoder and a fresh one must agree,
// so nothing leaks from one record into the next.
func FuzzDecode(f *testing.F) {
	for _, name := range []string{goodFile, badFile} {
		for _, s := range sampleLines(f, name) {
			f.Add(s.data)
		}
	}
	for _, c := range ruleCases() {
		f.Add([]byte(c.in))
	}

	var long Decoder
	f.Fuzz(func(t *testing.T, data []byte) {
		if nesting(data) < maxNesting && validJSON(data) != json.Valid(data) {
			t.Fatalf("validJSON=%v, json.Valid=%v", validJSON(data), json.Valid(data))
		}

		var ev Event
		err := long.Decode(data, &ev)

		var fresh Decoder
		var ev2 Event
		err2 := fresh.Decode(data, &ev2)
		if (err == nil) != (err2 == nil) || ev != ev2 {
			t.Fatalf("reused decoder disagrees with a fresh one: %v / %v", err, err2)
		}

		if err != nil {
			if ReasonOf(err) == "" {
				t.Fatalf("error without a reason: %v", err)
			}
			// Refusing valid JSON as invalid is allowed only for what the
			// decoder refuses on purpose.
			var de *DecodeError
			if errors.As(err, &de) && de.Reason == ReasonInvalidJSON && de.Field == "" &&
				json.Valid(data) && nesting(data) <= maxNesting {
				t.Fatalf("valid JSON refused: %v", err)
			}
			if ev != (Event{}) {
				t.Fatalf("event not zero after error %v", err)
			}
			return
		}
		if err := checkInvariants(&ev); err != nil {
			t.Fatal(err)
		}
		if err := compareWithReference(data, &ev); err != nil {
			t.Fatal(err)
		}
	})
}

// nesting returns the deepest nesting of arrays and objects in JSON text, so
// the fuzz target can tell the decoder's depth limit (maxNesting) from a
// parse bug.
func nesting(data []byte) int {
	depth, deepest := 0, 0
	inString, escaped := false, false
	for _, c := range data {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			depth++
			deepest = max(deepest, depth)
		case c == ']' || c == '}':
			depth--
		}
	}
	return deepest
}

package schemas

import (
	"encoding/json"
	"strings"
	"testing"
)

// validJSON must say what encoding/json's Valid says; the fuzz target checks
// the same on random input.
func TestValidJSON(t *testing.T) {
	inputs := []string{
		``, ` `, `{}`, `[]`, `{ }`, `[ ]`, ` {"a" : [1, 2.5e-3, -0, true, false, null, "x"] } `,
		`{"a":1,}`, `[1,]`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `{1:2}`, `[1 2]`, `{"a":1}}`, `[[]`, `]`, `}`,
		`"\u00e9\ud83d\ude00\n\/"`, `"\x"`, `"\u12"`, `"\u12g4"`, "\"a\tb\"", "\"a\x7fb\"", `"abc`, `"\"`,
		`01`, `-`, `-01`, `1.`, `.5`, `1e`, `1e+`, `1E-2`, `+1`, `NaN`, `Inf`, `-Infinity`, `0x10`, `1_000`,
		`tru`, `true1`, `nul`, `nulll`, `falsey`, `{"a":true}x`, "\xef\xbb\xbf{}", `"\xff"`,
		strings.Repeat("[", 300) + strings.Repeat("]", 300),
		strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100),
	}
	for _, in := range inputs {
		if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
			t.Errorf("%q: validJSON=%v, json.Valid=%v", in, got, want)
		}
	}
	if validJSON([]byte(strings.Repeat("[", maxNesting+1) + strings.Repeat("]", maxNesting+1))) {
		t.Error("no nesting limit")
	}
}

// skipString reads eight bytes at a time; each kind of byte that ends plain
// text must stop it at every position of the word, and bytes above 0x7f
// (UTF-8) must not.
func TestSkipStringWordBoundaries(t *testing.T) {
	for _, special := range []string{`"`, `\\`, `\"`, `\u00e9`, "\x00", "\x1f", `\q`, "\x7f", "\x80", "\xff", " ", "é"} {
		for pos := 0; pos < 20; pos++ {
			for tail := 0; tail < 10; tail++ {
				in := `"` + strings.Repeat("a", pos) + special + strings.Repeat("b", tail) + `"`
				if got, want := validJSON([]byte(in)), json.Valid([]byte(in)); got != want {
					t.Errorf("%q: validJSON=%v, json.Valid=%v", in, got, want)
				}
			}
		}
	}
}

package history

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Query asks for one page of an org's history.
type Query struct {
	Outcome Outcome // "" = all
	Limit   int     // 0: DefaultLimit; at most MaxLimit
	Cursor  string  // opaque, from Page.Next; "" = the newest
}

// Page is one page of an org's history, newest window first.
type Page struct {
	Entries []Entry
	Next    string // "" when no more
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// cursorVersion leads every cursor, so that a later format can tell an
// old cursor from its own.
const cursorVersion = "h1"

// cursorOf names the position just below k. It is base64 so that callers
// treat it as opaque; it holds nothing the caller may not see (the window
// and source of an entry it was shown).
func cursorOf(k key) string {
	raw := cursorVersion + "." + strconv.FormatInt(k.end, 10) + "." + strconv.FormatInt(k.start, 10) + "." + k.source
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func parseCursor(s string) (key, bool) {
	if len(s) > 256 {
		return key{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return key{}, false
	}
	parts := strings.SplitN(string(raw), ".", 4)
	if len(parts) != 4 || parts[0] != cursorVersion || parts[3] == "" || len(parts[3]) > maxSourceLen {
		return key{}, false
	}
	end, err1 := strconv.ParseInt(parts[1], 10, 64)
	start, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return key{}, false
	}
	return key{end: end, start: start, source: parts[3]}, true
}

// ValidCursor reports whether s is a cursor Query would accept: one that a
// Page.Next returned (of any org or filter; it is a position, not a
// session). Query answers an empty page for any other.
func ValidCursor(s string) bool {
	_, ok := parseCursor(s)
	return ok
}

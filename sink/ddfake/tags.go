package ddfake

import (
	"slices"
	"strings"
	"unicode"
)

// NormalizeTag applies Datadog's documented tag rules ("Getting Started with
// Tags", Define tags): lower-case; letters, digits, '_', '-', ':', '.', '/'
// kept and anything else turned into '_'; must start with a letter; at most
// 200 characters; must not end with ':'. Where the page does not say how a
// rule is enforced, leading non-letters and trailing colons are removed. It
// returns "" when nothing usable is left. A tag t is already normal when
// NormalizeTag(t) == t.
func NormalizeTag(tag string) string {
	var b strings.Builder
	b.Grow(len(tag))
	n := 0
	for _, r := range tag {
		if n == 0 && !unicode.IsLetter(r) {
			continue // must start with a letter
		}
		if n == MaxTagLength {
			break
		}
		r = unicode.ToLower(r)
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !strings.ContainsRune("_-:./", r) {
			r = '_'
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimRight(b.String(), ":")
}

// normalizeTags normalises, drops empties, sorts and de-duplicates, because
// Datadog identifies a series by its tag set. It also returns the submitted
// tags that were not already normal.
func normalizeTags(tags []string) (norm, bad []string) {
	norm = make([]string, 0, len(tags))
	for _, t := range tags {
		n := NormalizeTag(t)
		if n != t {
			bad = append(bad, t)
		}
		if n != "" {
			norm = append(norm, n)
		}
	}
	slices.Sort(norm)
	return slices.Compact(norm), bad
}

// splitDDTags splits a logs ddtags value ("env:prod,version:5.1").
func splitDDTags(s string) []string {
	var out []string
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

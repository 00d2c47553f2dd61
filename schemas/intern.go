package schemas

// internTable shares the strings that repeat across records (tenant, model,
// provider, gateway, error codes), so that a steady stream of records
// allocates none of them. It is bounded, and emptied when full rather than
// evicting one by one: a burst of distinct values then costs one rebuild,
// and the common values come back at once.
type internTable struct {
	m map[string]string
}

const (
	maxInterned   = 1024
	maxInternSize = 128 // longer values are rarely repeated; copy them instead
)

// lookup returns the shared copy of s, making one if there is room. It
// reports false for values too long to intern.
func (t *internTable) lookup(s []byte) (string, bool) {
	if len(s) > maxInternSize {
		return "", false
	}
	if is, ok := t.m[string(s)]; ok { // no allocation: the compiler sees the key is not kept
		return is, true
	}
	if t.m == nil {
		t.m = make(map[string]string, 64)
	} else if len(t.m) >= maxInterned {
		clear(t.m)
	}
	is := string(s)
	t.m[is] = is
	return is, true
}

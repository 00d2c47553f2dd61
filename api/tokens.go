package api

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"

	"gopkg.in/yaml.v3"
)

// Role is what a token may do.
type Role string

const (
	// Admin reads and writes every org.
	Admin Role = "admin"
	// Owner reads and writes one org.
	Owner Role = "owner"
	// Viewer reads one org.
	Viewer Role = "viewer"
)

// Token is one entry of the tokens file: the token itself is never stored,
// only its SHA-256.
type Token struct {
	Name  string `yaml:"name" json:"name"`
	Hash  string `yaml:"sha256" json:"-"`
	Role  Role   `yaml:"role" json:"role"`
	OrgID string `yaml:"org_id" json:"org_id,omitempty"`
	sum   [sha256.Size]byte
}

// sees reports whether the token may know of an org's integrations.
func (t *Token) sees(org string) bool { return t.Role == Admin || t.OrgID == org }

// writes reports whether the token may change an org's integrations.
func (t *Token) writes(org string) bool { return t.Role != Viewer && t.sees(org) }

// Tokens is the current set of tokens; Reload swaps it whole.
type Tokens struct {
	set  atomic.Pointer[[]Token]
	path string
	sum  [sha256.Size]byte
}

// LoadTokens reads a tokens file (YAML or JSON):
//
//	tokens:
//	  - {name: ops, sha256: <hex>, role: admin}
//	  - {name: acme, sha256: <hex>, role: owner, org_id: org_acme}
//
// Errors name the entry and the field.
func LoadTokens(path string) (*Tokens, error) {
	t := &Tokens{path: path}
	if _, err := t.Reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Reload reads the file again; changed is false when its content is the
// same. On an error the previous set stays in force.
func (t *Tokens) Reload() (changed bool, err error) {
	data, err := os.ReadFile(t.path)
	if err != nil {
		return false, fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	sum := sha256.Sum256(data)
	if t.set.Load() != nil && sum == t.sum {
		return false, nil
	}
	list, err := parseTokens(data)
	if err != nil {
		return false, fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	t.set.Store(&list)
	t.sum = sum
	return true, nil
}

func parseTokens(data []byte) ([]Token, error) {
	var doc struct {
		Tokens []Token `yaml:"tokens"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("not a tokens file (want `tokens:` with name, sha256, role, org_id): %v", scrub(err))
	}
	names := map[string]bool{}
	for i := range doc.Tokens {
		tk := &doc.Tokens[i]
		at := fmt.Sprintf("tokens[%d]", i)
		if tk.Name == "" {
			return nil, fmt.Errorf("%s.name: required", at)
		}
		if names[tk.Name] {
			return nil, fmt.Errorf("%s.name: %q given twice", at, tk.Name)
		}
		names[tk.Name] = true
		raw, err := hex.DecodeString(strings.TrimSpace(tk.Hash))
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("%s (%s).sha256: want the 64 hex digits of the token's SHA-256 (printf %%s \"$TOKEN\" | sha256sum)", at, tk.Name)
		}
		copy(tk.sum[:], raw)
		switch tk.Role {
		case Admin:
			if tk.OrgID != "" {
				return nil, fmt.Errorf("%s (%s).org_id: an admin token sees every org; leave org_id out", at, tk.Name)
			}
		case Owner, Viewer:
			if tk.OrgID == "" {
				return nil, fmt.Errorf("%s (%s).org_id: required for role %s", at, tk.Name, tk.Role)
			}
		default:
			return nil, fmt.Errorf("%s (%s).role: want admin, owner or viewer, got %q", at, tk.Name, tk.Role)
		}
	}
	return doc.Tokens, nil
}

// scrub keeps a YAML error's position and drops the text it quotes: a
// token pasted in clear by mistake (as a value, or as a field name when its
// colon is missing) must not reach a log. Quoted values are cut, and any
// run of 16 or more letters and digits left is replaced by its length.
func scrub(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "`"); i >= 0 {
		msg = msg[:i] + "(value not shown)"
	}
	var b strings.Builder
	run := 0
	flush := func(end int) {
		if run >= 16 {
			fmt.Fprintf(&b, "<%d characters>", run)
		} else {
			b.WriteString(msg[end-run : end])
		}
		run = 0
	}
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' {
			run++
			continue
		}
		flush(i)
		b.WriteByte(c)
	}
	flush(len(msg))
	return b.String()
}

// lookup finds the token whose SHA-256 matches. Every entry is compared, in
// constant time, so that the time taken tells nothing of which one matched.
func (t *Tokens) lookup(token string) (Token, bool) {
	if token == "" {
		return Token{}, false
	}
	sum := sha256.Sum256([]byte(token))
	var found Token
	match := 0
	for _, tk := range *t.set.Load() {
		if subtle.ConstantTimeCompare(sum[:], tk.sum[:]) == 1 {
			found, match = tk, 1
		}
	}
	return found, match == 1
}

// errNoToken is the answer to a request without a usable token.
var errNoToken = errors.New("a bearer token is required")

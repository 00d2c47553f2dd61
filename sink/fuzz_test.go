package sink

import (
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"
)

// keyValue finds key values in a tenants file as a user writes them, YAML or
// JSON; only long ones, which no error text can contain by chance.
var keyValue = regexp.MustCompile(`(?:api_key|app_key)"?\s*:\s*"?([A-Za-z0-9]{16,})`)

// FuzzParseTenants: whatever the file, parsing neither panics nor puts a key
// in its error, and what it accepts is a usable tenant list.
func FuzzParseTenants(f *testing.F) {
	example, err := os.ReadFile("testdata/tenants.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte(`{"tenants":[{"id":"org_a","site":"EU1","api_key":"0123456789abcdef0123456789abcdef","sync_interval":"1m"}]}`))
	f.Add([]byte("tenants:\n- id: org_a\n  api_key: 0123456789abcdef0123456789abcdef\n  app_key: fedcba9876543210fedcba9876543210fedcba98\n  site: nowhere\n"))
	f.Add([]byte("tenants:\n- id: org_a\n  api_key: [0123456789abcdef0123456789abcdef]\n"))
	f.Add([]byte("tenants: []\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := parseTenants(data)
		if err != nil {
			for _, m := range keyValue.FindAllSubmatch(data, -1) {
				if strings.Contains(err.Error(), string(m[1])) {
					t.Fatalf("error shows a key: %v", err)
				}
			}
			return
		}
		seen := map[string]bool{}
		for _, tn := range ts {
			if tn.ID == "" || seen[tn.ID] || tn.APIKey == "" || tn.SyncInterval <= 0 {
				t.Fatalf("accepted an unusable tenant: id %q, key set %v, interval %v", tn.ID, tn.APIKey != "", tn.SyncInterval)
			}
			seen[tn.ID] = true
			if !tn.Site.known() {
				t.Fatalf("accepted unknown site %q", tn.Site)
			}
		}
	})
}

// FuzzServerWait: any Retry-After or X-RateLimit-Reset value gives a wait
// between zero and the cap, without panicking.
func FuzzServerWait(f *testing.F) {
	for _, v := range []string{"", "5", "0.5", "-3", "1e400", "NaN", "Inf", "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 27 Nov 2026 09:00:00 GMT", "x"} {
		f.Add(429, v, v)
	}
	now := time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, status int, retryAfter, reset string) {
		h := http.Header{}
		h.Set("Retry-After", retryAfter)
		h.Set("X-RateLimit-Reset", reset)
		if w := serverWait(status, h, now); w < 0 || w > maxServerWait {
			t.Fatalf("Retry-After %q, X-RateLimit-Reset %q: wait %v", retryAfter, reset, w)
		}
	})
}

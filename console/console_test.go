package console

import (
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target string, header http.Header) *http.Response {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// assets lists the embedded files by their path below assets/.
func assets(t *testing.T) map[string]string {
	t.Helper()
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, p)
		out[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Every answer, the errors included, carries the security headers: a
// page that is not the console (a 404) must not be frameable either.
func TestSecurityHeadersOnEveryAnswer(t *testing.T) {
	h := Handler()
	cases := []struct {
		method, target string
		status         int
	}{
		{"GET", "/ui/", 200},
		{"GET", "/ui/index.html", 200},
		{"GET", "/ui/js/app.js", 200},
		{"HEAD", "/ui/css/app.css", 200},
		{"GET", "/ui/integrations/dd_1234", 200}, // a client-side route
		{"GET", "/ui/js/missing.js", 404},
		{"GET", "/elsewhere", 404},
		{"GET", "/ui", 301},
		{"POST", "/ui/", 405},
	}
	want := map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"X-Frame-Options":        "DENY",
	}
	for _, c := range cases {
		res := get(t, h, c.method, c.target, nil)
		if res.StatusCode != c.status {
			t.Errorf("%s %s: status %d, want %d", c.method, c.target, res.StatusCode, c.status)
		}
		for k, v := range want {
			if got := res.Header.Get(k); got != v {
				t.Errorf("%s %s: %s = %q, want %q", c.method, c.target, k, got, v)
			}
		}
		csp := res.Header.Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s %s: Content-Security-Policy %q lacks %q", c.method, c.target, csp, d)
			}
		}
		// Inline code would need one of these; the console has none.
		for _, bad := range []string{"unsafe-inline", "unsafe-eval", "data:", "*"} {
			if strings.Contains(csp, bad) {
				t.Errorf("%s %s: Content-Security-Policy allows %q", c.method, c.target, bad)
			}
		}
	}
}

// Client-side routes get the page; a missing file does not, or a script
// tag with a typo would quietly receive HTML.
func TestRoutesAndMissingFiles(t *testing.T) {
	h := Handler()
	index := assets(t)["index.html"]
	for _, target := range []string{"/ui/", "/ui/integrations", "/ui/connect"} {
		res := get(t, h, "GET", target, nil)
		if got := body(t, res); got != index {
			t.Errorf("GET %s did not answer with index.html", target)
		}
	}
	if res := get(t, h, "GET", "/ui/../console.go", nil); res.StatusCode != 404 {
		t.Errorf("a path out of the assets answered %d", res.StatusCode)
	}
	if res := get(t, h, "GET", "/ui", nil); res.Header.Get("Location") != "/ui/" {
		t.Errorf("/ui redirects to %q, want /ui/", res.Header.Get("Location"))
	}
}

// contentTypes is what each kind of asset must be served as. A new kind of
// file fails the test until it is added here and to ContentType: with
// nosniff, a wrong type stops a script or a style sheet.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

func TestEveryAssetServedWithItsType(t *testing.T) {
	h := Handler()
	files := assets(t)
	if len(files) < 5 {
		t.Fatalf("only %d embedded files: %v", len(files), files)
	}
	for p, content := range files {
		want, ok := contentTypes[path.Ext(p)]
		if !ok {
			t.Errorf("%s: no Content-Type decided for %q files", p, path.Ext(p))
			continue
		}
		res := get(t, h, "GET", "/ui/"+p, nil)
		if res.StatusCode != 200 {
			t.Errorf("GET /ui/%s: %d", p, res.StatusCode)
			continue
		}
		if got := res.Header.Get("Content-Type"); got != want {
			t.Errorf("GET /ui/%s: Content-Type %q, want %q", p, got, want)
		}
		if got := body(t, res); got != content {
			t.Errorf("GET /ui/%s: body differs from the embedded file", p)
		}
		etag := res.Header.Get("ETag")
		if etag == "" || res.Header.Get("Cache-Control") != "no-cache" {
			t.Errorf("GET /ui/%s: ETag %q, Cache-Control %q", p, etag, res.Header.Get("Cache-Control"))
			continue
		}
		again := get(t, h, "GET", "/ui/"+p, http.Header{"If-None-Match": {etag}})
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("GET /ui/%s with its ETag: %d, want 304", p, again.StatusCode)
		}
	}
}

var (
	attrRef   = regexp.MustCompile(`\b(?:src|href)\s*=\s*"([^"]*)"`)
	cssURL    = regexp.MustCompile(`url\(\s*["']?([^"')]+)["']?\s*\)`)
	jsImport  = regexp.MustCompile(`(?m)^\s*import\s[^'"]*['"]([^'"]+)['"]`)
	remoteURL = regexp.MustCompile(`(?i)(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}`)
)

// The console works offline and under its CSP only if everything it loads
// is one of its own files.
func TestIndexReferencesOnlyLocalAssets(t *testing.T) {
	files := assets(t)
	index := files["index.html"]
	refs := attrRef.FindAllStringSubmatch(index, -1)
	if len(refs) < 3 {
		t.Fatalf("index.html names only %d assets", len(refs))
	}
	for _, m := range refs {
		ref := m[1]
		if strings.HasPrefix(ref, "#") {
			continue // an in-page or client-side route link
		}
		rel, ok := strings.CutPrefix(ref, Prefix)
		if !ok {
			t.Errorf("index.html refers to %q, outside %s", ref, Prefix)
			continue
		}
		if _, ok := files[rel]; !ok {
			t.Errorf("index.html refers to %q, which is not embedded", ref)
		}
	}
	for p, content := range files {
		switch path.Ext(p) {
		case ".css":
			for _, m := range cssURL.FindAllStringSubmatch(content, -1) {
				if _, ok := files[path.Join(path.Dir(p), m[1])]; !ok {
					t.Errorf("%s: url(%s) is not an embedded file", p, m[1])
				}
			}
		case ".js":
			for _, m := range jsImport.FindAllStringSubmatch(content, -1) {
				if !strings.HasPrefix(m[1], "./") {
					t.Errorf("%s imports %q: only relative imports of the console's own files", p, m[1])
				} else if _, ok := files[path.Join(path.Dir(p), m[1])]; !ok {
					t.Errorf("%s imports %q, which is not embedded", p, m[1])
				}
			}
		}
		if path.Ext(p) == ".svg" {
			continue // its xmlns is a name, not a fetch
		}
		if u := remoteURL.FindString(content); u != "" {
			t.Errorf("%s names a remote address %q: the console loads nothing from outside", p, u)
		}
	}
}

// No inline code (the CSP would block it anyway, but a test says so
// before a browser does), and no way for text from the API to become
// markup or code.
func TestNoInlineCodeNorHTMLSinks(t *testing.T) {
	files := assets(t)
	inline := []*regexp.Regexp{
		regexp.MustCompile(`<script(?:\s[^>]*)?>\s*[^<\s]`), // a script with a body
		regexp.MustCompile(`<style`),
		regexp.MustCompile(`\sstyle\s*=`),
		regexp.MustCompile(`\son[a-z]+\s*=`),
		regexp.MustCompile(`javascript:`),
	}
	for _, re := range inline {
		if m := re.FindString(files["index.html"]); m != "" {
			t.Errorf("index.html has inline code or style: %q", m)
		}
	}
	sinks := regexp.MustCompile(`\b(?:innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\s*\(|new\s+Function|setAttribute\(\s*['"]style)`)
	storage := regexp.MustCompile(`\blocalStorage\s*[.\[]`)
	for p, content := range files {
		if path.Ext(p) != ".js" {
			continue
		}
		if m := sinks.FindString(content); m != "" {
			t.Errorf("%s uses %q: build nodes and set text instead", p, m)
		}
		// The token lives in sessionStorage only: gone with the tab.
		if m := storage.FindString(content); m != "" {
			t.Errorf("%s uses localStorage", p)
		}
	}
}

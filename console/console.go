// Package console is the exporter's web console: static pages, served from
// files embedded in the binary, that talk to the integrations API
// (docs/api.md) from the browser. Nothing is rendered on the server: every
// figure the console shows is fetched by the page with the user's token, so
// the console can show nothing the API would not answer to that token.
//
// The files in assets/ are what the browser gets, as they are: plain ES
// modules, one style sheet, SVG images. There is no build step and nothing
// is loaded from elsewhere, so the console works offline and under a CSP
// that allows only its own files. Working on it:
//
//   - js/app.js is the entry point (session, hash router: #/integrations,
//     #/integrations/{id}, #/connect); each view is its own module, and
//     the detail view's parts (history.js, backfill.js, dashboard.js)
//     are modules of their own.
//   - Text from the API goes into the page as text nodes (dom.js), never as
//     HTML; console_test.go refuses innerHTML and its kin.
//   - css/app.css starts with the visual system (colours, spacing, type
//     scale as CSS variables); views use the variables, not raw values.
//   - A new kind of file needs its Content-Type in ContentType and in the
//     test's table.
//   - make test-browser drives the console in headless Chromium against a
//     real exporter and saves a screenshot of each step.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"
)

// Prefix is where the console is mounted. index.html names its assets by
// absolute paths under it (a relative path would break below a client-side
// route), so the handler must be mounted here.
const Prefix = "/ui/"

// assetFS holds console/assets. A package-level variable only because
// go:embed works on nothing else; it is read-only.
//
//go:embed assets
var assetFS embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// handler serves the embedded assets. The files are read once, when the
// handler is built, so a request never touches the file system.
type handler struct {
	assets map[string]asset // by path below Prefix, "index.html", "js/app.js"
	index  asset
}

// Handler serves the console under /ui/: the embedded files by their paths,
// and index.html for /ui/ and for any other path without a file extension
// (a client-side route). Every answer carries the security headers.
func Handler() http.Handler {
	h := &handler{assets: map[string]asset{}}
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	err = fs.WalkDir(sub, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		h.assets[p] = asset{body: body, contentType: ContentType(p), etag: `"` + hex.EncodeToString(sum[:12]) + `"`}
		return nil
	})
	if err != nil {
		panic(err) // embedded files always read
	}
	h.index = h.assets["index.html"]
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	setSecurityHeaders(w.Header())
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		if r.URL.Path+"/" == Prefix {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		http.NotFound(w, r)
		return
	}
	rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
	a, found := h.assets[rel]
	switch {
	case found:
	case rel == "." || rel == "" || path.Ext(rel) == "":
		// A client-side route: the page itself decides what to show.
		a = h.index
	default:
		// A missing file must not answer with the page: a script tag
		// would otherwise run HTML and hide the mistake.
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.contentType)
	w.Header().Set("ETag", a.etag)
	// no-cache is "revalidate every time", not "never store": the ETag
	// makes the revalidation cheap, and a new binary's files show at once
	// even though their names carry no hash.
	w.Header().Set("Cache-Control", "no-cache")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

package console

import (
	"net/http"
	"path"
	"strings"
)

// contentSecurityPolicy allows the page nothing but its own origin: scripts
// and styles only from files (no inline code, no eval), fetches only to the
// API beside it, no frames of it anywhere, no plugins, and forms and <base>
// that cannot point elsewhere. An injected script or a tampered asset link
// therefore has nowhere to load from and nowhere to send a token to.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; " +
	"frame-ancestors 'none'"

// setSecurityHeaders sets the headers every console answer carries, errors
// included.
func setSecurityHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	// Older browsers ignore frame-ancestors; X-Frame-Options covers them.
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()")
}

// ContentType is the Content-Type the console serves a file name with. It is
// a fixed table rather than mime.TypeByExtension, whose answers depend on
// the host's mime.types files: with nosniff, a wrong type for a script
// stops the page.
func ContentType(name string) string {
	switch strings.ToLower(path.Ext(name)) {
	case ".html":
		return "text/html; charset=utf-8"
	case ".js", ".mjs":
		return "text/javascript; charset=utf-8"
	case ".css":
		return "text/css; charset=utf-8"
	case ".svg":
		return "image/svg+xml"
	case ".png":
		return "image/png"
	case ".ico":
		return "image/x-icon"
	case ".json":
		return "application/json"
	case ".txt":
		return "text/plain; charset=utf-8"
	case ".woff2":
		return "font/woff2"
	}
	return "application/octet-stream"
}

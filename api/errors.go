package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// apiError is an answer that is not a success: its status, a stable code
// that scripts test, the field at fault when there is one, and a message for
// people. It never carries a key.
type apiError struct {
	status  int
	Code    string `json:"code"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
	// Verdicts, for keys_rejected: what Datadog said of each key.
	Verdicts any `json:"verdicts,omitempty"`
	// retryAfter, for rate_limited.
	retryAfter time.Duration
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func fail(status int, code, field, format string, args ...any) *apiError {
	return &apiError{status: status, Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func badField(field, format string, args ...any) *apiError {
	return fail(http.StatusBadRequest, "invalid_field", field, field+": "+format, args...)
}

var (
	errNotFound     = fail(http.StatusNotFound, "not_found", "", "no such integration")
	errUnauthorized = fail(http.StatusUnauthorized, "unauthorized", "", "send Authorization: Bearer <token> with a token of the tokens file")
	errForbidden    = fail(http.StatusForbidden, "forbidden", "", "this token's role may not change integrations")
	errNotReady     = fail(http.StatusServiceUnavailable, "not_ready", "", "this replica has not read the integrations topic yet; try again in a few seconds")
)

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		// Not an answer we planned: say so without its text, which might
		// come from anywhere.
		ae = fail(http.StatusInternalServerError, "internal", "", "the exporter could not complete the request; see its log")
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="prism-exporter"`)
	}
	if ae.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int((ae.retryAfter+time.Second-1)/time.Second)))
	}
	writeJSON(w, ae.status, map[string]any{"error": ae})
}

// maxBody bounds every request body.
const maxBody = 64 << 10

// decode reads one JSON object into v, strictly: unknown fields, wrong
// types, trailing data and bodies over 64 KiB are refused, naming the field.
func decode(w http.ResponseWriter, r *http.Request, v any) *apiError {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return fail(http.StatusUnsupportedMediaType, "unsupported_media_type", "", "send the body as application/json")
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "invalid_json", "", "the body must be one JSON object")
	}
	return nil
}

func decodeError(err error) *apiError {
	var (
		mbe *http.MaxBytesError
		ute *json.UnmarshalTypeError
		se  *json.SyntaxError
	)
	switch {
	case errors.As(err, &mbe):
		return fail(http.StatusRequestEntityTooLarge, "body_too_large", "", "the body is over %d KiB", maxBody>>10)
	case errors.As(err, &ute):
		field := ute.Field
		if field == "" {
			return fail(http.StatusBadRequest, "invalid_json", "", "the body must be a JSON object, got %s", ute.Value)
		}
		return badField(field, "must be %s, got %s", jsonKind(ute.Type.Kind().String()), ute.Value)
	case errors.As(err, &se):
		return fail(http.StatusBadRequest, "invalid_json", "", "not valid JSON at byte %d", se.Offset)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		if len(field) > 64 {
			field = field[:64]
		}
		return fail(http.StatusBadRequest, "unknown_field", field, "unknown field %q", field)
	case errors.Is(err, io.EOF):
		return fail(http.StatusBadRequest, "invalid_json", "", "the body is empty: send a JSON object")
	}
	return fail(http.StatusBadRequest, "invalid_json", "", "the body is not valid JSON")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "struct", "map":
		return "an object"
	case "slice":
		return "a list"
	case "ptr":
		return "an object"
	}
	return "a number"
}

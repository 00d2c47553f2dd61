package ddfake

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// answer is what a handler wants written; serveHTTP adds the rate-limit
// headers and records it, so every answer goes through one place.
type answer struct {
	status int
	body   []byte
	header http.Header
}

// errorStyle picks the error body shape, which differs per API family.
type errorStyle int

const (
	// apiErrors is APIErrorResponse: {"errors":["Forbidden"]}.
	apiErrors errorStyle = iota
	// logsErrors is HTTPLogErrors:
	// {"errors":[{"status":"403","title":"Forbidden","detail":"..."}]}.
	logsErrors
)

type httpLogError struct {
	Status string `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
}

func errorAnswer(style errorStyle, status int, detail string) answer {
	var body []byte
	if style == logsErrors {
		body, _ = json.Marshal(map[string][]httpLogError{"errors": {{
			Status: strconv.Itoa(status),
			Title:  http.StatusText(status),
			Detail: detail,
		}}})
	} else {
		body, _ = json.Marshal(map[string][]string{"errors": {detail}})
	}
	return answer{status: status, body: body}
}

func jsonAnswer(status int, body string) answer {
	return answer{status: status, body: []byte(body)}
}

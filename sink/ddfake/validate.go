package ddfake

import "net/http"

// handleValidate is GET /api/v1/validate ("Validate API key"). Keys were
// checked by authenticate; an invalid key never gets here.
func (s *Server) handleValidate(*http.Request, string, *reqState) answer {
	return jsonAnswer(http.StatusOK, `{"valid":true}`)
}

// handleValidateKeys is GET /api/v2/validate_keys ("Validate API and
// application keys"); authenticate checked both keys and their account.
func (s *Server) handleValidateKeys(*http.Request, string, *reqState) answer {
	return jsonAnswer(http.StatusOK, `{"status":"ok"}`)
}

package api

import (
	"net/http"
	"strconv"

	"github.com/futureagi/prism-exporter/history"
)

// SyncHistory answers pages of an org's sync history; *history.Log
// implements it.
type SyncHistory interface {
	Query(org string, q history.Query) history.Page
}

// historyReady is what a SyncHistory that reads its entries at start-up
// (*history.Log) adds: until it has, a page may miss entries, and the call
// says so instead of answering a short history.
type historyReady interface {
	Ready() bool
}

var (
	errHistoryNotReady = fail(http.StatusServiceUnavailable, "not_ready", "",
		"this replica has not read the sync history topic yet; try again in a few seconds")
	errNoHistory = fail(http.StatusServiceUnavailable, "history_unavailable", "", "this exporter keeps no sync history")
)

// syncs answers GET /api/v1/integrations/{id}/syncs: the integration's
// delivered windows, newest first, a page at a time.
func (s *Server) syncs(w http.ResponseWriter, r *http.Request, tk Token) error {
	in, err := s.find(r, tk)
	if err != nil {
		return err
	}
	q, aerr := parseSyncsQuery(r)
	if aerr != nil {
		return aerr
	}
	h := s.cfg.History
	if h == nil {
		return errNoHistory
	}
	if rd, ok := h.(historyReady); ok && !rd.Ready() {
		return errHistoryNotReady
	}
	page := h.Query(in.OrgID, q)
	if page.Entries == nil {
		page.Entries = []history.Entry{} // [] rather than null
	}
	writeJSON(w, http.StatusOK, map[string]any{"syncs": page.Entries, "next_cursor": page.Next})
	return nil
}

func parseSyncsQuery(r *http.Request) (history.Query, *apiError) {
	v := r.URL.Query()
	q := history.Query{Limit: history.DefaultLimit}
	if o := v.Get("outcome"); o != "" {
		q.Outcome = history.Outcome(o)
		if !q.Outcome.Valid() {
			return q, badField("outcome", "must be one of %s, got %s", history.OutcomeChoices, quoted(o))
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > history.MaxLimit {
			return q, badField("limit", "must be a whole number from 1 to %d, got %s", history.MaxLimit, quoted(l))
		}
		q.Limit = n
	}
	if c := v.Get("cursor"); c != "" {
		if !history.ValidCursor(c) {
			return q, badField("cursor", "is not a cursor this API returned (next_cursor of a previous page)")
		}
		q.Cursor = c
	}
	return q, nil
}

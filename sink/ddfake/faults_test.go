package ddfake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestFaultStatusForCount(t *testing.T) {
	s, url := start(t)
	s.SetFault(Fault{Path: "/api/v2/series", Status: 429, Count: 2, RetryAfter: 3 * time.Second})
	body := []byte(`{"series":[]}`)
	for range 2 {
		r := post(t, url+"/api/v2/series", "api-acme", "", body)
		wantStatus(t, r, 429)
		if r.header.Get("Retry-After") != "3" || r.header.Get("X-RateLimit-Reset") != "3" || r.header.Get("X-RateLimit-Remaining") != "0" {
			t.Errorf("429 headers %v", r.header)
		}
		if r.body != `{"errors":["Too Many Requests"]}` {
			t.Errorf("body %q", r.body)
		}
	}
	// Other paths are unaffected, and the count is used up.
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", body), 202)
	if st := s.Stats(); st.Faults != 2 || st.ByStatus[429] != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestFaultStatuses(t *testing.T) {
	s, url := start(t)
	for _, code := range []int{500, 503, 408, 413, 400, 429} {
		s.SetFault(Fault{Path: "/api/v2/logs", Status: code, Count: 1})
		r := post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`))
		wantStatus(t, r, code)
		var e struct {
			Errors []struct{ Status string } `json:"errors"`
		}
		if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Errors[0].Status != fmt.Sprint(code) {
			t.Errorf("%d: logs error body %q", code, r.body)
		}
		if r.header.Get("X-RateLimit-Limit") == "" {
			t.Errorf("%d: no rate-limit headers", code)
		}
	}
	s.SetFault(Fault{Status: 503, Count: 1, RetryAfter: 2 * time.Second})
	r := post(t, url+"/api/v2/series", "api-acme", "", []byte(`{"series":[]}`))
	wantStatus(t, r, 503)
	if r.header.Get("Retry-After") != "2" {
		t.Errorf("503 Retry-After %q", r.header.Get("Retry-After"))
	}
	if s.LogCount("acme") != 0 {
		t.Error("a faulted request was stored")
	}
}

func TestFaultDropConnection(t *testing.T) {
	s, url := start(t)
	s.SetFault(Fault{Drop: true, Count: 1})
	if _, err := do(t, http.MethodPost, url+"/api/v2/logs", []byte(`{"message":"x"}`), map[string]string{"DD-API-KEY": "api-acme"}); err == nil {
		t.Fatal("dropped request got an answer")
	}
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
	recs := s.Requests()
	if len(recs) != 2 || recs[0].Status != 0 || recs[0].Fault != "drop" || recs[0].Account != "acme" {
		t.Errorf("records %+v", recs)
	}
	if s.Stats().ByStatus[0] != 1 {
		t.Error("unanswered request not counted")
	}
}

func TestFaultDown(t *testing.T) {
	s, url := start(t)
	s.SetFault(Fault{Drop: true})
	for _, path := range []string{"/api/v2/logs", "/api/v2/series", "/api/v1/validate"} {
		if _, err := do(t, http.MethodPost, url+path, nil, nil); err == nil {
			t.Errorf("%s answered while down", path)
		}
	}
	s.ClearFaults()
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
}

func TestFaultDelay(t *testing.T) {
	s, url := start(t)
	s.SetFault(Fault{Path: "/api/v2/logs", Delay: 150 * time.Millisecond, Count: 1})
	began := time.Now()
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
	if d := time.Since(began); d < 150*time.Millisecond {
		t.Errorf("answered after %v", d)
	}
	if s.LogCount("acme") != 1 {
		t.Error("a delay-only fault must still handle the request")
	}

	// A client that gives up first gets no answer; the server notes it.
	s.SetFault(Fault{Delay: 5 * time.Second, Status: 500, Count: 1})
	client := &http.Client{Timeout: 300 * time.Millisecond}
	req, _ := http.NewRequest(http.MethodPost, url+"/api/v2/logs", strings.NewReader(`{"message":"x"}`))
	if _, err := client.Do(req); err == nil {
		t.Fatal("expected a client timeout")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs := s.Requests()
		if len(recs) == 2 && recs[1].Status == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("records %+v", recs)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFaultDelayReleasedByClose(t *testing.T) {
	s, url := start(t)
	s.SetFault(Fault{Delay: time.Minute})
	done := make(chan error, 1)
	go func() {
		_, err := do(t, http.MethodGet, url+"/api/v1/validate", nil, nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	_ = s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("expected an error after Close")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close did not release a delayed request")
	}
}

func TestFaultFor(t *testing.T) {
	s, url := start(t)
	const span = 300 * time.Millisecond
	began := time.Now()
	s.SetFault(Fault{Status: 503, For: span})
	r := post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`))
	if r.status != 503 && time.Since(began) < span {
		t.Fatalf("status %d within the fault's span", r.status)
	}
	time.Sleep(time.Until(began.Add(span + 50*time.Millisecond)))
	wantStatus(t, post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`)), 202)
}

func TestFaultProbabilityIsSeeded(t *testing.T) {
	run := func() []int {
		s := New(testAccounts(), WithSeed(42))
		defer s.Close()
		s.SetFault(Fault{Status: 500, Probability: 0.3})
		var out []int
		for range 200 {
			f, ok := s.takeFault("/api/v2/logs")
			if ok {
				out = append(out, f.Status)
			} else {
				out = append(out, 0)
			}
		}
		return out
	}
	a, b := run(), run()
	hits := 0
	for i := range a {
		if a[i] != b[i] {
			t.Fatal("same seed, different sequence")
		}
		if a[i] == 500 {
			hits++
		}
	}
	if hits < 30 || hits > 90 {
		t.Errorf("%d of 200 hit with p=0.3", hits)
	}
}

func TestRateLimitEnforced(t *testing.T) {
	clock := &fakeClock{t: testNow().Add(2 * time.Second)}
	_, url := start(t, WithClock(clock.Now), WithRateLimit(2, 10*time.Second))
	send := func() reply {
		return post(t, url+"/api/v2/logs", "api-acme", "", []byte(`{"message":"x"}`))
	}
	r := send()
	wantStatus(t, r, 202)
	h := r.header
	if h.Get("X-RateLimit-Limit") != "2" || h.Get("X-RateLimit-Period") != "10" || h.Get("X-RateLimit-Remaining") != "1" ||
		h.Get("X-RateLimit-Reset") != "8" || h.Get("X-RateLimit-Name") != "logs_intake" {
		t.Errorf("headers %v", h)
	}
	wantStatus(t, send(), 202)
	r = send()
	wantStatus(t, r, 429)
	if r.header.Get("Retry-After") != "8" {
		t.Errorf("Retry-After %q", r.header.Get("Retry-After"))
	}
	// Another account and another endpoint have their own windows.
	wantStatus(t, post(t, url+"/api/v2/series", "api-acme", "", []byte(`{"series":[]}`)), 202)
	clock.Add(8 * time.Second) // next calendar-aligned window
	wantStatus(t, send(), 202)
}

func TestConcurrentUse(t *testing.T) {
	s, url := start(t)
	now := float64(testNow().Unix())
	var wg sync.WaitGroup
	const writers, each = 6, 10
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			send := func(path, enc string, body []byte) {
				r, err := do(t, http.MethodPost, url+path, body, map[string]string{"DD-API-KEY": "api-acme", "Content-Encoding": enc})
				if err != nil || r.status != http.StatusAccepted {
					t.Errorf("%s: %v %+v", path, err, r)
				}
			}
			for i := range each {
				send("/api/v2/logs", "gzip", gzipped([]byte(`[{"message":"a"},{"message":"b"}]`)))
				body, _ := json.Marshal(seriesBody{Series: []map[string]any{series("shared", 1, []string{"env:prod"}, [2]float64{now, float64(w*each + i)})}})
				send("/api/v2/series", "", body)
			}
		}()
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Add(1)
	go func() { // read-back and fault changes while traffic flows
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = s.Logs("acme")
			_ = s.Points("acme")
			_ = s.Writes("acme")
			_ = s.Stats()
			_ = s.Requests()
			s.SetFault(Fault{Path: "/nowhere", Status: 500})
			s.ClearFaults()
			s.AddAccount(Account{Name: "other", APIKeys: []string{"api-other"}})
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()

	if n := s.LogCount("acme"); n != 2*writers*each {
		t.Errorf("logs %d", n)
	}
	pts := s.Points("acme")
	if len(pts) != 1 || s.Overwrites("acme") != writers*each-1 {
		t.Errorf("one series and timestamp: %d points, %d overwrites", len(pts), s.Overwrites("acme"))
	}
	writes := s.Writes("acme")
	if last := writes[len(writes)-1]; pts[0].Value != last.Point.Value {
		t.Errorf("stored %v, last write %v", pts[0].Value, last.Point.Value)
	}
}

package ddfake

import (
	"bytes"
	"compress/gzip"
	"compress/zlib"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
)

// testNow is a whole second, so age boundaries in seconds are exact.
func testNow() time.Time { return time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC) }

// fakeClock is a settable clock for WithClock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testAccounts() Option {
	return WithAccounts(
		Account{Name: "acme", APIKeys: []string{"api-acme"}, AppKeys: []string{"app-acme"}},
		Account{Name: "globex", APIKeys: []string{"api-globex"}, AppKeys: []string{"app-globex"}, Site: "datadoghq.eu"},
	)
}

// start runs a server on loopback with the test accounts and a fixed clock
// (unless opts set another).
func start(t *testing.T, opts ...Option) (*Server, string) {
	t.Helper()
	s := New(append([]Option{testAccounts(), WithClock(testNow)}, opts...)...)
	url, err := s.Start("")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, url
}

type reply struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, method, url string, body []byte, header map[string]string) (reply, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	client := &http.Client{Timeout: 30 * time.Second} // generous: -race on a small machine
	resp, err := client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{resp.StatusCode, resp.Header, string(b)}, nil
}

// post sends body with key and encoding ("" for none) and fails on
// transport errors.
func post(t *testing.T, url, key, enc string, body []byte) reply {
	t.Helper()
	h := map[string]string{"Content-Type": "application/json"}
	if key != "" {
		h["DD-API-KEY"] = key
	}
	if enc != "" {
		h["Content-Encoding"] = enc
	}
	r, err := do(t, http.MethodPost, url, body, h)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func wantStatus(t *testing.T, r reply, status int) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %q)", r.status, status, r.body)
	}
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func zlibbed(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := zlib.NewWriterLevel(&buf, zlib.BestSpeed)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

func zstded(b []byte) []byte {
	enc, _ := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// padJSON pads a JSON object or array with spaces before its closing
// bracket to exactly size bytes.
func padJSON(t *testing.T, b []byte, size int) []byte {
	t.Helper()
	if len(b) > size {
		t.Fatalf("payload already %d bytes > %d", len(b), size)
	}
	out := make([]byte, 0, size)
	out = append(out, b[:len(b)-1]...)
	out = append(out, strings.Repeat(" ", size-len(b))...)
	return append(out, b[len(b)-1])
}

type seriesBody struct {
	Series []map[string]any `json:"series"`
}

func series(metric string, typ int, tags []string, points ...[2]float64) map[string]any {
	ps := make([]map[string]any, len(points))
	for i, p := range points {
		ps[i] = map[string]any{"timestamp": int64(p[0]), "value": p[1]}
	}
	return map[string]any{"metric": metric, "type": typ, "tags": tags, "points": ps, "interval": 10}
}

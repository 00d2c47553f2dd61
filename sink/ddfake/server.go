package ddfake

import (
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is the fake Datadog API. Create it with New; serve it with Start or
// mount Handler in an httptest.Server. All methods are safe for concurrent use.
type Server struct {
	clock func() time.Time
	cheap bool
	// gzipReaders saves a decompressor's tables per request: at a
	// benchmark's request rate they are the stand-in's cost, not the
	// client's.
	gzipReaders sync.Pool // *gzip.Reader
	bodyBufs    sync.Pool // *bytes.Buffer, in cheap mode only (see buffer)
	limits      Limits
	rate        rateConfig

	mu       sync.Mutex // guards everything below up to faultMu
	keys     keyring
	data     map[string]*accountData // by account name
	stats    Stats
	requests []RequestRecord
	windows  map[windowKey]*window
	// boardSeq and monitorSeq number dashboards and monitors across
	// accounts, as Datadog's ids are unique.
	boardSeq, monitorSeq int64

	faultMu sync.Mutex // own lock: SetFault never waits behind request processing
	faults  []*faultState
	rng     *rand.Rand

	closeOnce sync.Once
	closed    chan struct{} // closed by Close; aborts Delay faults
	srvMu     sync.Mutex
	srv       *http.Server
}

// Option configures a Server in New.
type Option func(*Server)

// WithAccounts registers accounts (see AddAccount).
func WithAccounts(accounts ...Account) Option {
	return func(s *Server) {
		for _, a := range accounts {
			s.keys.add(a)
		}
	}
}

// WithClock sets the clock used for the age checks (logs older than 18 h,
// points outside -1 h/+10 min), record times and rate-limit windows.
func WithClock(now func() time.Time) Option {
	return func(s *Server) { s.clock = now }
}

// WithCheapMode makes the server validate keys, encodings and sizes,
// decompress and count, but store nothing: no logs, points or request
// records, only Stats. For benchmarks, where storing would measure the fake.
// Age checks and tag normalisation are skipped too.
func WithCheapMode() Option {
	return func(s *Server) { s.cheap = true }
}

// WithSeed seeds the random source used by Fault.Probability, so a flaky
// scenario replays the same way (given the same request order).
func WithSeed(seed uint64) Option {
	return func(s *Server) { s.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)) }
}

// WithLimits replaces the documented limits, for example to be stricter
// than Datadog. Zero fields keep the default.
func WithLimits(l Limits) Option {
	return func(s *Server) { s.limits = l.withDefaults() }
}

// WithRateLimit enforces limit requests per period per account and endpoint
// (fixed, calendar-aligned windows on the server clock); the excess gets 429.
func WithRateLimit(limit int, period time.Duration) Option {
	return func(s *Server) {
		if limit > 0 && period >= time.Second {
			s.rate = rateConfig{limit: limit, period: period}
		}
	}
}

// New returns a Server that is not yet listening.
func New(opts ...Option) *Server {
	s := &Server{
		clock:   time.Now,
		limits:  DefaultLimits(),
		rate:    rateConfig{limit: defaultRateLimit, period: defaultRatePeriod},
		keys:    newKeyring(),
		data:    map[string]*accountData{},
		windows: map[windowKey]*window{},
		rng:     rand.New(rand.NewPCG(1, 2)),
		closed:  make(chan struct{}),
	}
	s.stats.ByStatus = map[int]int64{}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Handler returns the server's HTTP handler, for httptest.NewServer.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Start listens on addr ("127.0.0.1:0" when empty) and serves in the
// background. Only loopback addresses are allowed: the fake accepts any
// payload and has no business being reachable from elsewhere.
func (s *Server) Start(addr string) (baseURL string, err error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", errors.New("ddfake: refusing to listen on non-loopback address " + addr)
	}
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	select {
	case <-s.closed:
		return "", errors.New("ddfake: server closed")
	default:
	}
	if s.srv != nil {
		return "", errors.New("ddfake: already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", err
	}
	s.srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) //nolint:errcheck // Serve returns ErrServerClosed on Close.
	return "http://" + ln.Addr().String(), nil
}

// Close stops listening, closes open connections and releases delayed
// answers. It is safe to call more than once and when Start was never called.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv == nil {
		return nil
	}
	err := s.srv.Close()
	s.srv = nil
	return err
}

func (s *Server) now() time.Time { return s.clock() }

// account returns the storage for an account, creating it. Callers hold s.mu.
func (s *Server) account(name string) *accountData {
	d := s.data[name]
	if d == nil {
		d = newAccountData()
		s.data[name] = d
	}
	return d
}

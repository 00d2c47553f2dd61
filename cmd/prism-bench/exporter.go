package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/futureagi/prism-exporter/sink/ddfake"
)

// exporterRun is one exporter child process and what it was given.
type exporterRun struct {
	cmd      *exec.Cmd
	pid      int
	started  time.Time // just after the process was started
	httpAddr string
	log      string // its stderr and stdout
	done     chan error
	logFile  *os.File
}

// exporterSpec is what differs between the benchmark's exporter runs.
type exporterSpec struct {
	binary   string
	name     string // for the log file
	topic    string
	dlq      string
	group    string
	tenants  string // tenants file
	ddURL    string
	lateness time.Duration
	extraEnv []string

	// httpAddr is its PRISM_HTTP_ADDR; empty: -http-addr. Two exporters
	// at once (the capacity phase's rebalance) need two.
	httpAddr string
	// logLevel is its PRISM_LOG_LEVEL; empty: warn.
	logLevel string
	// integrations and status are its PRISM_INTEGRATIONS_TOPIC and
	// PRISM_STATUS_TOPIC; empty: named after the group, so that every run
	// imports its tenants file into topics of its own and no run reads an
	// earlier run's integrations or status. Replicas of one group share them.
	integrations, status string
}

func (s exporterSpec) addr(c config) string {
	if s.httpAddr != "" {
		return s.httpAddr
	}
	return c.httpAddr
}

// writeTenants writes a tenants file: every benchmark tenant, all with the
// same window, backfill on (the pre-loaded records are older than the
// exporter's start), keys as the stand-in knows them.
func writeTenants(dir, name string, ids []string, window time.Duration) (string, error) {
	var b strings.Builder
	b.WriteString("tenants:\n")
	for _, id := range ids {
		fmt.Fprintf(&b, "  - id: %s\n    site: US1\n    api_key: %q\n    sync_interval: %s\n    backfill: true\n", id, apiKey(id), window)
	}
	path := filepath.Join(dir, name)
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

func apiKey(id string) string { return "bench-key-" + id }

func accounts(ids []string) []ddfake.Account {
	out := make([]ddfake.Account, len(ids))
	for i, id := range ids {
		out[i] = ddfake.Account{Name: id, APIKeys: []string{apiKey(id)}}
	}
	return out
}

// environ is the exporter's configuration, as harness_test.go's environ()
// gives it to a child process: PRISM_* variables, everything else default.
func (c config) environ(s exporterSpec) []string {
	integrations, status, level := s.integrations, s.status, s.logLevel
	if integrations == "" {
		integrations = s.group + ".integrations"
	}
	if status == "" {
		status = s.group + ".status"
	}
	if level == "" {
		level = "warn"
	}
	env := append(os.Environ(),
		"PRISM_KAFKA_BROKERS="+strings.Join(c.brokers, ","),
		"PRISM_KAFKA_TOPIC="+s.topic,
		"PRISM_KAFKA_GROUP="+s.group,
		"PRISM_DLQ_TOPIC="+s.dlq,
		"PRISM_CREATE_DLQ_TOPIC=false",
		"PRISM_TENANTS_FILE="+s.tenants,
		"PRISM_TENANTS_RELOAD_INTERVAL=1s",
		"PRISM_DATADOG_URL="+s.ddURL,
		"PRISM_DATADOG_TIMEOUT=10s",
		"PRISM_ALLOWED_LATENESS="+s.lateness.String(),
		// Each run its own partials topic, as its own integrations topic:
		// a combiner rebuilds the last hour of the topic it reads, and the
		// runs share tenant ids.
		"PRISM_PARTIALS_TOPIC="+s.topic+".partials",
		"PRISM_DRAIN_TIMEOUT=5s",
		"PRISM_INTEGRATIONS_TOPIC="+integrations,
		"PRISM_STATUS_TOPIC="+status,
		"PRISM_HTTP_ADDR="+s.addr(c),
		"PRISM_LOG_LEVEL="+level,
	)
	return append(env, s.extraEnv...)
}

// startExporter starts the exporter child and waits until it is a member of
// the group (/readyz), or fails saying where its log is.
func startExporter(c config, s exporterSpec) (*exporterRun, error) {
	addr, err := pickAddr(s.addr(c))
	if err != nil {
		return nil, err
	}
	s.httpAddr = addr
	logPath := filepath.Join(c.out, s.name+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.binary)
	cmd.Env = c.environ(s)
	cmd.Stdout, cmd.Stderr = lf, lf
	// If the benchmark dies, its exporter must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = lf.Close()
		return nil, fmt.Errorf("starting %s: %w (build it with go build -o %s ./cmd/prism-exporter)", s.binary, err, s.binary)
	}
	er := &exporterRun{cmd: cmd, pid: cmd.Process.Pid, started: time.Now(), httpAddr: addr, log: logPath, done: make(chan error, 1), logFile: lf}
	go func() { er.done <- cmd.Wait() }()
	return er, nil
}

// pickAddr is addr when nothing listens there, or else a free loopback port:
// a test running at the same time may hold a fixed port for a moment (the
// kernel hands out ports in this range as ephemeral ones), and the
// benchmark would fail for nothing. Whatever held it is not measured: the
// exporter is reached at the address returned.
func pickAddr(addr string) (string, error) {
	if portFree(addr) == nil {
		return addr, nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("%s is in use and no other loopback port is free: %w", addr, err)
	}
	defer ln.Close()
	fmt.Fprintf(os.Stderr, "prism-bench: %s is in use; using %s instead\n", addr, ln.Addr())
	return ln.Addr().String(), nil
}

// waitReady polls /readyz until the exporter has joined the group.
func (er *exporterRun) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+er.httpAddr+"/readyz", nil)
		if resp, err := hc.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case err := <-er.done:
			er.done <- err
			return fmt.Errorf("the exporter exited before joining the group (%v); see %s", err, er.log)
		case <-ctx.Done():
			return fmt.Errorf("the exporter did not join the consumer group within %s; see %s", timeout, er.log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// exited reports the child's exit, if it has exited.
func (er *exporterRun) exited() (error, bool) {
	select {
	case err := <-er.done:
		er.done <- err
		return err, true
	default:
		return nil, false
	}
}

// stop asks the exporter to stop (SIGTERM: it drains and commits) and kills
// it when it does not within the timeout.
func (er *exporterRun) stop(timeout time.Duration) error {
	defer er.logFile.Close()
	if _, ok := er.exited(); !ok {
		_ = er.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case err := <-er.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("the exporter exited with %v; see %s", err, er.log)
		}
		return err
	case <-time.After(timeout):
		_ = er.cmd.Process.Kill()
		<-er.done
		return fmt.Errorf("the exporter did not stop within %s of SIGTERM and was killed; see %s", timeout, er.log)
	}
}

// procStat is a process's CPU time and memory, from /proc.
type procStat struct {
	CPU   time.Duration
	HWM   int64 // peak RSS, bytes
	RSS   int64
	Alive bool
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every
// Linux architecture Go supports (the kernel fixes it for user space).
const clockTicks = 100

func readProc(pid int) (procStat, error) {
	var ps procStat
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ps, err
	}
	// The command name is in parentheses and may hold spaces: the fields
	// that follow start after the last ')'. utime and stime are fields 14
	// and 15 of proc(5), so 12th and 13th after the name.
	s := string(stat)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return ps, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ut, err1 := strconv.ParseInt(fields[11], 10, 64)
	st, err2 := strconv.ParseInt(fields[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return ps, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	ps.CPU = time.Duration(ut+st) * time.Second / clockTicks
	ps.Alive = true
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return ps, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmHWM" && k != "VmRSS") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			continue
		}
		if k == "VmHWM" {
			ps.HWM = kb << 10
		} else {
			ps.RSS = kb << 10
		}
	}
	return ps, sc.Err()
}

// cpuOf is a process's CPU time so far, 0 when it cannot be read (no pid
// given, or the process is gone): the broker's CPU is context, not a result.
func cpuOf(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	ps, err := readProc(pid)
	if err != nil {
		return 0
	}
	return ps.CPU
}

// selfCPU is this process's CPU time so far (the Datadog stand-in, the
// producers and the polling).
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// scrape reads the exporter's /metrics and sums each metric over its labels.
func scrape(ctx context.Context, addr string) (map[string]float64, error) {
	series, err := scrapeSeries(ctx, addr)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for k, v := range series {
		out[metricName(k)] += v
	}
	return out, nil
}

// scrapeSeries reads the exporter's /metrics, one value per series, keyed
// as the exposition writes it: name{label="value",...}.
func scrapeSeries(ctx context.Context, addr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scraping the exporter's /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scraping the exporter's /metrics: %s", resp.Status)
	}
	return parseExposition(resp.Body)
}

func parseExposition(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		out[line[:sp]] += v
	}
	return out, sc.Err()
}

func metricName(series string) string {
	if i := strings.IndexByte(series, '{'); i >= 0 {
		return series[:i]
	}
	return series
}

// sumWhere sums the series of metric name whose labels include every one of
// labels (each written as the exposition does: key="value").
func sumWhere(series map[string]float64, name string, labels ...string) float64 {
	var sum float64
next:
	for k, v := range series {
		if metricName(k) != name {
			continue
		}
		ls := k[len(name):]
		for _, l := range labels {
			if !strings.Contains(ls, "{"+l+",") && !strings.Contains(ls, "{"+l+"}") &&
				!strings.Contains(ls, ","+l+",") && !strings.Contains(ls, ","+l+"}") {
				continue next
			}
		}
		sum += v
	}
	return sum
}

// standIn hosts the Datadog stand-ins on one loopback listener: logs go to
// logs, everything else (key validation, series) to rest. The freshness run
// uses a cheap logs server and a recording one for series, so that storing
// every log (which would cost more than the exporter) is not needed to see
// when each window's points arrived.
type standIn struct {
	srv *http.Server
	url string
}

func startStandIn(logs, rest *ddfake.Server, errLog io.Writer) (*standIn, error) {
	mux := http.NewServeMux()
	mux.Handle("/api/v2/logs", logs.Handler())
	mux.Handle("/", rest.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Generous timeouts: the Go client pre-dials connections it may park
	// unused, and a server that drops them after ReadHeaderTimeout (ddfake's
	// Start uses 10 s) makes the next burst of POSTs fail once and be
	// retried, which with 10 s windows lands on every window's delivery and
	// would be measured as the exporter's latency.
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 2 * time.Minute, IdleTimeout: 5 * time.Minute, ErrorLog: log.New(errLog, "stand-in: ", log.LstdFlags|log.Lmicroseconds)}
	go func() { _ = srv.Serve(ln) }()
	return &standIn{srv: srv, url: "http://" + ln.Addr().String()}, nil
}

func (s *standIn) close() { _ = s.srv.Close() }

// Package deployments holds the tests of everything that deploys the
// exporter: the Kubernetes manifests, docker-compose.yml, the image build
// and the alert rules. It is its own module so that the exporter's module
// does not depend on Kubernetes, Compose and Prometheus server code.
//
// The tests learn what the exporter reads and serves from the exporter
// itself: TestMain builds it the way the image does (build.sh), asks it for
// its variables (config --json), and runs it in demo mode to probe its
// endpoints and scrape its metrics.
package deployments

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// repoRoot is the exporter's repository, seen from this package.
const repoRoot = ".."

// testVersion is what the test build is stamped with.
const testVersion = "v0.0.0-deploytest"

// envVar is one entry of `prism-exporter config --json`.
type envVar struct {
	Name     string `json:"name"`
	Default  string `json:"default"`
	Required bool   `json:"required"`
	Meaning  string `json:"meaning"`
	Type     string `json:"type"`
}

// exporter is the exporter as the tests found it: built once, asked once,
// running in demo mode while the tests run.
type exporter struct {
	bin     string
	vars    map[string]envVar
	addr    string   // the demo's HTTP address (host:port)
	scrapes []scrape // two scrapes of /metrics after traffic flowed
}

type scrape struct {
	at   time.Time
	body []byte
}

// running is the exporter TestMain started. It is package state because
// TestMain is the only place that can share one build and one running demo
// between the tests; nothing else is kept at package level.
var running *exporter

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "prism-deploytest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		ex, stop, err := startExporter(dir)
		if err != nil {
			fmt.Fprintln(os.Stderr, "deployments: ", err)
			return 1
		}
		defer stop()
		running = ex
		return m.Run()
	}()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// startExporter builds the exporter with build.sh, reads its variables, and
// starts it in demo mode until the demo has committed offsets and
// dead-lettered records, so that every metric an alert may name is there.
func startExporter(dir string) (*exporter, func(), error) {
	build := exec.Command("sh", "deployments/build.sh", dir, testVersion)
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("deployments/build.sh: %v\n%s", err, out)
	}
	ex := &exporter{bin: filepath.Join(dir, "prism-exporter"), vars: map[string]envVar{}}

	out, err := exec.Command(ex.bin, "config", "--json").Output()
	if err != nil {
		return nil, nil, fmt.Errorf("prism-exporter config --json: %w", err)
	}
	var vars []envVar
	if err := json.Unmarshal(out, &vars); err != nil {
		return nil, nil, fmt.Errorf("prism-exporter config --json: %w", err)
	}
	for _, v := range vars {
		ex.vars[v.Name] = v
	}

	ctx, cancel := context.WithTimeout(context.Background(), 16*time.Minute)
	// A malformed record every 50, so that dead letters are counted too.
	demo := exec.CommandContext(ctx, ex.bin, "demo", "-duration", "15m", "-rate", "2000", "-malformed-every", "50", "-screen", "2s")
	demo.Env = demoEnv()
	demo.Cancel = func() error { return demo.Process.Signal(syscall.SIGTERM) }
	demo.WaitDelay = 20 * time.Second
	logf, err := os.Create(filepath.Join(dir, "demo.log"))
	if err != nil {
		cancel()
		return nil, nil, err
	}
	demo.Stderr = logf
	stdout, err := demo.StdoutPipe()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if err := demo.Start(); err != nil {
		cancel()
		return nil, nil, err
	}
	stop := func() {
		cancel()
		_ = demo.Wait()
		_ = logf.Close()
	}
	addr := make(chan string, 1)
	go func() {
		// The demo prints "metrics and status: http://ADDR/metrics ..." once
		// it serves; the rest of its screen goes to the log.
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logf, line)
			if rest, ok := strings.CutPrefix(line, "metrics and status: http://"); ok {
				a, _, _ := strings.Cut(rest, "/")
				select {
				case addr <- a:
				default:
				}
			}
		}
	}()
	select {
	case ex.addr = <-addr:
	case <-time.After(90 * time.Second):
		stop()
		return nil, nil, fmt.Errorf("the demo printed no metrics address in 90s:\n%s", tail(logf.Name()))
	}
	if err := ex.waitForTraffic(ctx); err != nil {
		stop()
		return nil, nil, fmt.Errorf("%w:\n%s", err, tail(logf.Name()))
	}
	return ex, stop, nil
}

// tail is the end of a log, for a failure message (the directory holding it
// is removed when the tests end).
func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 4000 {
		data = data[len(data)-4000:]
	}
	return string(data)
}

// demoEnv is the environment without anything that would send the demo's
// traffic to a real Datadog account or configure it from outside.
func demoEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name == "DD_API_KEY" || name == "DD_SITE" || strings.HasPrefix(name, "PRISM_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitForTraffic waits until the demo is ready, has committed and has
// dead-lettered, then keeps two scrapes ten seconds apart.
func (ex *exporter) waitForTraffic(ctx context.Context) error {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		body, err := ex.get(ctx, "/metrics")
		if err == nil && ex.status(ctx, "/readyz") == http.StatusOK &&
			strings.Contains(string(body), `prism_exporter_commits_total{result="ok"}`) &&
			strings.Contains(string(body), "prism_exporter_dead_letters_total{") {
			ex.scrapes = append(ex.scrapes, scrape{at: time.Now(), body: body})
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the demo did not commit and dead-letter within 3 minutes (last scrape error: %v)", err)
		}
		time.Sleep(time.Second)
	}
	time.Sleep(10 * time.Second)
	body, err := ex.get(ctx, "/metrics")
	if err != nil {
		return err
	}
	ex.scrapes = append(ex.scrapes, scrape{at: time.Now(), body: body})
	return nil
}

func (ex *exporter) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ex.addr+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, err
}

// status is the exporter's answer to GET path, or 0 when it gave none.
func (ex *exporter) status(ctx context.Context, path string) int {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+ex.addr+path, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}

// fixture is the running exporter, for a test.
func fixture(t *testing.T) *exporter {
	t.Helper()
	if running == nil {
		t.Fatal("the exporter was not started (TestMain)")
	}
	return running
}

// defaultOf is the value the exporter uses for name when it is not set.
func (ex *exporter) defaultOf(t *testing.T, name string) string {
	t.Helper()
	v, ok := ex.vars[name]
	if !ok {
		t.Fatalf("the exporter has no variable %s", name)
	}
	return v.Default
}

package main

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/futureagi/prism-exporter/schemas"
	"github.com/futureagi/prism-exporter/schemas/gen"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
)

// exporterBinary builds the exporter once per test run (the build cache makes
// it quick), so fault tests can kill -9 a real process.
func exporterBinary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "prism-exporter-test-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "prism-exporter")
		out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binary
}

// member is one exporter process.
type member struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	done chan error
	log  string
	http string
}

// lateCounts reads the member's counts of late and replayed records from
// its /metrics, for a checker that finds a window short.
func (m *member) lateCounts() string {
	resp, err := http.Get("http://" + m.http + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(body), "\n") {
		if strings.HasPrefix(line, "prism_exporter_late_records_total") || strings.HasPrefix(line, "prism_exporter_records_consumed_total") ||
			strings.HasPrefix(line, "prism_exporter_fetch_pauses_total") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "; ")
}

func (e *env) startMember(name string, extraEnv ...string) *member {
	e.t.Helper()
	bin := exporterBinary(e.t)
	dir := e.t.TempDir()
	if keep := os.Getenv("PRISM_TEST_LOG_DIR"); keep != "" {
		dir = keep
	}
	logPath := filepath.Join(dir, e.group+"-"+name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	// A known port, so the test can read the member's own metrics.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	httpAddr := ln.Addr().String()
	_ = ln.Close()
	cmd := exec.Command(bin)
	cmd.Env = append(append(e.environ(), "PRISM_HTTP_ADDR="+httpAddr), extraEnv...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	m := &member{t: e.t, name: name, cmd: cmd, done: make(chan error, 1), log: logPath, http: httpAddr}
	e.members = append(e.members, m)
	go func() { m.done <- cmd.Wait(); _ = f.Close() }()
	e.t.Cleanup(func() { m.kill() })
	return m
}

// kill is kill -9: no drain, no commit, no leave.
func (m *member) kill() {
	if m.cmd.ProcessState != nil {
		return
	}
	_ = m.cmd.Process.Signal(syscall.SIGKILL)
	<-m.done
	m.done <- nil // later calls return at once
}

// terminate sends SIGTERM and waits for a clean exit within bound.
func (m *member) terminate(bound time.Duration) time.Duration {
	m.t.Helper()
	start := time.Now()
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-m.done:
		m.done <- nil
		if err != nil {
			out, _ := os.ReadFile(m.log)
			m.t.Errorf("%s: SIGTERM exit: %v\n%s", m.name, err, tail(out, 3000))
		}
	case <-time.After(bound):
		m.t.Errorf("%s did not exit within %s of SIGTERM", m.name, bound)
		m.kill()
	}
	return time.Since(start)
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// live is traffic produced while the test runs, event time = now (with up
// to half a second of disorder), round-robin over the partitions: records are
// not keyed by tenant.
type live struct {
	mu   sync.Mutex
	recs []sent
	stop chan struct{}
	done chan struct{}
}

func (e *env) startTraffic(rate, malformedEvery int, seed int64) *live {
	return e.startTrafficAt(rate, malformedEvery, seed, 0)
}

// startTrafficAt is startTraffic with event times delay behind the clock:
// records that arrive after their windows closed.
func (e *env) startTrafficAt(rate, malformedEvery int, seed int64, delay time.Duration) *live {
	ids := make([]string, len(e.tenants))
	for i, tt := range e.tenants {
		ids[i] = tt.ID
	}
	g := gen.New(gen.Config{Tenants: ids, Seed: seed, MalformedEvery: malformedEvery})
	cl, err := kgo.NewClient(kgo.SeedBrokers(e.brokers...), kgo.DefaultProduceTopic(e.topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(2*time.Millisecond))
	if err != nil {
		e.t.Fatal(err)
	}
	l := &live{stop: make(chan struct{}), done: make(chan struct{})}
	rng := rand.New(rand.NewPCG(uint64(seed), 11))
	go func() {
		defer close(l.done)
		defer cl.Close()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		per := max(1, rate/20)
		n := 0
		for {
			select {
			case <-l.stop:
				return
			case now := <-tick.C:
				batch := make([]sent, 0, per)
				recs := make([]*kgo.Record, 0, per)
				for i := 0; i < per; i++ {
					ts := now.Add(time.Duration(rng.Int64N(int64(500*time.Millisecond))) - 250*time.Millisecond - delay)
					_, v, bad := g.Next(ts)
					s := sent{partition: n % partitions, value: v, bad: bad}
					n++
					if !bad {
						if err := schemas.Decode(v, &s.ev); err != nil {
							e.t.Errorf("generator made a record the decoder refuses: %v", err)
							return
						}
					}
					batch = append(batch, s)
					recs = append(recs, &kgo.Record{Partition: int32(s.partition), Value: v})
				}
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				res := cl.ProduceSync(ctx, recs...)
				cancel()
				if err := res.FirstErr(); err != nil {
					e.t.Errorf("producing live traffic: %v", err)
					return
				}
				// Results come back in completion order, not input order.
				index := make(map[*kgo.Record]int, len(recs))
				for i, r := range recs {
					index[r] = i
				}
				for _, r := range res {
					batch[index[r.Record]].offset = r.Record.Offset
				}
				l.mu.Lock()
				l.recs = append(l.recs, batch...)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

func (l *live) finish() []sent {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.recs
}

// needRealBroker skips fault tests on kfake unless asked: they are the real
// broker's suite (make test-kafka), and slow.
func needRealBroker(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("fault tests are long; not in -short")
	}
	if os.Getenv("PRISM_TEST_BROKER") != "kafka" && os.Getenv("PRISM_FAULTS_ON_KFAKE") == "" {
		t.Skip("fault tests run against the real Apache Kafka broker (make test-kafka); set PRISM_FAULTS_ON_KFAKE=1 to run them on kfake")
	}
}

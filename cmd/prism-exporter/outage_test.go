package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestIntegrationKafkaUnreachableAtStart: with no broker answering, the
// exporter does not exit: it retries with backoff, answers /healthz 200 and
// /readyz 503, and says so in a metric. When the broker comes up it joins
// and exports; a SIGTERM at any point ends it with exit 0.
func TestIntegrationKafkaUnreachableAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for backoff steps")
	}
	// A port nothing listens on yet, for the broker that comes later.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()

	e := newEnv(t, faultTenants()[:2])
	e.brokers = []string{ln.Addr().String()}
	m := e.startMember("outage", "PRISM_CREATE_DLQ_TOPIC=true")
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + m.http + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor(t, "/healthz answers while Kafka is down", 10*time.Second, func() bool { st, _ := get("/healthz"); return st == 200 })
	time.Sleep(3 * time.Second)
	if st, _ := get("/readyz"); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz answered %d with no broker", st)
	}
	select {
	case err := <-m.done:
		m.done <- err
		t.Fatalf("the exporter exited with no broker: %v", err)
	default:
	}

	// The broker comes up, with the topics; the member joins and exports.
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port), kfake.SeedTopics(partitions, e.topic, e.dlq))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "/readyz once the broker answers", 60*time.Second, func() bool { st, _ := get("/readyz"); return st == 200 })
	_, metrics := get("/metrics")
	if !strings.Contains(metrics, "prism_exporter_kafka_unreachable 0") || !strings.Contains(metrics, "prism_exporter_kafka_errors_total") {
		t.Errorf("no Kafka outage metrics after the outage:\n%s", grepLines(metrics, "prism_exporter_kafka"))
	}
	traffic := e.startTraffic(500, 0, 4)
	time.Sleep(4 * time.Second)
	recs := traffic.finish()
	e.waitCommitted(time.Minute)
	m.terminate(10 * time.Second)
	e.checkDatadog(recs, true)
}

func grepLines(text, prefix string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

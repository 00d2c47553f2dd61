// Command prism-trafficgen writes generated Prism gateway records to a Kafka
// topic at a steady rate, for trying the exporter (docker compose) and for
// load tests.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/futureagi/prism-exporter/schemas/gen"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated Kafka brokers")
	topic := flag.String("topic", "prism.gateway.events", "topic to write to")
	rate := flag.Int("rate", 1000, "records per second")
	tenants := flag.String("tenants", "", "comma-separated org ids (default: the samples' five)")
	malformed := flag.Int("malformed-every", 500, "every Nth record is malformed (0: none)")
	seed := flag.Int64("seed", time.Now().UnixNano(), "generator seed")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var ids []string
	if *tenants != "" {
		ids = strings.Split(*tenants, ",")
	}
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(*brokers, ",")...), Topic: *topic,
		Balancer: &kafka.RoundRobin{}, BatchTimeout: 20 * time.Millisecond, BatchSize: 1000, RequiredAcks: kafka.RequireAll}
	defer w.Close()
	var total int64
	last := time.Now()
	err := gen.Pump(ctx, gen.New(gen.Config{Tenants: ids, Seed: *seed, MalformedEvery: *malformed}), *rate,
		gen.KafkaSender(w, func(n int) {
			total += int64(n)
			if time.Since(last) >= 10*time.Second {
				fmt.Printf("prism-trafficgen: %d records written to %s\n", total, *topic)
				last = time.Now()
			}
		}))
	if err != nil {
		fmt.Fprintf(os.Stderr, "prism-trafficgen: %v\n", err)
		os.Exit(1)
	}
}

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/segmentio/kafka-go"
)

// floorRecord is the little a consumer must read of a gateway record to do
// anything with it: the floor decodes into this with encoding/json.
type floorRecord struct {
	RequestID        string  `json:"request_id"`
	Timestamp        string  `json:"timestamp"`
	Model            string  `json:"model"`
	Provider         string  `json:"provider"`
	StatusCode       int     `json:"status_code"`
	LatencyMS        int64   `json:"latency_ms"`
	PromptTokens     int64   `json:"prompt_tokens"`
	CompletionTokens int64   `json:"completion_tokens"`
	Cost             float64 `json:"cost"`
	Metadata         struct {
		OrgID           string `json:"org_id"`
		GatewayID       string `json:"gateway_id"`
		RoutingStrategy string `json:"routing_strategy"`
	} `json:"metadata"`
}

// floorResult is what the floor child prints as its last line.
type floorResult struct {
	Records int64   `json:"records"`
	Bytes   int64   `json:"bytes"`
	GzBytes int64   `json:"gz_bytes"`
	Seconds float64 `json:"seconds"`
	Error   string  `json:"error,omitempty"`
}

// runFloorChild is `prism-bench floor`: read every partition of a topic to its
// end as the exporter does (one kafka-go Reader per partition, the
// exporter's reader settings), decode each record with encoding/json and
// gzip its bytes at the sink's level, and print a floorResult.
func runFloorChild(args []string) int {
	fs := flag.NewFlagSet("floor", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "Kafka brokers, comma-separated")
	topic := fs.String("topic", "", "topic to read")
	partitions := fs.Int("partitions", 6, "partitions of the topic")
	timeout := fs.Duration("timeout", 4*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res := floor(ctx, strings.Split(*brokers, ","), *topic, *partitions)
	_ = json.NewEncoder(os.Stdout).Encode(res)
	if res.Error != "" {
		return 1
	}
	return 0
}

func floor(ctx context.Context, brokers []string, topic string, partitions int) floorResult {
	started := time.Now()
	end, err := newAdmin(brokers, partitions).endOffsets(ctx, topic)
	if err != nil {
		return floorResult{Error: err.Error()}
	}
	var records, size, gz, finished atomic.Int64
	errs := make(chan error, partitions)
	var wg sync.WaitGroup
	for p := 0; p < partitions; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := floorReader(brokers, topic, p)
			n, b, z, err := floorPartition(ctx, r, end[p])
			// The floor ends with its last record, not with the readers'
			// Close, which waits out a fetch in flight.
			done := int64(time.Since(started))
			for cur := finished.Load(); done > cur && !finished.CompareAndSwap(cur, done); cur = finished.Load() {
			}
			_ = r.Close()
			records.Add(n)
			size.Add(b)
			gz.Add(z)
			if err != nil {
				errs <- fmt.Errorf("partition %d: %w", p, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	res := floorResult{Records: records.Load(), Bytes: size.Load(), GzBytes: gz.Load(), Seconds: time.Duration(finished.Load()).Seconds()}
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	if err := errors.Join(all...); err != nil {
		res.Error = err.Error()
	}
	return res
}

// floorReader has the exporter's ReaderConfig (processor/partition.go), so
// the floor fetches the way the exporter does.
func floorReader(brokers []string, topic string, p int) *kafka.Reader {
	return kafka.NewReader(kafka.ReaderConfig{
		Brokers:       brokers,
		Topic:         topic,
		Partition:     p,
		MinBytes:      1,
		MaxBytes:      16 << 20,
		MaxWait:       250 * time.Millisecond,
		QueueCapacity: 1024,
	})
}

// floorPartition reads one partition up to end. The gzip stream is cut every
// 1000 records, as the sink cuts log requests (Datadog's 1000 entries per
// request), so the floor pays the same per-body setup.
func floorPartition(ctx context.Context, r *kafka.Reader, end int64) (n, size, gz int64, err error) {
	if end <= 0 {
		return 0, 0, 0, nil
	}
	if err := r.SetOffset(kafka.FirstOffset); err != nil {
		return 0, 0, 0, err
	}
	var body bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&body, gzip.BestSpeed) // the sink's level (sink/deliver.go)
	inBody := 0
	cut := func() error {
		if err := zw.Close(); err != nil {
			return err
		}
		gz += int64(body.Len())
		body.Reset()
		zw.Reset(&body)
		inBody = 0
		return nil
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return n, size, gz, fmt.Errorf("fetching at %d of %d: %w", n, end, err)
		}
		var rec floorRecord
		if err := json.Unmarshal(m.Value, &rec); err != nil {
			return n, size, gz, fmt.Errorf("offset %d: %w", m.Offset, err)
		}
		if _, err := zw.Write(m.Value); err != nil {
			return n, size, gz, err
		}
		n++
		size += int64(len(m.Value))
		if inBody++; inBody == 1000 {
			if err := cut(); err != nil {
				return n, size, gz, err
			}
		}
		if m.Offset+1 >= end {
			if inBody > 0 {
				err = cut()
			}
			return n, size, gz, err
		}
	}
}

// floorRun is the floor as the benchmark reports it.
type floorRun struct {
	Records      int64   `json:"records"`
	Seconds      float64 `json:"seconds"`
	RecordsPerS  float64 `json:"records_per_second"`
	CPUSeconds   float64 `json:"cpu_seconds"`
	CPUPerMillon float64 `json:"cpu_seconds_per_million"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	BrokerCPU    float64 `json:"broker_cpu_seconds"`
	GzRatio      float64 `json:"gzip_ratio"`
}

// runFloor runs the floor child on topic. Its time is the child's own, from
// its start to its last record; CPU and peak RSS come from the child's
// rusage.
func runFloor(ctx context.Context, c config, topic string, want int) (floorRun, error) {
	self, err := os.Executable()
	if err != nil {
		return floorRun{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.e2eTimeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, self, "floor", "-brokers", strings.Join(c.brokers, ","), "-topic", topic,
		"-partitions", fmt.Sprint(c.partitions), "-timeout", c.e2eTimeout.String())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return floorRun{}, err
	}
	broker0 := cpuOf(c.kafkaPID)
	if err := cmd.Start(); err != nil {
		return floorRun{}, fmt.Errorf("starting the floor consumer: %w", err)
	}
	var res floorResult
	sc := bufio.NewScanner(stdout)
	line := ""
	if sc.Scan() {
		line = sc.Text()
	}
	brokerCPU := cpuOf(c.kafkaPID) - broker0
	_, _ = io.Copy(io.Discard, stdout)
	waitErr := cmd.Wait()
	if err := json.Unmarshal([]byte(line), &res); err != nil {
		return floorRun{}, fmt.Errorf("floor consumer: no result (%v; exit: %v)", err, waitErr)
	}
	if res.Error != "" {
		return floorRun{}, fmt.Errorf("floor consumer: %s", res.Error)
	}
	if res.Records != int64(want) {
		return floorRun{}, fmt.Errorf("floor consumer read %d records, want %d", res.Records, want)
	}
	ru, _ := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	out := floorRun{Records: res.Records, Seconds: res.Seconds, RecordsPerS: float64(res.Records) / res.Seconds, BrokerCPU: brokerCPU.Seconds()}
	if ru != nil {
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		out.CPUSeconds = cpu.Seconds()
		out.CPUPerMillon = cpu.Seconds() / (float64(res.Records) / 1e6)
		out.PeakRSSMiB = float64(ru.Maxrss) / 1024 // KiB on Linux
	}
	if res.GzBytes > 0 {
		out.GzRatio = float64(res.Bytes) / float64(res.GzBytes)
	}
	return out, nil
}

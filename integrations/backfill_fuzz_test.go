package integrations

import (
	"bytes"
	"testing"

	"github.com/segmentio/kafka-go"
)

// FuzzJobsFold feeds the backfills topic's fold records that no exporter
// wrote: whatever they hold, it must not panic, and every job it keeps
// must be one the runner and the API can use.
func FuzzJobsFold(f *testing.F) {
	f.Add([]byte("dd_a\x00{\"id\":\"bf_1\",\"integration_id\":\"dd_a\",\"org_id\":\"org\",\"state\":\"pending\",\"token\":5,\"op\":\"start\"}"))
	f.Add([]byte("dd_a\x00{\"id\":\"bf_1\",\"integration_id\":\"dd_a\",\"state\":\"running\",\"owner\":\"m\",\"op\":\"claim\",\"member\":\"m\"}\x01dd_a\x00"))
	f.Add([]byte("dd_a\x00{\"id\":\"bf_1\",\"integration_id\":\"dd_a\",\"partitions\":{\"0\":{\"start\":5,\"end\":1,\"next\":9}},\"records_to_scan\":-4}"))
	f.Add([]byte("\x00\x00\x01{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := NewJobs(JobsConfig{Brokers: []string{"127.0.0.1:1"}})
		if err != nil {
			t.Fatal(err)
		}
		for i, rec := range bytes.Split(data, []byte{0x01}) {
			key, value, _ := bytes.Cut(rec, []byte{0x00})
			j.apply(kafka.Message{Key: key, Value: value, Offset: int64(i)})
		}
		for _, job := range j.List() {
			if job.ID == "" || job.IntegrationID == "" {
				t.Fatalf("a job without ids: %+v", job)
			}
			if p := job.Percent(); p < 0 || p > 100 {
				t.Fatalf("percent %v of %+v", p, job)
			}
			if got, ok := j.Get(job.IntegrationID); !ok || got.ID != job.ID {
				t.Fatalf("List has %s, Get has %+v", job.ID, got)
			}
		}
	})
}

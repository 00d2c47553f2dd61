package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// syncBuffer lets the demo's screen goroutine write while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestDemoDeliversAndShowsIt runs `make run`'s command for a few seconds and
// checks that the screen shows records consumed, dead letters, and windows and
// logs delivered to every demo tenant.
func TestDemoDeliversAndShowsIt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 20 s")
	}
	t.Setenv("DD_API_KEY", "")
	var out syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	log := zaptest.NewLogger(t, zaptest.Level(zap.ErrorLevel))
	if err := demo(ctx, &out, log, "127.0.0.1:0", 500, 50, time.Second, time.Second); err != nil {
		t.Fatal(err)
	}
	screen := out.String()
	head := regexp.MustCompile(`consumed (\d+) \(\d+/s\) ─ dead letters (\d+)`).FindAllStringSubmatch(screen, -1)
	if len(head) == 0 {
		t.Fatalf("no screen printed:\n%s", screen)
	}
	last := head[len(head)-1]
	if n, _ := strconv.Atoi(last[1]); n < 2000 {
		t.Errorf("consumed %d records in 20 s at 500/s:\n%s", n, screen)
	}
	if n, _ := strconv.Atoi(last[2]); n == 0 {
		t.Errorf("no dead letters shown though every 50th record is malformed:\n%s", screen)
	}
	if !regexp.MustCompile(demoBrokenTenant + `\s+\S+\s+error`).MatchString(screen) {
		t.Errorf("tenant %s, whose key the local Datadog refuses, not shown in error:\n%s", demoBrokenTenant, screen)
	}
	if !regexp.MustCompile(`console: http://\S+/ui/\s+admin token: demo-[0-9a-f]{24}`).MatchString(screen) {
		t.Errorf("the console's address and admin token are not printed:\n%s", screen)
	}
	for _, tn := range demoTenants {
		if tn.id == demoBrokenTenant {
			continue
		}
		rows := regexp.MustCompile(tn.id+`\s+\S+\s+active\s+(\d+)\s+\d+\s+(\d+)\s+(\d+)`).FindAllStringSubmatch(screen, -1)
		if len(rows) == 0 {
			t.Errorf("tenant %s not shown active:\n%s", tn.id, screen)
			continue
		}
		// Logs go out with their window (or in chunks of 500), so only
		// tenants whose windows close within the run must show some.
		if tn.interval > 15*time.Second {
			continue
		}
		r := rows[len(rows)-1]
		if logs, _ := strconv.Atoi(r[2]); logs == 0 {
			t.Errorf("tenant %s: no logs delivered: %q", tn.id, r[0])
		}
		if windows, _ := strconv.Atoi(r[3]); windows == 0 {
			t.Errorf("tenant %s: no window delivered in 20 s with %s windows: %q", tn.id, tn.interval, r[0])
		}
	}
}

package history

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// register adds cs to reg, which may be nil (then the metrics are kept but
// not exported). A collector already registered is an error: two Writers
// or two Logs on one registry would count into one series.
func register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// quietLog logs a recurring problem at most once per period, with how many
// times it happened since the last line: a history topic that is down, or
// a writer gone wrong, must not flood the log. The metrics count every one.
type quietLog struct {
	log    *zap.Logger
	msg    string
	period time.Duration

	mu    sync.Mutex
	last  time.Time
	since map[string]int
}

func newQuietLog(log *zap.Logger, msg string, period time.Duration) *quietLog {
	return &quietLog{log: log, msg: msg, period: period, since: map[string]int{}}
}

func (q *quietLog) note(reason string, err error) {
	q.mu.Lock()
	q.since[reason]++
	now := time.Now()
	if !q.last.IsZero() && now.Sub(q.last) < q.period {
		q.mu.Unlock()
		return
	}
	counts := q.since
	q.since, q.last = map[string]int{}, now
	q.mu.Unlock()
	q.log.Warn(q.msg, zap.Any("since_last_line", counts), zap.Error(err))
}

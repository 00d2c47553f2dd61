package processor

import (
	"sync/atomic"

	"github.com/futureagi/prism-exporter/schemas"
)

// budget bounds the memory held by decoded records between fetch and
// Datadog's acceptance, across all partitions. It is a gauge, not a
// semaphore: a partition over budget stops fetching, and the sink's answers
// bring it back under.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) charge(n int64)  { b.used.Add(n) }
func (b *budget) release(n int64) { b.used.Add(-n) }
func (b *budget) over() bool      { return b.used.Load() > b.limit }

// eventSize estimates what a decoded event costs in memory: the struct and its
// strings. Bodies and headers were dropped by the decoder.
func eventSize(ev *schemas.Event) int64 {
	const fixed = 320
	return fixed + int64(len(ev.RequestID)+len(ev.TraceID)+len(ev.Model)+len(ev.ResolvedModel)+
		len(ev.Provider)+len(ev.ErrorMessage)+len(ev.ErrorCode)+len(ev.AuthKeyID)+len(ev.UserID)+
		len(ev.SessionID)+len(ev.OrgID)+len(ev.GatewayID)+len(ev.RoutingStrategy))
}

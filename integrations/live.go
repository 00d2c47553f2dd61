package integrations

import (
	"time"

	"github.com/futureagi/prism-exporter/sink"
)

// Live is how an org's export is doing.
type Live struct {
	State         sink.TenantState
	Message       string
	LastSyncedAt  time.Time
	LogsSent      int64
	PointsSent    int64
	BatchesFailed int64
}

// LocalStatus is the live status of this replica's sink alone.
type LocalStatus func() []sink.TenantStatus

// Live returns the org's status on this replica.
func (f LocalStatus) Live(org string) (Live, bool) {
	for _, st := range f() {
		if st.ID == org {
			return liveOf(st), true
		}
	}
	return Live{}, false
}

func liveOf(st sink.TenantStatus) Live {
	return Live{
		State: st.State, Message: st.LastError, LastSyncedAt: st.LastDelivery,
		LogsSent: st.LogsSent, PointsSent: st.PointsSent, BatchesFailed: st.Failed,
	}
}

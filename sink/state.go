package sink

import (
	"fmt"
	"time"
)

// TenantState is where a tenant's integration stands.
type TenantState uint8

const (
	// Validating: its keys are being checked with Datadog (after it was
	// added, its keys or site changed, or it left Error). Its batches queue.
	Validating TenantState = iota + 1
	// Active: keys valid, nothing in flight.
	Active
	// Syncing: Active with a delivery in flight.
	Syncing
	// Paused: the tenants file says paused; nothing is exported.
	Paused
	// Error: Datadog refused its keys. Its batches complete as
	// Undeliverable until its keys or site change, or a retry is asked for.
	Error
)

func allStates() []TenantState { return []TenantState{Validating, Active, Syncing, Paused, Error} }

func (s TenantState) String() string {
	switch s {
	case Validating:
		return "validating"
	case Active:
		return "active"
	case Syncing:
		return "syncing"
	case Paused:
		return "paused"
	case Error:
		return "error"
	}
	return "unknown"
}

// MarshalText makes the /status page print the state's name.
func (s TenantState) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state's name back (the status topic carries it).
func (s *TenantState) UnmarshalText(b []byte) error {
	if string(b) == TenantState(0).String() {
		*s = 0 // no state: an entry that only carries counts
		return nil
	}
	for _, st := range allStates() {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown tenant state %q", b)
}

// TenantStatus is one tenant's line on the processor's /status page. It
// holds no key.
type TenantStatus struct {
	ID    string      `json:"id"`
	Site  Site        `json:"site"`
	State TenantState `json:"state"`
	// LastError is why the tenant is in Error, or the last failure it is
	// retrying through; empty when the last attempt succeeded.
	LastError string `json:"last_error,omitempty"`
	// Delivered and Failed count batches: accepted by Datadog, and
	// completed Undeliverable.
	Delivered int64 `json:"delivered"`
	Failed    int64 `json:"failed"`
	// DeadLettered counts logs and series Datadog refused (400, 413).
	DeadLettered int64 `json:"dead_lettered"`
	// LogsSent and PointsSent count what Datadog accepted from this
	// process (logs, and metric points: one per series and window).
	LogsSent     int64     `json:"logs_sent"`
	PointsSent   int64     `json:"points_sent"`
	LastDelivery time.Time `json:"last_delivery,omitzero"`
	// QueuedBatches waits for delivery (including the ones in flight).
	QueuedBatches int `json:"queued_batches"`
}

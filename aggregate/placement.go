package aggregate

// Placement says what Add did with a record, for the processor's counts.
type Placement uint8

const (
	// Placed: the record's metrics are in its window's share, its log
	// buffered.
	Placed Placement = iota + 1
	// TooOld: Datadog no longer takes a point for the record's window
	// (start + MetricMaxAge has passed): its log only goes out.
	TooOld
)

func (p Placement) String() string {
	switch p {
	case Placed:
		return "placed"
	case TooOld:
		return "too_old"
	}
	return "unknown"
}

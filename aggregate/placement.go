package aggregate

// Placement says what Add did with a record, so that the processor can count
// it and knows whether its offset is held.
type Placement uint8

const (
	// Placed: the record went into an open window (its metrics and its log).
	Placed Placement = iota + 1
	// Late: the record's window had already closed. Its log goes out in a
	// KindLate batch, with the corrected window totals while they are kept
	// (Stats.LateCorrected), without them otherwise (Stats.LateMetricDropped).
	Late
	// Replayed: after a resume, the record's window was already delivered but
	// its late record may not have been; its log is re-sent in a KindLate
	// batch, its window's Series are not touched, and its metrics go out in
	// a partial of its own (Batch.RecordPartials).
	Replayed
	// Skipped: after a resume, the record belongs to a window delivered
	// before the commit. Nothing is emitted and nothing is held.
	Skipped
)

func (p Placement) String() string {
	switch p {
	case Placed:
		return "placed"
	case Late:
		return "late"
	case Replayed:
		return "replayed"
	case Skipped:
		return "skipped"
	}
	return "unknown"
}

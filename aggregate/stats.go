package aggregate

// Stats is what the Aggregator holds and has done, for self-metrics.
type Stats struct {
	OpenWindows     int // windows collecting records
	BufferedLogs    int // logs held: open windows' partial chunks and late records awaiting Advance
	RetainedWindows int // closed windows whose totals are kept for late corrections

	LateCorrected     int64 // late records whose window's totals were corrected (or started: LateOpened)
	LateOpened        int64 // late records whose window never existed here: their totals start a closed window
	LateMetricDropped int64 // late records whose Series were not corrected (totals no longer kept, or too old); their partial goes out on its own unless too old
	TagSetsFolded     int64 // records whose tag set was new to a full window and went to Other
	ReplaySkipped     int64 // records of windows delivered before the resume, skipped
	Replayed          int64 // records of windows delivered before the resume, re-sent as logs (and a partial of their own)
	LatePartials      int64 // late or replayed records sent in a partial of their own (Batch.RecordPartials)
	LateTooOld        int64 // late or replayed records with no metric at all: window start + MetricMaxAge has passed
}

// Stats returns the current counts.
func (a *Aggregator) Stats() Stats { return a.stats }

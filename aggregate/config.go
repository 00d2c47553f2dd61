package aggregate

import (
	"fmt"
	"time"
)

// Defaults applied to a Config field left at its zero value.
const (
	DefaultMaxTagSets   = 1000
	DefaultChunkSize    = 500
	DefaultMetricMaxAge = 55 * time.Minute
	DefaultRetainClosed = 4

	// MaxChunkSize bounds ChunkSize: Datadog takes at most 1000 logs per
	// request.
	MaxChunkSize = 1000
	// maxMetricMaxAge is how old a point Datadog still accepts; corrections
	// kept for longer would be rejected.
	maxMetricMaxAge = time.Hour
	// maxTagSetsLimit and maxRetainClosed keep a typo from turning the caps
	// into unbounded memory.
	maxTagSetsLimit = 100_000
	maxRetainClosed = 1000
)

// Config sets up one partition's Aggregator. Zero values of MaxTagSets,
// ChunkSize, MetricMaxAge and RetainClosed select their defaults; a zero
// AllowedLateness means no lateness.
type Config struct {
	Partition int32
	// AllowedLateness L holds the closing frontier L behind the newest event
	// time seen (or, when idle, behind the wall clock).
	AllowedLateness time.Duration
	// MaxTagSets is how many distinct tag sets one tenant window keeps before
	// folding new ones into TagSet{Other, Other, Other, Other}.
	MaxTagSets int
	// ChunkSize is how many logs one KindLogs or KindLate batch carries.
	ChunkSize int
	// MetricMaxAge: a closed window's totals are kept for late corrections
	// while clock.Now() < window start + MetricMaxAge (a point's timestamp is
	// its window start, and Datadog accepts points up to one hour old).
	MetricMaxAge time.Duration
	// RetainClosed is how many of a tenant's most recently closed windows keep
	// their totals for late corrections.
	RetainClosed int
	// Clock is the wall clock; required.
	Clock Clock
}

// Resume is what the last commit's metadata says about the offsets replayed
// from the committed offset (see docs/design.md, "Offsets, windows and
// replays").
type Resume struct {
	// Delivered is the delivered frontier D: every window ending at or before
	// it was accepted downstream. The zero time means a fresh start.
	Delivered time.Time
	// LateFrom is the lowest offset whose late record may not have been
	// accepted; -1 means none. Records of delivered windows at or past it are
	// re-sent as logs only.
	LateFrom int64
}

// withDefaults returns cfg with zero-valued fields set to their defaults and
// an error naming the first field that is out of range.
func (cfg Config) withDefaults() (Config, error) {
	if cfg.MaxTagSets == 0 {
		cfg.MaxTagSets = DefaultMaxTagSets
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.MetricMaxAge == 0 {
		cfg.MetricMaxAge = DefaultMetricMaxAge
	}
	if cfg.RetainClosed == 0 {
		cfg.RetainClosed = DefaultRetainClosed
	}
	switch {
	case cfg.Partition < 0:
		return cfg, fmt.Errorf("aggregate: Config.Partition must be >= 0 (a Kafka partition number), got %d", cfg.Partition)
	case cfg.AllowedLateness < 0:
		return cfg, fmt.Errorf("aggregate: Config.AllowedLateness must be >= 0, got %v", cfg.AllowedLateness)
	case cfg.MaxTagSets < 1 || cfg.MaxTagSets > maxTagSetsLimit:
		return cfg, fmt.Errorf("aggregate: Config.MaxTagSets must be between 1 and %d (0 selects %d), got %d",
			maxTagSetsLimit, DefaultMaxTagSets, cfg.MaxTagSets)
	case cfg.ChunkSize < 1 || cfg.ChunkSize > MaxChunkSize:
		return cfg, fmt.Errorf("aggregate: Config.ChunkSize must be between 1 and %d (0 selects %d), got %d",
			MaxChunkSize, DefaultChunkSize, cfg.ChunkSize)
	case cfg.MetricMaxAge < 0 || cfg.MetricMaxAge > maxMetricMaxAge:
		return cfg, fmt.Errorf("aggregate: Config.MetricMaxAge must be between 0 and %v (Datadog rejects older points; 0 selects %v), got %v",
			maxMetricMaxAge, DefaultMetricMaxAge, cfg.MetricMaxAge)
	case cfg.RetainClosed < 1 || cfg.RetainClosed > maxRetainClosed:
		return cfg, fmt.Errorf("aggregate: Config.RetainClosed must be between 1 and %d (0 selects %d), got %d",
			maxRetainClosed, DefaultRetainClosed, cfg.RetainClosed)
	case cfg.Clock == nil:
		return cfg, fmt.Errorf("aggregate: Config.Clock must be set (the processor's wall clock, or a fake one in tests)")
	}
	return cfg, nil
}

func (r Resume) validate() error {
	if r.LateFrom < -1 {
		return fmt.Errorf("aggregate: Resume.LateFrom must be -1 (no unacknowledged late record) or an offset >= 0, got %d", r.LateFrom)
	}
	return nil
}

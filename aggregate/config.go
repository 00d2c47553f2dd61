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

	// MaxChunkSize bounds ChunkSize: Datadog takes at most 1000 logs per
	// request.
	MaxChunkSize = 1000
	// maxMetricMaxAge is how old a point Datadog still accepts; corrections
	// kept for longer would be rejected.
	maxMetricMaxAge = time.Hour
	// maxTagSetsLimit keeps a typo from turning the cap into unbounded
	// memory.
	maxTagSetsLimit = 100_000
)

// Config sets up one partition's Segmenter. Zero values of MaxTagSets,
// ChunkSize and MetricMaxAge select their defaults.
type Config struct {
	Partition int32
	// Source names the records' source in the partials (Partial.Source):
	// 0 selects Partition. A backfill reads partitions again beside the
	// live pipelines and gives each of its readers a source of its own
	// (BackfillSource), so that the Combiner sums its shares with the live
	// ones rather than replacing them, and resets only its own.
	Source int64
	// MaxTagSets is how many distinct tag sets one tenant window keeps in a
	// segment before folding new ones into TagSet{Other, Other, Other, Other}.
	MaxTagSets int
	// ChunkSize is how many logs one KindLogs batch carries at most.
	ChunkSize int
	// MetricMaxAge: a record's window gets a share while clock.Now() <
	// window start + MetricMaxAge (a point's timestamp is its window start,
	// and Datadog accepts points up to one hour old); older records are
	// logs only.
	MetricMaxAge time.Duration
	// Clock is the wall clock; required.
	Clock Clock
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
	switch {
	case cfg.Source < 0:
		return cfg, fmt.Errorf("aggregate: Config.Source must be >= 0, got %d", cfg.Source)
	case cfg.Partition < 0:
		return cfg, fmt.Errorf("aggregate: Config.Partition must be >= 0 (a Kafka partition number), got %d", cfg.Partition)
	case cfg.MaxTagSets < 1 || cfg.MaxTagSets > maxTagSetsLimit:
		return cfg, fmt.Errorf("aggregate: Config.MaxTagSets must be between 1 and %d (0 selects %d), got %d",
			maxTagSetsLimit, DefaultMaxTagSets, cfg.MaxTagSets)
	case cfg.ChunkSize < 1 || cfg.ChunkSize > MaxChunkSize:
		return cfg, fmt.Errorf("aggregate: Config.ChunkSize must be between 1 and %d (0 selects %d), got %d",
			MaxChunkSize, DefaultChunkSize, cfg.ChunkSize)
	case cfg.MetricMaxAge < 0 || cfg.MetricMaxAge > maxMetricMaxAge:
		return cfg, fmt.Errorf("aggregate: Config.MetricMaxAge must be between 0 and %v (Datadog rejects older points; 0 selects %v), got %v",
			maxMetricMaxAge, DefaultMetricMaxAge, cfg.MetricMaxAge)
	case cfg.Clock == nil:
		return cfg, fmt.Errorf("aggregate: Config.Clock must be set (the processor's wall clock, or a fake one in tests)")
	}
	return cfg, nil
}

// BackfillSource is the Partial.Source of a backfill's reader of one
// partition: above every Kafka partition number (those are int32), and
// unique per backfill job through its random token (below 1<<40), so that
// two backfills, or a backfill and the live pipeline, never share a source.
func BackfillSource(token uint64, partition int32) int64 {
	return backfillBit | int64(token&(1<<40-1))<<21 | int64(partition)&(1<<21-1)
}

const backfillBit = int64(1) << 62

// IsBackfillSource tells a backfill's source from a live partition.
func IsBackfillSource(source int64) bool { return source&backfillBit != 0 }

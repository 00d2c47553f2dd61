package ddfake

import "time"

// Documented limits (see the package comment for sources and unit choices).
const (
	// MaxLogsPayloadBytes: "Maximum content size per payload (uncompressed): 5MB".
	MaxLogsPayloadBytes = 5 << 20
	// MaxLogBytes: "Maximum size for a single log: 1MB"; larger logs are truncated.
	MaxLogBytes = 1 << 20
	// MaxLogsPerRequest: "Maximum array size ...: 1000 entries".
	MaxLogsPerRequest = 1000
	// MaxLogAge: "a timestamp that is up to 18 hours in the past".
	MaxLogAge = 18 * time.Hour

	// MaxSeriesWireBytes: "The maximum payload size is 500 kilobytes (512000 bytes)".
	MaxSeriesWireBytes = 512000
	// MaxSeriesInflatedBytes: compressed payloads "must have a decompressed
	// size of less than 5 megabytes (5242880 bytes)", so this size is refused.
	MaxSeriesInflatedBytes = 5242880
	// MaxPointAge and MaxPointAhead: "cannot be more than ten minutes in the
	// future or more than one hour in the past".
	MaxPointAge   = time.Hour
	MaxPointAhead = 10 * time.Minute

	// MaxDistributionWireBytes and MaxDistributionInflatedBytes are the v1
	// metrics intake limits of POST /api/v1/series, applied to
	// distribution_points, whose own limits are undocumented.
	MaxDistributionWireBytes     = 3200000
	MaxDistributionInflatedBytes = 62914560

	// MaxTagLength: "Tags can be up to 200 characters long".
	MaxTagLength = 200
)

// drainCap bounds how much of a refused body is still read. Reading it lets the
// client finish writing and see the answer instead of a reset connection.
const drainCap = 64 << 20

const (
	defaultRateLimit  = 1000000
	defaultRatePeriod = 60 * time.Second
)

// Limits are the size and age limits the server enforces.
type Limits struct {
	LogsPayloadBytes          int64 // uncompressed logs request; more is 413
	LogBytes                  int   // one log; more is truncated
	LogsPerRequest            int   // more is 400
	LogAge                    time.Duration
	SeriesWireBytes           int64 // series body as sent; more is 413
	SeriesInflatedBytes       int64 // decompressed series body; this or more is 413
	PointAge                  time.Duration
	PointAhead                time.Duration
	DistributionWireBytes     int64
	DistributionInflatedBytes int64 // this or more is 413
}

// DefaultLimits returns the documented limits.
func DefaultLimits() Limits {
	return Limits{
		LogsPayloadBytes:          MaxLogsPayloadBytes,
		LogBytes:                  MaxLogBytes,
		LogsPerRequest:            MaxLogsPerRequest,
		LogAge:                    MaxLogAge,
		SeriesWireBytes:           MaxSeriesWireBytes,
		SeriesInflatedBytes:       MaxSeriesInflatedBytes,
		PointAge:                  MaxPointAge,
		PointAhead:                MaxPointAhead,
		DistributionWireBytes:     MaxDistributionWireBytes,
		DistributionInflatedBytes: MaxDistributionInflatedBytes,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	pick := func(v, def int64) int64 {
		if v > 0 {
			return v
		}
		return def
	}
	l.LogsPayloadBytes = pick(l.LogsPayloadBytes, d.LogsPayloadBytes)
	l.LogBytes = int(pick(int64(l.LogBytes), int64(d.LogBytes)))
	l.LogsPerRequest = int(pick(int64(l.LogsPerRequest), int64(d.LogsPerRequest)))
	l.LogAge = time.Duration(pick(int64(l.LogAge), int64(d.LogAge)))
	l.SeriesWireBytes = pick(l.SeriesWireBytes, d.SeriesWireBytes)
	l.SeriesInflatedBytes = pick(l.SeriesInflatedBytes, d.SeriesInflatedBytes)
	l.PointAge = time.Duration(pick(int64(l.PointAge), int64(d.PointAge)))
	l.PointAhead = time.Duration(pick(int64(l.PointAhead), int64(d.PointAhead)))
	l.DistributionWireBytes = pick(l.DistributionWireBytes, d.DistributionWireBytes)
	l.DistributionInflatedBytes = pick(l.DistributionInflatedBytes, d.DistributionInflatedBytes)
	return l
}

package ddfake

import (
	"math"
	"strconv"
	"time"
)

// logDateAttributes are the attributes Datadog reads a log's date from, in
// order ("Send logs" and the reserved-attribute docs).
func logDateAttributes() [6]string {
	return [6]string{"timestamp", "date", "_timestamp", "Timestamp", "eventTime", "published_date"}
}

// logDate returns the log's date from the first date attribute that parses,
// or the receive time (and "") when none does.
func logDate(attrs map[string]any, received time.Time) (time.Time, string) {
	for _, name := range logDateAttributes() {
		v, ok := attrs[name]
		if !ok {
			continue
		}
		if t, ok := parseLogDate(v); ok {
			return t, name
		}
	}
	return received, ""
}

// parseLogDate reads ISO 8601 or epoch milliseconds. Epoch seconds are not
// recognised as such: 1.7e9 is read as milliseconds (January 1970), so a
// sender that gets the unit wrong sees its logs dropped as too old, as it
// would at Datadog.
func parseLogDate(v any) (time.Time, bool) {
	switch v := v.(type) {
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return time.Time{}, false
		}
		return time.UnixMilli(int64(v)).UTC(), true
	case string:
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil {
			return time.UnixMilli(ms).UTC(), true
		}
		for _, layout := range []string{
			time.RFC3339Nano,
			"2006-01-02T15:04:05.999999999Z0700",
			"2006-01-02T15:04:05.999999999", // no zone: UTC
			"2006-01-02 15:04:05.999999999Z07:00",
			"2006-01-02",
		} {
			if t, err := time.Parse(layout, v); err == nil {
				return t.UTC(), true
			}
		}
	}
	return time.Time{}, false
}

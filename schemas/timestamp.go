package schemas

import "time"

// parseTimestamp reads the record's event time. time.Parse alone is lenient
// where RFC 3339 is not (a one-digit hour, a comma before the fraction, an
// offset of +24:00 or +05:60), so the shape is checked first; what passes is
// exactly what the "date-time" format of the published schema describes.
func parseTimestamp(s string) (time.Time, *DecodeError) {
	const field = "timestamp"
	if !isRFC3339(s) {
		return time.Time{}, &DecodeError{ReasonInvalidValue, field, "not an RFC 3339 date-time"}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, &DecodeError{ReasonInvalidValue, field, "not an RFC 3339 date-time"}
	}
	// UTC so that events compare and print alike whatever offset the gateway
	// wrote, and the year is checked where windows are cut.
	t = t.UTC()
	if y := t.Year(); y < 1970 || y > 9999 {
		return time.Time{}, &DecodeError{ReasonInvalidValue, field, "year outside 1970..9999"}
	}
	return t, nil
}

// isRFC3339 checks the layout YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)
// and the offset's range; time.Parse checks the other ranges.
func isRFC3339(s string) bool {
	const base = len("2006-01-02T15:04:05")
	if len(s) <= base {
		return false
	}
	for i := range base {
		switch i {
		case 4, 7:
			if s[i] != '-' {
				return false
			}
		case 10:
			if s[i] != 'T' {
				return false
			}
		case 13, 16:
			if s[i] != ':' {
				return false
			}
		default:
			if !isDigit(s[i]) {
				return false
			}
		}
	}
	s = s[base:]
	if s[0] == '.' {
		i := 1
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == 1 {
			return false
		}
		s = s[i:]
	}
	if s == "Z" {
		return true
	}
	return len(s) == len("+07:00") && (s[0] == '+' || s[0] == '-') &&
		isDigit(s[1]) && isDigit(s[2]) && s[3] == ':' && isDigit(s[4]) && isDigit(s[5]) &&
		(s[1]-'0')*10+(s[2]-'0') <= 23 && (s[4]-'0')*10+(s[5]-'0') <= 59
}

package schemas

import (
	"math"
	"strconv"
)

// numResult says why number text could not become the value a field wants.
type numResult uint8

const (
	numOK       numResult = iota
	numFraction           // not integral: the schema's "integer" type fails
	numOverflow           // does not fit the Go type
	numNegative           // below the minimum of 0
)

// parseCount reads JSON number text as a non-negative int64. The text has
// already passed the JSON grammar check. Any notation of an integral value is
// accepted (12, 12.0, 1.2e1), because JSON Schema's "integer" means exactly
// that, and the decoder and the published schema must agree.
func parseCount(b []byte) (int64, numResult) {
	neg := false
	if len(b) > 0 && b[0] == '-' {
		neg = true
		b = b[1:]
	}
	// Fast path: plain digits, as the gateway writes them. 18 digits cannot
	// overflow int64.
	if len(b) > 0 && len(b) <= 18 {
		var n int64
		i := 0
		for ; i < len(b); i++ {
			c := b[i]
			if c < '0' || c > '9' {
				break
			}
			n = n*10 + int64(c-'0')
		}
		if i == len(b) {
			if neg && n != 0 {
				return 0, numNegative
			}
			return n, numOK
		}
	}
	return parseCountSlow(b, neg)
}

// parseCountSlow handles fractions, exponents and long digit strings exactly,
// without going through float64, which would round large values.
func parseCountSlow(b []byte, neg bool) (int64, numResult) {
	i := 0
	for i < len(b) && isDigit(b[i]) {
		i++
	}
	intPart := b[:i]
	var frac []byte
	if i < len(b) && b[i] == '.' {
		j := i + 1
		for j < len(b) && isDigit(b[j]) {
			j++
		}
		frac = b[i+1 : j]
		i = j
	}
	var exp int64
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		expNeg := false
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			expNeg = b[i] == '-'
			i++
		}
		for ; i < len(b); i++ {
			// Saturate far beyond any digit count a record can hold, so the
			// sign of the final scale stays right.
			if exp < 1<<40 {
				exp = exp*10 + int64(b[i]-'0')
			}
		}
		if expNeg {
			exp = -exp
		}
	}

	// The value is digits(intPart ++ frac) * 10^scale. Strip the zeros that do
	// not change it, so the last digit left is non-zero: then a negative scale
	// means a fraction.
	frac = trimRightZeros(frac)
	scale := exp - int64(len(frac))
	hi, lo := trimLeftZeros(intPart), frac
	if len(frac) == 0 {
		trimmed := trimRightZeros(hi)
		scale += int64(len(hi) - len(trimmed))
		hi = trimmed
	} else if len(hi) == 0 {
		lo = trimLeftZeros(lo)
	}
	if len(hi)+len(lo) == 0 {
		return 0, numOK // zero in any notation, "-0" included
	}
	if scale < 0 {
		return 0, numFraction
	}
	if int64(len(hi)+len(lo))+scale > 19 {
		return 0, numOverflow
	}
	var n uint64 // < 10^19 < 2^64 by the check above
	for _, c := range hi {
		n = n*10 + uint64(c-'0')
	}
	for _, c := range lo {
		n = n*10 + uint64(c-'0')
	}
	for ; scale > 0; scale-- {
		n *= 10
	}
	if n > math.MaxInt64 {
		return 0, numOverflow
	}
	if neg {
		return 0, numNegative
	}
	return int64(n), numOK
}

// parseCost reads JSON number text as a finite, non-negative float64.
func parseCost(b []byte) (float64, numResult) {
	// The conversion does not allocate: ParseFloat copies its argument only
	// into the error it returns.
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		// Only ErrRange is possible after the grammar check; an underflow
		// returns a nil error and 0, which is right for a cost.
		return 0, numOverflow
	}
	if f < 0 {
		return 0, numNegative
	}
	return f + 0, numOK // + 0 turns -0 into 0
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func trimLeftZeros(b []byte) []byte {
	for len(b) > 0 && b[0] == '0' {
		b = b[1:]
	}
	return b
}

func trimRightZeros(b []byte) []byte {
	for len(b) > 0 && b[len(b)-1] == '0' {
		b = b[:len(b)-1]
	}
	return b
}

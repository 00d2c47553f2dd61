package schemas

import "errors"

// Reason classifies why a record was rejected. It is short and stable because
// it becomes a dead-letter header and a metric tag.
type Reason string

const (
	ReasonInvalidJSON  Reason = "invalid_json"
	ReasonMissingField Reason = "missing_field"
	ReasonWrongType    Reason = "wrong_type"
	ReasonInvalidValue Reason = "invalid_value"
)

// DecodeError says which field of a record is wrong and how. It never quotes
// the record: records carry user content, and errors end up in logs and
// dead-letter headers. Field and Detail are always text of this package.
type DecodeError struct {
	Reason Reason
	// Field is the JSON path of the offending field ("metadata.org_id"), or ""
	// when the record as a whole is at fault.
	Field  string
	Detail string
}

func (e *DecodeError) Error() string {
	field := e.Field
	if field == "" {
		field = "record"
	}
	msg := "schemas: " + field + ": " + e.Reason.text()
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (r Reason) text() string {
	switch r {
	case ReasonInvalidJSON:
		return "invalid JSON"
	case ReasonMissingField:
		return "missing required field"
	case ReasonWrongType:
		return "wrong type"
	case ReasonInvalidValue:
		return "invalid value"
	}
	return string(r)
}

// ReasonOf returns the Reason of a decode error anywhere in err's chain, or
// "" when err is not one, so callers can tag dead letters without errors.As
// boilerplate.
func ReasonOf(err error) Reason {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Reason
	}
	return ""
}

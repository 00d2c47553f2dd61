package sink

import "fmt"

// Secret is a Datadog API or application key. Every way Go has of printing a
// value prints "<secret>" instead, so that a key cannot reach a log line, an
// error string, a metric or the /status page by accident: only the code that
// sets the DD-API-KEY header reads the value, with string(s).
type Secret string

const redacted = "<secret>"

// String implements fmt.Stringer.
func (Secret) String() string { return redacted }

// GoString implements fmt.GoStringer, for %#v.
func (Secret) GoString() string { return redacted }

// Format implements fmt.Formatter: every verb (%s, %v, %q, %x, %d...) prints
// the placeholder, where String alone would leave %x and %q to print the key.
func (Secret) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON implements json.Marshaler.
func (Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler (also used by YAML encoders
// and by zap's reflection-based encoder).
func (Secret) MarshalText() ([]byte, error) { return []byte(redacted), nil }

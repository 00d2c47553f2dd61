package schemas

import _ "embed"

//go:embed gateway-record.schema.json
var jsonSchema string

// JSONSchema returns the record's JSON Schema (draft 2020-12), published for
// the gateway's owners and other consumers. It describes the rules Decode
// enforces; the tests hold both to the same samples. The result is a fresh
// copy the caller may keep or change.
func JSONSchema() []byte { return []byte(jsonSchema) }

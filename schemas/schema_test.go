package schemas

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// compileSchema compiles the published schema, asserting formats (date-time)
// as the decoder does; compiling also checks it against the draft 2020-12
// meta-schema.
func compileSchema(t testing.TB) *jsonschema.Schema {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(JSONSchema()))
	if err != nil {
		t.Fatalf("schema is not JSON: %v", err)
	}
	const url = "https://github.com/futureagi/prism-exporter/schemas/gateway-record.schema.json"
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	if err := c.AddResource(url, doc); err != nil {
		t.Fatal(err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		t.Fatalf("schema does not compile: %v", err)
	}
	return sch
}

// schemaAccepts validates one record. Input that is not JSON at all (the
// empty line, "not json") never reaches the validator: it reports false.
func schemaAccepts(sch *jsonschema.Schema, data []byte) bool {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return false
	}
	return sch.Validate(v) == nil
}

func TestSchemaIsDraft202012(t *testing.T) {
	var top struct {
		Schema string `json:"$schema"`
	}
	if err := json.Unmarshal(JSONSchema(), &top); err != nil {
		t.Fatal(err)
	}
	if top.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %q", top.Schema)
	}
	// JSONSchema hands out copies.
	b := JSONSchema()
	b[0] = 'x'
	if JSONSchema()[0] == 'x' {
		t.Error("JSONSchema returned shared memory")
	}
}

func TestSchemaAcceptsSamples(t *testing.T) {
	sch := compileSchema(t)
	for _, s := range sampleLines(t, goodFile) {
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(s.data))
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if err := sch.Validate(v); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
}

func TestSchemaRejectsMalformed(t *testing.T) {
	sch := compileSchema(t)
	for _, s := range sampleLines(t, badFile) {
		if schemaAccepts(sch, s.data) {
			t.Errorf("%s: schema accepts a malformed record", s)
		}
	}
}

// The schema and the decoder must agree on every rule the schema can
// express.
func TestSchemaAgreesWithDecoder(t *testing.T) {
	sch := compileSchema(t)
	for _, c := range ruleCases() {
		if c.decoderOnly {
			continue
		}
		want := c.reason == ""
		if got := schemaAccepts(sch, []byte(c.in)); got != want {
			t.Errorf("%s: schema accepts=%v, decoder accepts=%v", c.name, got, want)
		}
	}
}

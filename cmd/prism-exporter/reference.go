package main

import (
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
)

// envVar is one PRISM_* variable as the settings struct declares it.
type envVar struct {
	Name     string `json:"name"`
	Default  string `json:"default"`
	Required bool   `json:"required"`
	Meaning  string `json:"meaning"`
	Type     string `json:"type"`
}

// envReference lists the variables in the order settings declares them. It
// reads the same tags envconfig parses (envconfig, default, required, and
// desc, envconfig's own tag for descriptions), so the reference cannot drift
// from what the exporter reads.
func envReference() []envVar {
	var out []envVar
	t := reflect.TypeFor[settings]()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || f.Tag.Get("ignored") == "true" {
			continue // envconfig skips these too
		}
		key := f.Tag.Get("envconfig")
		if key == "" {
			key = strings.ToUpper(f.Name) // envconfig's name for an untagged field
		}
		def, hasDefault := f.Tag.Lookup("default")
		if !hasDefault && f.Type.Kind() == reflect.Bool {
			def = "false" // what an unset bool means, so the tables can say it
		}
		out = append(out, envVar{
			Name:     "PRISM_" + key,
			Default:  def,
			Required: f.Tag.Get("required") == "true",
			Meaning:  f.Tag.Get("desc"),
			Type:     typeName(f.Type),
		})
	}
	return out
}

// typeName says what kind of value a variable takes, in the user's terms.
func typeName(t reflect.Type) string {
	switch {
	case t.String() == "time.Duration":
		return "duration"
	case t.Kind() == reflect.Slice:
		return "list"
	case t.Kind() == reflect.Bool:
		return "bool"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "integer"
	}
	return "string"
}

// runConfig prints the reference: text by default, the README's table rows
// with --markdown, or JSON with --json (for the deployment tests, which check
// every PRISM_* variable a manifest sets against it).
func runConfig(args []string, out, errOut io.Writer) int {
	format := "text"
	if len(args) == 1 {
		format = strings.TrimLeft(args[0], "-")
	}
	switch {
	case len(args) > 1:
	case format == "text":
		writeReference(out)
		return 0
	case format == "markdown":
		writeMarkdown(out)
		return 0
	case format == "json":
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(envReference()); err != nil {
			fmt.Fprintln(errOut, err)
			return 1
		}
		return 0
	}
	fmt.Fprintln(errOut, "usage: prism-exporter config [--markdown|--json]")
	return 2
}

func writeReference(w io.Writer) {
	fmt.Fprintln(w, "Configuration (environment variables; a bad value stops start-up with a message naming the variable):")
	for _, v := range envReference() {
		switch {
		case v.Required:
			fmt.Fprintf(w, "\n  %s (%s, required)\n", v.Name, v.Type)
		case v.Default != "":
			fmt.Fprintf(w, "\n  %s (%s, default %s)\n", v.Name, v.Type, v.Default)
		default:
			fmt.Fprintf(w, "\n  %s (%s)\n", v.Name, v.Type)
		}
		fmt.Fprintf(w, "      %s\n", v.Meaning)
	}
}

// writeMarkdown prints the rows of README.md's configuration table.
func writeMarkdown(w io.Writer) {
	// Variable names, HTTP paths and 'quoted' words show as code: a struct
	// tag cannot hold the backticks itself.
	codeWords := regexp.MustCompile(`\b(PRISM_[A-Z0-9_]+|GOMEMLIMIT)\b|(/[a-z]+)\b`)
	quoted := regexp.MustCompile(`(^|[\s(])'([^'\s]+)'`)
	fmt.Fprintln(w, "| variable | default | meaning |")
	fmt.Fprintln(w, "|---|---|---|")
	for _, v := range envReference() {
		def := " "
		switch {
		case v.Required:
			def = " required "
		case v.Default != "":
			def = " `" + v.Default + "` "
		}
		meaning := quoted.ReplaceAllString(codeWords.ReplaceAllString(v.Meaning, "`$0`"), "$1`$2`")
		fmt.Fprintf(w, "| `%s` |%s| %s |\n", v.Name, def, meaning)
	}
}

// usage is what -h prints: the commands, then every variable.
func usage(w io.Writer) int {
	fmt.Fprint(w, `usage: prism-exporter [command]

  (none)        run the exporter, configured by the PRISM_* variables below
  demo          run it on embedded defaults: an in-process Kafka broker fed
                with generated traffic and a local Datadog stand-in (demo -h)
  fake-datadog  serve the local Datadog stand-in (docker compose)
  healthcheck URL
                exit 0 when URL answers 200 (container probes)
  config [--markdown|--json]
                print the variables below, or README.md's table, or JSON
  version       print the version

`)
	writeReference(w)
	return 0
}

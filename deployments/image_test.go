package deployments

import (
	"debug/buildinfo"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The binary build.sh made (the image's) is static, built with -trimpath,
// and prints the version it was stamped with.
func TestImageBinary(t *testing.T) {
	ex := fixture(t)
	out, err := exec.Command(ex.bin, "version").Output()
	if err != nil {
		t.Fatalf("prism-exporter version: %v", err)
	}
	if !strings.HasPrefix(string(out), "prism-exporter "+testVersion+" ") {
		t.Errorf("prism-exporter version printed %q, want the stamped %s", out, testVersion)
	}

	info, err := buildinfo.ReadFile(ex.bin)
	if err != nil {
		t.Fatal(err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	for k, want := range map[string]string{"CGO_ENABLED": "0", "-trimpath": "true"} {
		if settings[k] != want {
			t.Errorf("built with %s=%q, want %q", k, settings[k], want)
		}
	}

	f, err := elf.Open(ex.bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("the binary asks for a dynamic loader: not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("the binary links %v: not static", libs)
	}
}

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
}

func parseDockerfile(text string) []instruction {
	var out []instruction
	var cur strings.Builder
	for line := range strings.SplitSeq(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if more, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(more + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		out = append(out, instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args)})
		cur.Reset()
	}
	return out
}

// checkDockerfile: a build stage that runs build.sh with the version, then a
// distroless or scratch stage that runs the exporter as a numeric non-root
// user (numeric, so that Kubernetes' runAsNonRoot can check it).
func checkDockerfile(text string) []error {
	var errs []error
	var stages [][]instruction
	for _, in := range parseDockerfile(text) {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) > 0 {
			stages[len(stages)-1] = append(stages[len(stages)-1], in)
		}
	}
	if len(stages) < 2 {
		return []error{fmt.Errorf("want a build stage and a runtime stage, got %d stages", len(stages))}
	}
	built := false
	for _, st := range stages[:len(stages)-1] {
		for _, in := range st {
			if in.cmd == "RUN" && regexp.MustCompile(`deployments/build\.sh \S+ "?\$\{?VERSION\}?"?`).MatchString(in.args) {
				built = true
			}
		}
	}
	if !built {
		errs = append(errs, fmt.Errorf("no build stage runs deployments/build.sh with $VERSION"))
	}
	final := stages[len(stages)-1]
	base := strings.Fields(final[0].args)[0]
	if !strings.Contains(base, "distroless/static") && base != "scratch" {
		errs = append(errs, fmt.Errorf("the runtime stage is FROM %s, not distroless static or scratch", base))
	}
	user := ""
	entry := ""
	for _, in := range final {
		switch in.cmd {
		case "USER":
			user = in.args
		case "ENTRYPOINT":
			entry = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		errs = append(errs, fmt.Errorf("the runtime stage's USER is %q, want a numeric non-root uid", user))
	}
	if !strings.Contains(entry, "prism-exporter") {
		errs = append(errs, fmt.Errorf("the entrypoint %s is not the exporter", entry))
	}
	return errs
}

func TestDockerfile(t *testing.T) {
	text, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkDockerfile(string(text)) {
		t.Error(err)
	}
	for _, c := range []struct{ name, old, new string }{
		{"root user", "USER 65532:65532", "USER 0"},
		{"named user", "USER 65532:65532", "USER nonroot"},
		{"full OS base", "FROM gcr.io/distroless/static-debian12:nonroot", "FROM debian:12"},
		{"unstamped build", `RUN sh deployments/build.sh /out "$VERSION"`, "RUN go build -o /out/prism-exporter ./cmd/prism-exporter"},
	} {
		if !strings.Contains(string(text), c.old) {
			t.Fatalf("%s: the Dockerfile has no %q to change", c.name, c.old)
		}
		if len(checkDockerfile(strings.Replace(string(text), c.old, c.new, 1))) == 0 {
			t.Errorf("%s: a Dockerfile with %q passed", c.name, c.new)
		}
	}
}

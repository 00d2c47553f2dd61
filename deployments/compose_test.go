package deployments

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads dir/docker-compose.yml with the Compose specification's
// own loader, which validates it against the specification's schema.
func loadCompose(dir string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithInterpolation(true))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// checkCompose holds the compose file to the exporter and to itself.
func checkCompose(ex *exporter, p *types.Project) []error {
	var errs []error
	errorf := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	svc := func(name string) types.ServiceConfig {
		s, ok := p.Services[name]
		if !ok {
			errorf("no service %s", name)
		}
		return s
	}
	env := func(s types.ServiceConfig, name string) string {
		if v := s.Environment[name]; v != nil {
			return *v
		}
		return ""
	}

	// Kafka in KRaft mode: one node that is broker and controller, no ZooKeeper.
	kafka := svc("kafka")
	roles := strings.Split(env(kafka, "KAFKA_PROCESS_ROLES"), ",")
	if !slices.Contains(roles, "broker") || !slices.Contains(roles, "controller") || env(kafka, "KAFKA_CONTROLLER_QUORUM_VOTERS") == "" {
		errorf("kafka: not a KRaft broker and controller (KAFKA_PROCESS_ROLES %v)", roles)
	}
	if env(kafka, "KAFKA_ZOOKEEPER_CONNECT") != "" {
		errorf("kafka: configured for ZooKeeper")
	}

	exp := svc("exporter")
	value := func(name string) string {
		if v := exp.Environment[name]; v != nil {
			return *v
		}
		return ex.vars[name].Default
	}
	for name := range exp.Environment {
		if strings.HasPrefix(name, "PRISM_") {
			if _, ok := ex.vars[name]; !ok {
				errorf("exporter: %s is not a variable the exporter reads (prism-exporter config lists them)", name)
			}
		}
	}
	for name, v := range ex.vars {
		if v.Required && exp.Environment[name] == nil {
			errorf("exporter: %s is required and not set", name)
		}
	}
	// The API and console are on, with demo-only files.
	for _, name := range []string{"PRISM_API_TOKENS_FILE", "PRISM_SECRETS_KEY_FILE"} {
		if src := mountedFrom(exp, value(name)); !strings.HasPrefix(filepath.Base(src), "demo-") {
			errorf("exporter: %s should be a mounted deployments/compose/demo-* file, is %q from %q", name, value(name), src)
		}
	}
	for name := range exp.Environment {
		if !strings.HasPrefix(name, "PRISM_") || !strings.HasSuffix(name, "_FILE") {
			continue
		}
		src := mountedFrom(exp, value(name))
		if src == "" {
			errorf("exporter: %s=%s is not mounted into the container", name, value(name))
			continue
		}
		if _, err := os.Stat(src); err != nil {
			errorf("exporter: %s comes from %s: %v", name, src, err)
		}
	}
	if hc := exp.HealthCheck; hc == nil || !strings.Contains(strings.Join(hc.Test, " "), "/readyz") {
		errorf("exporter: the healthcheck does not ask /readyz")
	}
	drain, err := time.ParseDuration(value("PRISM_DRAIN_TIMEOUT"))
	if err != nil {
		errorf("exporter: PRISM_DRAIN_TIMEOUT: %v", err)
	}
	if g := exp.StopGracePeriod; g == nil || time.Duration(*g) <= drain+5*time.Second {
		errorf("exporter: stop_grace_period must exceed PRISM_DRAIN_TIMEOUT (%s) + 5s", drain)
	}
	if u, err := url.Parse(value("PRISM_DATADOG_URL")); err != nil || p.Services[u.Hostname()].Name == "" {
		errorf("exporter: PRISM_DATADOG_URL %q is not a service of this file (the local Datadog)", value("PRISM_DATADOG_URL"))
	}

	// The traffic generator writes where the exporter reads, and the topics
	// service creates what the exporter reads and dead-letters to.
	gen := strings.Join(svc("trafficgen").Command, " ")
	if !strings.Contains(gen, "--topic "+value("PRISM_KAFKA_TOPIC")+" ") || !strings.Contains(gen, "--brokers "+value("PRISM_KAFKA_BROKERS")+" ") {
		errorf("trafficgen: %q does not write to the exporter's topic %s on %s", gen, value("PRISM_KAFKA_TOPIC"), value("PRISM_KAFKA_BROKERS"))
	}
	topics := strings.Join(svc("topics").Command, " ")
	for _, name := range []string{"PRISM_KAFKA_TOPIC", "PRISM_DLQ_TOPIC"} {
		if !strings.Contains(topics, value(name)) {
			errorf("topics: does not create %s (%s)", value(name), name)
		}
	}
	return errs
}

// mountedFrom is the host file mounted at target, or "".
func mountedFrom(s types.ServiceConfig, target string) string {
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == target {
			return v.Source
		}
	}
	return ""
}

func TestCompose(t *testing.T) {
	p, err := loadCompose(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range checkCompose(fixture(t), p) {
		t.Error(err)
	}
}

// composeCopy copies docker-compose.yml and the files it mounts into a
// temporary directory, with one edit.
func composeCopy(t *testing.T, old, new string) string {
	t.Helper()
	dir := t.TempDir()
	data, err := os.ReadFile(filepath.Join(repoRoot, "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), old) {
		t.Fatalf("docker-compose.yml has no %q to change", old)
	}
	data = []byte(strings.Replace(string(data), old, new, 1))
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(dir, "deployments", "compose"), os.DirFS(filepath.Join(repoRoot, "deployments", "compose"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestComposeBrokenCopies(t *testing.T) {
	for _, c := range []struct{ name, old, new, want string }{
		{"misspelt key", "    environment:\n      PRISM_KAFKA_BROKERS", "    enviroment:\n      PRISM_KAFKA_BROKERS", "enviroment"},
		{"unknown PRISM_ variable", "PRISM_ALLOWED_LATENESS:", "PRISM_ALLOWED_LATENES:", "PRISM_ALLOWED_LATENES is not a variable"},
		{"file variable not mounted", ":/etc/prism/demo-secrets.key:ro", ":/etc/prism/secrets.key:ro", "PRISM_SECRETS_KEY_FILE"},
		{"Kafka without its controller", "KAFKA_PROCESS_ROLES: broker,controller", "KAFKA_PROCESS_ROLES: broker", "KRaft"},
		{"healthcheck on a path that is not readiness", "http://127.0.0.1:8080/readyz", "http://127.0.0.1:8080/ready", "/readyz"},
		{"traffic to another topic", `"--topic", "prism.gateway.events"`, `"--topic", "prism.gateway.event"`, "trafficgen"},
		{"stop grace below the drain", "stop_grace_period: 30s", "stop_grace_period: 12s", "stop_grace_period"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := loadCompose(composeCopy(t, c.old, c.new))
			errs := []error{err}
			if err == nil {
				errs = checkCompose(fixture(t), p)
			}
			for _, err := range errs {
				if err != nil && strings.Contains(err.Error(), c.want) {
					return
				}
			}
			t.Errorf("no error mentions %q; got %v", c.want, errs)
		})
	}
}

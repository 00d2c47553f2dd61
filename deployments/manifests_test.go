package deployments

import (
	"strings"
	"testing"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// verify renders dir of mem, decodes every object strictly and
// cross-checks them; it returns every problem found.
func verify(t *testing.T, mem filesys.FileSystem, dir string) []error {
	t.Helper()
	objs, err := render(mem, dir)
	if err != nil {
		return []error{err}
	}
	b, errs := load(newDecoder(t), objs)
	return append(errs, crossCheck(fixture(t), loadDocs(t), b)...)
}

func TestKustomizations(t *testing.T) {
	// The kustomizations, as an operator would apply them. The HPA
	// component is tried on the base, through a kustomization written here.
	kustomizations := []struct {
		name, dir string
		write     map[string]string
	}{
		{name: "base", dir: "/kubernetes/base"},
		{name: "production", dir: "/kubernetes/overlays/production"},
		{name: "base with the HPA component", dir: "/kubernetes/overlays/hpa-test", write: map[string]string{
			"/kubernetes/overlays/hpa-test/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\ncomponents: [../../components/hpa]\n",
		}},
	}
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			mem := manifestsFS(t)
			for path, text := range k.write {
				if err := mem.WriteFile(path, []byte(text)); err != nil {
					t.Fatal(err)
				}
			}
			for _, err := range verify(t, mem, k.dir) {
				t.Error(err)
			}
		})
	}
}

// Each check must catch what it is there for: every case breaks one thing in
// a copy of the manifests and expects an error that says so.
func TestKustomizationsBrokenCopies(t *testing.T) {
	const (
		dep  = "/kubernetes/base/deployment.yaml"
		so   = "/kubernetes/base/scaledobject.yaml"
		base = "/kubernetes/base"
		prod = "/kubernetes/overlays/production"
	)
	cases := []struct {
		name, dir, file, old, new, want string
	}{
		{"misspelt Deployment field", base, dep, "readinessProbe:", "readynessProbe:", `unknown field "spec.template.spec.containers[0].readynessProbe"`},
		{"misspelt ScaledObject field", base, so, "maxReplicaCount: 6", "maxReplicasCount: 6", "maxReplicasCount"},
		{"misspelt PodMonitor field", base, "/kubernetes/base/podmonitor.yaml", "podMetricsEndpoints:", "podMetricEndpoints:", "podMetricEndpoints"},
		{"misspelt PrometheusRule field", base, "/kubernetes/base/prometheusrule.yaml", "  groups:", "  group:", "group"},
		{"misspelt metadata field", base, so, "  annotations:", "  anotations:", "anotations"},
		{"Service selecting nothing", base, "/kubernetes/base/service.yaml", "selector: {app.kubernetes.io/name: prism-exporter}", "selector: {app.kubernetes.io/name: prism-exporte}", "selects no pod"},
		{"PDB selecting nothing", base, "/kubernetes/base/pdb.yaml", "matchLabels: {app.kubernetes.io/name: prism-exporter}", "matchLabels: {app: prism-exporter}", "selects no exporter pod"},
		{"Service port that is no container port", base, "/kubernetes/base/service.yaml", "targetPort: api", "targetPort: apis", "port apis is not a port"},
		{"NetworkPolicy port that is no container port", base, "/kubernetes/base/networkpolicy.yaml", "{port: api, protocol: TCP}", "{port: apl, protocol: TCP}", "port apl is not a port"},
		{"unknown PRISM_ variable", base, dep, "name: PRISM_ALLOWED_LATENESS,", "name: PRISM_ALLOWED_LATENES,", "PRISM_ALLOWED_LATENES is not a variable"},
		{"probe path the exporter does not serve", base, dep, "path: /readyz", "path: /ready", "answers 404 at /ready"},
		{"metrics path the exporter does not serve", base, "/kubernetes/base/podmonitor.yaml", "path: /metrics", "path: /metric", "at /metric"},
		{"grace period below the drain", base, dep, "terminationGracePeriodSeconds: 30", "terminationGracePeriodSeconds: 14", "terminationGracePeriodSeconds"},
		{"memory limit under the heap limit", base, dep, "limits: {memory: 384Mi}", "limits: {memory: 200Mi}", "soft limit"},
		{"writable root filesystem", base, dep, "readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", "read-only"},
		{"file variable outside every mount", base, dep, "value: /etc/prism/tenants/tenants.yaml", "value: /etc/prism/tenant/tenants.yaml", "in no mounted volume"},
		{"file variable naming no Secret key", base, dep, "value: /etc/prism/secrets-key/key", "value: /etc/prism/secrets-key/keys", "without keys"},
		{"replicas beside the autoscaler", base, dep, "  revisionHistoryLimit: 5", "  replicas: 2\n  revisionHistoryLimit: 5", "replicas is set"},
		{"more replicas than partitions", base, so, "maxReplicaCount: 6", "maxReplicaCount: 8", "more than the topic's 6 partitions"},
		{"KEDA parameter misspelt", base, so, "lagThreshold:", "lagTreshold:", `"lagTreshold" is not a metadata parameter`},
		{"KEDA watching another group", base, so, "consumerGroup: prism-exporter", "consumerGroup: prism-exporter-2", "consumerGroup is"},
		{"runbook link to no section", base, "/kubernetes/base/prometheusrule.yaml", "#prismexporterdeadletters", "#prismexporterdeadletter", "not a section"},
		{"egress without Datadog", base, "/kubernetes/base/networkpolicy.yaml", "{port: 443, protocol: TCP}", "{port: 8443, protocol: TCP}", "no egress to TCP/443"},
		{"egress to another Kafka port", prod, "/kubernetes/overlays/production/networkpolicy.yaml", "{port: 9096, protocol: TCP}", "{port: 9092, protocol: TCP}", "no egress to TCP/9096"},
		{"KEDA without the exporter's SASL", prod, "/kubernetes/overlays/production/scaledobject.yaml", "        sasl: scram_sha512\n", "", "sasl is"},
		{"Secret key not documented", prod, "/kubernetes/overlays/production/deployment.yaml", "key: password}", "key: passwd}", "key passwd is not in docs/operations.md"},
		{"KEDA authentication parameter misspelt", prod, "/kubernetes/overlays/production/triggerauthentication.yaml", "{parameter: password,", "{parameter: passwd,", `"passwd" is not a parameter`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mem := manifestsFS(t)
			edit(t, mem, c.file, c.old, c.new)
			errs := verify(t, mem, c.dir)
			for _, err := range errs {
				if strings.Contains(err.Error(), c.want) {
					return
				}
			}
			t.Errorf("no error mentions %q; got %v", c.want, errs)
		})
	}
}

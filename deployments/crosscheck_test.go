package deployments

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// partitionsAnnotation states the topic's partition count on an autoscaler,
// so that its maximum can be held to it.
const partitionsAnnotation = "prism-exporter/topic-partitions"

// docs is what the manifests are checked against besides the exporter.
type docs struct {
	anchors map[string]bool // of docs/operations.md's headings
	secrets []string        // the lines of its Secrets section
	keda    map[string]map[string]bool
}

func loadDocs(t *testing.T) docs {
	t.Helper()
	ops, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	d := docs{anchors: map[string]bool{}, keda: map[string]map[string]bool{}}
	inSecrets := false
	for line := range strings.SplitSeq(string(ops), "\n") {
		if strings.HasPrefix(line, "#") {
			heading := strings.TrimSpace(strings.TrimLeft(line, "#"))
			d.anchors[anchor(heading)] = true
			inSecrets = heading == "Secrets"
			continue
		}
		if inSecrets {
			d.secrets = append(d.secrets, line)
		}
	}
	params, err := os.ReadFile("testdata/crds/keda-kafka-scaler-parameters.txt")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(params), "\n") {
		name, where, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		d.keda[name] = map[string]bool{}
		for w := range strings.SplitSeq(where, ";") {
			d.keda[name][w] = true
		}
	}
	return d
}

// anchor is the fragment GitHub gives a Markdown heading.
func anchor(heading string) string {
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	return strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(heading), ""), " ", "-")
}

// checker cross-checks one rendered kustomization.
type checker struct {
	ex   *exporter
	docs docs
	b    *bundle
	errs []error
}

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Errorf(format, args...))
}

// crossCheck holds the objects to each other, to the exporter and to the
// docs: selectors select pods, named ports exist, probe paths answer, every
// PRISM_* variable is one the exporter reads, and the rest of what the
// manifests' comments promise.
func crossCheck(ex *exporter, d docs, b *bundle) []error {
	c := &checker{ex: ex, docs: d, b: b}
	if len(b.deployments) != 1 {
		c.errorf("want exactly one Deployment, got %d", len(b.deployments))
		return c.errs
	}
	dep := b.deployments[0]
	autoscaled := len(b.scaledObjects)+len(b.hpas) > 0
	if !autoscaled {
		c.errorf("nothing scales the Deployment (no ScaledObject, no HorizontalPodAutoscaler)")
	}
	if len(b.scaledObjects) > 0 && len(b.hpas) > 0 {
		c.errorf("both KEDA and a HorizontalPodAutoscaler scale the Deployment")
	}
	c.deployment(dep, autoscaled)
	for _, s := range b.services {
		sel := labels.SelectorFromSet(s.Spec.Selector)
		if len(s.Spec.Selector) == 0 || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
			c.errorf("Service/%s: selector %v selects no pod", s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			c.port(fmt.Sprintf("Service/%s port %s", s.Name, p.Name), dep, p.TargetPort)
		}
	}
	if len(b.podMonitors) == 0 {
		c.errorf("no PodMonitor: nothing scrapes the exporter")
	}
	for _, pm := range b.podMonitors {
		what := "PodMonitor/" + pm.Metadata.Name
		c.selects(what, &pm.Spec.Selector, dep)
		for _, e := range pm.Spec.Endpoints {
			c.port(what, dep, intstr.FromString(e.Port))
			c.served(what, e.Path)
		}
	}
	for _, p := range b.pdbs {
		c.selects("PodDisruptionBudget/"+p.Name, p.Spec.Selector, dep)
	}
	for _, np := range b.netpols {
		what := "NetworkPolicy/" + np.Name
		c.selects(what, &np.Spec.PodSelector, dep)
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if p.Port != nil {
					c.port(what+" ingress", dep, *p.Port)
				}
			}
		}
		c.egress(what, np, dep.Spec.Template.Spec.Containers[0])
	}
	for _, so := range b.scaledObjects {
		c.scaledObject(so, dep)
	}
	for _, h := range b.hpas {
		what := "HorizontalPodAutoscaler/" + h.Name
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != dep.Name {
			c.errorf("%s: scales %s/%s, not Deployment/%s", what, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name, dep.Name)
		}
		c.atMostPartitions(what, h.Annotations, h.Spec.MaxReplicas)
	}
	for _, ta := range b.triggerAuths {
		for _, r := range ta.Spec.SecretTargetRef {
			if !c.docs.keda[r.Parameter]["authParams"] {
				c.errorf("TriggerAuthentication/%s: %q is not a parameter of KEDA's Kafka scaler's authentication", ta.Metadata.Name, r.Parameter)
			}
			c.secretDocumented("TriggerAuthentication/"+ta.Metadata.Name, r.Name, r.Key)
		}
	}
	for _, r := range b.rules {
		c.runbooks(r)
	}
	return c.errs
}

func (c *checker) deployment(dep *appsv1.Deployment, autoscaled bool) {
	what := "Deployment/" + dep.Name
	c.selects(what, dep.Spec.Selector, dep)
	if autoscaled && dep.Spec.Replicas != nil {
		c.errorf("%s: replicas is set while an autoscaler owns the count; every apply would reset it", what)
	}
	pod := dep.Spec.Template.Spec
	if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
		c.errorf("%s: the pod does not require a non-root user (runAsNonRoot)", what)
	}
	if len(pod.Containers) != 1 {
		c.errorf("%s: want one container, got %d", what, len(pod.Containers))
		return
	}
	ct := pod.Containers[0]
	c.env(what, ct, pod.Volumes)
	c.containerSecurity(what, ct)
	c.probes(what, dep, ct)
	c.resources(what, ct)

	// The grace period must cover the drain and the sink's close (5 s).
	drain, err := time.ParseDuration(c.value(ct, "PRISM_DRAIN_TIMEOUT"))
	if err != nil {
		c.errorf("%s: PRISM_DRAIN_TIMEOUT: %v", what, err)
	}
	if g := pod.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= drain+5*time.Second {
		c.errorf("%s: terminationGracePeriodSeconds must exceed PRISM_DRAIN_TIMEOUT (%s) + 5s", what, drain)
	}
}

// value is what the exporter in ct sees for name: its env value, or the
// exporter's default.
func (c *checker) value(ct corev1.Container, name string) string {
	for _, e := range ct.Env {
		if e.Name == name && e.ValueFrom == nil {
			return e.Value
		}
	}
	return c.ex.vars[name].Default
}

func (c *checker) env(what string, ct corev1.Container, volumes []corev1.Volume) {
	seen := map[string]bool{}
	for _, e := range ct.Env {
		if seen[e.Name] {
			c.errorf("%s: %s is set twice", what, e.Name)
		}
		seen[e.Name] = true
		if !strings.HasPrefix(e.Name, "PRISM_") {
			continue
		}
		if _, ok := c.ex.vars[e.Name]; !ok {
			c.errorf("%s: %s is not a variable the exporter reads (prism-exporter config lists them)", what, e.Name)
		}
		if ref := e.ValueFrom; ref != nil && ref.SecretKeyRef != nil {
			c.secretDocumented(what+" "+e.Name, ref.SecretKeyRef.Name, ref.SecretKeyRef.Key)
		}
		if strings.HasSuffix(e.Name, "_FILE") && e.ValueFrom == nil {
			c.mounted(what+" "+e.Name, e.Value, ct, volumes)
		}
	}
	for name, v := range c.ex.vars {
		if v.Required && !seen[name] {
			c.errorf("%s: %s is required and not set", what, name)
		}
	}
}

// mounted checks that file lies in a volume mounted into ct, and is a key of
// that volume's Secret when the volume lists its keys.
func (c *checker) mounted(what, file string, ct corev1.Container, volumes []corev1.Volume) {
	for _, m := range ct.VolumeMounts {
		rel, ok := strings.CutPrefix(file, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		for _, v := range volumes {
			if v.Name != m.Name {
				continue
			}
			if v.Secret == nil {
				return
			}
			if len(v.Secret.Items) == 0 {
				c.secretDocumented(what, v.Secret.SecretName, rel)
				return
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					c.secretDocumented(what, v.Secret.SecretName, it.Key)
					return
				}
			}
			c.errorf("%s: %s: Secret %s is mounted at %s without %s among its items", what, file, v.Secret.SecretName, m.MountPath, rel)
			return
		}
		c.errorf("%s: volume mount %s names no volume", what, m.Name)
		return
	}
	c.errorf("%s: %s is in no mounted volume", what, file)
}

// secretDocumented checks that docs/operations.md's Secrets section names
// the Secret and key, so that an operator knows to create them.
func (c *checker) secretDocumented(what, secret, key string) {
	for _, line := range c.docs.secrets {
		if strings.Contains(line, "`"+secret+"`") && strings.Contains(line, "`"+key+"`") {
			return
		}
	}
	c.errorf("%s: Secret %s key %s is not in docs/operations.md#secrets", what, secret, key)
}

func (c *checker) containerSecurity(what string, ct corev1.Container) {
	sc := ct.SecurityContext
	switch {
	case sc == nil:
		c.errorf("%s: no container securityContext", what)
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		c.errorf("%s: allowPrivilegeEscalation is not false", what)
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		c.errorf("%s: the root filesystem is not read-only", what)
	}
}

func (c *checker) probes(what string, dep *appsv1.Deployment, ct corev1.Container) {
	for name, p := range map[string]*corev1.Probe{"liveness": ct.LivenessProbe, "readiness": ct.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			c.errorf("%s: no HTTP %s probe", what, name)
			continue
		}
		c.port(what+" "+name+" probe", dep, p.HTTPGet.Port)
		c.served(what+" "+name+" probe", p.HTTPGet.Path)
	}
}

// served checks that the running exporter answers 200 at path.
func (c *checker) served(what, path string) {
	if code := c.ex.status(context.Background(), path); code != http.StatusOK {
		c.errorf("%s: the exporter answers %d at %s", what, code, path)
	}
}

// resources: the memory limit must hold the heap's soft limit, which the
// exporter sets to PRISM_MEMORY_BUDGET_MIB + 192 MiB, with room to spare.
func (c *checker) resources(what string, ct corev1.Container) {
	budget, err := strconv.ParseInt(c.value(ct, "PRISM_MEMORY_BUDGET_MIB"), 10, 64)
	if err != nil {
		c.errorf("%s: PRISM_MEMORY_BUDGET_MIB: %v", what, err)
		return
	}
	soft := resource.NewQuantity((budget+192)<<20, resource.BinarySI)
	limit, ok := ct.Resources.Limits[corev1.ResourceMemory]
	if !ok || limit.Cmp(*soft) <= 0 {
		c.errorf("%s: memory limit %s does not exceed the heap's soft limit %s", what, limit.String(), soft)
	}
	req, ok := ct.Resources.Requests[corev1.ResourceMemory]
	if !ok || req.Cmp(limit) > 0 {
		c.errorf("%s: memory request %s missing or above the limit", what, req.String())
	}
	if _, ok := ct.Resources.Requests[corev1.ResourceCPU]; !ok {
		c.errorf("%s: no CPU request", what)
	}
}

// port checks that a port reference names a port of the pod's container.
func (c *checker) port(what string, dep *appsv1.Deployment, ref intstr.IntOrString) {
	for _, ct := range dep.Spec.Template.Spec.Containers {
		for _, p := range ct.Ports {
			if (ref.Type == intstr.String && p.Name == ref.StrVal) || (ref.Type == intstr.Int && p.ContainerPort == ref.IntVal) {
				return
			}
		}
	}
	c.errorf("%s: port %s is not a port of the exporter's container", what, ref.String())
}

func (c *checker) selects(what string, sel *metav1.LabelSelector, dep *appsv1.Deployment) {
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil || sel == nil || s.Empty() || !s.Matches(labels.Set(dep.Spec.Template.Labels)) {
		c.errorf("%s: selector %v selects no exporter pod (%v)", what, sel, err)
	}
}

func (c *checker) atMostPartitions(what string, annotations map[string]string, max int32) {
	n, err := strconv.Atoi(annotations[partitionsAnnotation])
	if err != nil {
		c.errorf("%s: annotation %s (the topic's partition count) missing or not a number", what, partitionsAnnotation)
		return
	}
	if int(max) > n {
		c.errorf("%s: at most %d replicas, more than the topic's %d partitions; the rest would idle", what, max, n)
	}
}

// scaledObject checks that KEDA reads the lag of the group and topic the
// exporter consumes, from the same brokers and with the same security.
func (c *checker) scaledObject(so scaledObject, dep *appsv1.Deployment) {
	what := "ScaledObject/" + so.Metadata.Name
	ref := so.Spec.ScaleTargetRef
	if (ref.Kind != "" && ref.Kind != "Deployment") || ref.Name != dep.Name {
		c.errorf("%s: scales %s/%s, not Deployment/%s", what, ref.Kind, ref.Name, dep.Name)
	}
	if so.Spec.MaxReplicaCount == nil {
		c.errorf("%s: no maxReplicaCount", what)
	} else {
		c.atMostPartitions(what, so.Metadata.Annotations, *so.Spec.MaxReplicaCount)
	}
	ct := dep.Spec.Template.Spec.Containers[0]
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "kafka" {
			c.errorf("%s: trigger %q is not KEDA's Kafka scaler", what, tr.Type)
			continue
		}
		for k := range tr.Metadata {
			if !c.docs.keda[k]["triggerMetadata"] {
				c.errorf("%s: %q is not a metadata parameter of KEDA's Kafka scaler", what, k)
			}
		}
		for key, env := range map[string]string{"bootstrapServers": "PRISM_KAFKA_BROKERS", "consumerGroup": "PRISM_KAFKA_GROUP", "topic": "PRISM_KAFKA_TOPIC"} {
			if got, want := tr.Metadata[key], c.value(ct, env); got != want {
				c.errorf("%s: %s is %q, the exporter's %s is %q", what, key, got, env, want)
			}
		}
		wantSASL := map[string]string{"": "", "plain": "plaintext", "scram-sha-256": "scram_sha256", "scram-sha-512": "scram_sha512"}[c.value(ct, "PRISM_KAFKA_SASL_MECHANISM")]
		if got := tr.Metadata["sasl"]; got != wantSASL {
			c.errorf("%s: sasl is %q, the exporter uses %q", what, got, wantSASL)
		}
		if wantSASL != "" && tr.AuthenticationRef == nil {
			c.errorf("%s: the exporter authenticates with SASL, the trigger has no authenticationRef", what)
		}
		tls := c.value(ct, "PRISM_KAFKA_TLS") == "true" || c.value(ct, "PRISM_KAFKA_TLS_CA_FILE") != ""
		if got := tr.Metadata["tls"] == "enable"; got != tls {
			c.errorf("%s: tls enabled is %v, the exporter's is %v", what, got, tls)
		}
		if tr.AuthenticationRef != nil && !c.hasTriggerAuth(tr.AuthenticationRef.Name) {
			c.errorf("%s: authenticationRef %s names no TriggerAuthentication", what, tr.AuthenticationRef.Name)
		}
	}
}

func (c *checker) hasTriggerAuth(name string) bool {
	for _, ta := range c.b.triggerAuths {
		if ta.Metadata.Name == name {
			return true
		}
	}
	return false
}

// runbooks checks that every alert links to a section of docs/operations.md.
func (c *checker) runbooks(r prometheusRule) {
	groups, err := ruleGroups(r.Spec)
	if err != nil {
		c.errorf("PrometheusRule/%s: %v", r.Metadata.Name, err)
		return
	}
	for _, g := range groups {
		for _, rule := range g.Rules {
			url := rule.Annotations["runbook_url"]
			file, frag, _ := strings.Cut(url, "#")
			if path.Base(file) != "operations.md" || !c.docs.anchors[frag] {
				c.errorf("PrometheusRule/%s: alert %s: runbook_url %q is not a section of docs/operations.md", r.Metadata.Name, rule.Alert, url)
			}
		}
	}
}

// egress checks that the policy lets the exporter reach what it needs: DNS,
// every broker of PRISM_KAFKA_BROKERS on its port, and Datadog on 443.
func (c *checker) egress(what string, np *networkingv1.NetworkPolicy, ct corev1.Container) {
	open := map[string]bool{}
	for _, e := range np.Spec.Egress {
		for _, p := range e.Ports {
			proto := corev1.ProtocolTCP
			if p.Protocol != nil {
				proto = *p.Protocol
			}
			if p.Port != nil {
				open[string(proto)+"/"+p.Port.String()] = true
			}
		}
	}
	need := []string{"UDP/53", "TCP/443"}
	for _, b := range strings.Split(c.value(ct, "PRISM_KAFKA_BROKERS"), ",") {
		if _, port, err := net.SplitHostPort(strings.TrimSpace(b)); err == nil {
			need = append(need, "TCP/"+port)
		}
	}
	for _, n := range need {
		if !open[n] {
			c.errorf("%s: no egress to %s (DNS, the brokers of PRISM_KAFKA_BROKERS and Datadog need it)", what, n)
		}
	}
}

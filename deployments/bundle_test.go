package deployments

import (
	"encoding/json"
	"errors"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// bundle is a rendered kustomization, every object decoded.
type bundle struct {
	deployments   []*appsv1.Deployment
	services      []*corev1.Service
	pdbs          []*policyv1.PodDisruptionBudget
	netpols       []*networkingv1.NetworkPolicy
	hpas          []*autoscalingv2.HorizontalPodAutoscaler
	podMonitors   []podMonitor
	rules         []prometheusRule
	scaledObjects []scaledObject
	triggerAuths  []triggerAuthentication
	otherKinds    int // ServiceAccount, Namespace: nothing to cross-check
}

// The custom resources, as far as the cross-checks read them (their CRD's
// schema has already checked every field).
type podMonitor struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port string `json:"port"`
			Path string `json:"path"`
		} `json:"podMetricsEndpoints"`
	} `json:"spec"`
}

type prometheusRule struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     json.RawMessage   `json:"spec"` // a Prometheus rules file: {"groups": [...]}
}

type scaledObject struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		ScaleTargetRef struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		Triggers        []struct {
			Type              string            `json:"type"`
			Metadata          map[string]string `json:"metadata"`
			AuthenticationRef *struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"authenticationRef"`
		} `json:"triggers"`
	} `json:"spec"`
}

type triggerAuthentication struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		SecretTargetRef []struct {
			Parameter string `json:"parameter"`
			Name      string `json:"name"`
			Key       string `json:"key"`
		} `json:"secretTargetRef"`
	} `json:"spec"`
}

// load decodes every object strictly (see decoder) and sorts them by kind.
// An object of a kind nothing here knows is an error too.
func load(d *decoder, objs []object) (*bundle, []error) {
	b := &bundle{}
	var errs []error
	for _, o := range objs {
		typed, err := d.decode(o)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		switch v := typed.(type) {
		case *appsv1.Deployment:
			b.deployments = append(b.deployments, v)
		case *corev1.Service:
			b.services = append(b.services, v)
		case *policyv1.PodDisruptionBudget:
			b.pdbs = append(b.pdbs, v)
		case *networkingv1.NetworkPolicy:
			b.netpols = append(b.netpols, v)
		case *autoscalingv2.HorizontalPodAutoscaler:
			b.hpas = append(b.hpas, v)
		case *corev1.ServiceAccount, *corev1.Namespace:
			b.otherKinds++
		case nil:
			errs = append(errs, b.addCustom(o)...)
		default:
			errs = append(errs, fmt.Errorf("%s: a kind the checks do not know (%T)", o, v))
		}
	}
	return b, errs
}

func (b *bundle) addCustom(o object) []error {
	var err error
	switch o.gvk.Kind {
	case "PodMonitor":
		var v podMonitor
		err = json.Unmarshal(o.json, &v)
		b.podMonitors = append(b.podMonitors, v)
	case "PrometheusRule":
		var v prometheusRule
		err = json.Unmarshal(o.json, &v)
		b.rules = append(b.rules, v)
	case "ScaledObject":
		var v scaledObject
		err = json.Unmarshal(o.json, &v)
		b.scaledObjects = append(b.scaledObjects, v)
	case "TriggerAuthentication":
		var v triggerAuthentication
		err = json.Unmarshal(o.json, &v)
		b.triggerAuths = append(b.triggerAuths, v)
	default:
		err = errors.New("a custom kind the checks do not know")
	}
	if err != nil {
		return []error{fmt.Errorf("%s: %v", o, err)}
	}
	return nil
}

package deployments

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// manifestsFS is an in-memory copy of deployments/kubernetes at /kubernetes,
// so that a test can break a copy without touching the repository.
func manifestsFS(t *testing.T) filesys.FileSystem {
	t.Helper()
	mem := filesys.MakeFsInMemory()
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return mem.WriteFile("/"+filepath.ToSlash(path), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return mem
}

// edit replaces old with new in one file of the copy; old must be there, so
// that a negative test cannot pass by changing nothing.
func edit(t *testing.T, mem filesys.FileSystem, path, old, new string) {
	t.Helper()
	data, err := mem.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(old)) {
		t.Fatalf("%s has no %q to change", path, old)
	}
	if err := mem.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1)); err != nil {
		t.Fatal(err)
	}
}

// object is one rendered resource.
type object struct {
	gvk  schema.GroupVersionKind
	name string
	json []byte
}

func (o object) String() string { return o.gvk.Kind + "/" + o.name }

// render runs kustomize (the library kubectl kustomize is built on) on dir.
func render(mem filesys.FileSystem, dir string) ([]object, error) {
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(mem, dir)
	if err != nil {
		return nil, err
	}
	var out []object
	for _, r := range rm.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, err
		}
		g := r.GetGvk()
		out = append(out, object{gvk: schema.GroupVersionKind{Group: g.Group, Version: g.Version, Kind: g.Kind}, name: r.GetName(), json: data})
	}
	return out, nil
}

// decoder decodes Kubernetes' own kinds strictly: an unknown, misspelt or
// duplicated field is an error, as it is for kubectl apply --validate=strict.
type decoder struct {
	builtin runtime.Decoder
	crds    map[schema.GroupVersionKind]*jsonschema.Schema
}

func newDecoder(t *testing.T) *decoder {
	t.Helper()
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(scheme); err != nil {
			t.Fatal(err)
		}
	}
	return &decoder{
		builtin: serializer.NewCodecFactory(scheme, serializer.EnableStrict).UniversalDeserializer(),
		crds:    loadCRDs(t),
	}
}

// decode returns the typed object for Kubernetes' kinds, or checks a custom
// resource against its CRD's schema and returns nil.
func (d *decoder) decode(o object) (runtime.Object, error) {
	if sch, ok := d.crds[o.gvk]; ok {
		inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(o.json))
		if err != nil {
			return nil, err
		}
		if err := sch.Validate(inst); err != nil {
			return nil, fmt.Errorf("%s: %v", o, err)
		}
		// The CRDs leave metadata open; it is an ObjectMeta all the same.
		var m struct {
			Metadata json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal(o.json, &m); err != nil {
			return nil, err
		}
		if err := strictJSON(m.Metadata, &metav1.ObjectMeta{}); err != nil {
			return nil, fmt.Errorf("%s: metadata: %v", o, err)
		}
		return nil, nil
	}
	obj, _, err := d.builtin.Decode(o.json, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", o, err)
	}
	return obj, nil
}

// strictJSON decodes data into v, refusing fields v does not have.
func strictJSON(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// loadCRDs compiles the OpenAPI schema of every CRD in testdata/crds (the
// KEDA and Prometheus Operator releases' own CRD files) into a JSON Schema.
// A CRD's schema lets unknown fields through (the API server prunes them
// silently), so every object schema is closed here: a misspelt field fails.
func loadCRDs(t *testing.T) map[schema.GroupVersionKind]*jsonschema.Schema {
	t.Helper()
	files, err := filepath.Glob("testdata/crds/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in testdata/crds: %v", err)
	}
	c := jsonschema.NewCompiler()
	urls := map[schema.GroupVersionKind]string{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var crd struct {
			Spec struct {
				Group string `json:"group"`
				Names struct {
					Kind string `json:"kind"`
				} `json:"names"`
				Versions []struct {
					Name   string `json:"name"`
					Served bool   `json:"served"`
					Schema struct {
						OpenAPIV3Schema json.RawMessage `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(data, &crd); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range crd.Spec.Versions {
			if !v.Served {
				continue
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(v.Schema.OpenAPIV3Schema))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			closeSchema(doc)
			gvk := schema.GroupVersionKind{Group: crd.Spec.Group, Version: v.Name, Kind: crd.Spec.Names.Kind}
			url := "file:///crds/" + strings.ToLower(gvk.Kind) + "-" + v.Name + ".json"
			if err := c.AddResource(url, doc); err != nil {
				t.Fatal(err)
			}
			urls[gvk] = url
		}
	}
	out := map[schema.GroupVersionKind]*jsonschema.Schema{}
	for gvk, url := range urls {
		sch, err := c.Compile(url)
		if err != nil {
			t.Fatalf("compiling the schema of %s: %v", gvk, err)
		}
		out[gvk] = sch
	}
	return out
}

// closeSchema sets additionalProperties: false on every object schema that
// lists its properties and does not itself allow unknown fields.
func closeSchema(s any) {
	m, ok := s.(map[string]any)
	if !ok {
		return
	}
	if props, ok := m["properties"].(map[string]any); ok {
		_, open := m["additionalProperties"]
		if !open && m["x-kubernetes-preserve-unknown-fields"] != true {
			m["additionalProperties"] = false
		}
		for _, p := range props {
			closeSchema(p)
		}
	}
	closeSchema(m["items"])
	closeSchema(m["additionalProperties"])
	// allOf, anyOf and oneOf are left open: in a structural schema they only
	// add constraints to properties declared beside them.
}

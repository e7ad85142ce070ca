package kubernetes

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/ladle-dev/ladle/internal/worker"
)

// kustomization is the subset of kustomize's Kustomization we use; decoding
// is strict, so a field we don't know is an error rather than ignored.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace,omitempty"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels,omitempty"`
	Resources []string `json:"resources"`
	Images    []struct {
		Name    string `json:"name"`
		NewName string `json:"newName,omitempty"`
		NewTag  string `json:"newTag,omitempty"`
	} `json:"images,omitempty"`
	Patches []struct {
		Path   string `json:"path,omitempty"`
		Patch  string `json:"patch,omitempty"`
		Target *struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"target,omitempty"`
	} `json:"patches,omitempty"`
}

// object is one decoded manifest.
type object struct {
	file string
	kind string
	name string
	obj  any // a typed k8s.io/api object, or map[string]any for a ScaledObject
}

type meta struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
}

// docs splits a YAML file into its documents.
func docs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(stripComments(d)) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// decode decodes one document strictly into the upstream type for its
// apiVersion and kind.
func decode(t *testing.T, file string, doc []byte) object {
	t.Helper()
	var m meta
	if err := yaml.Unmarshal(doc, &m); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var obj any
	switch m.APIVersion + "/" + m.Kind {
	case "apps/v1/Deployment":
		obj = &appsv1.Deployment{}
	case "v1/Service":
		obj = &corev1.Service{}
	case "v1/ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1/Secret":
		obj = &corev1.Secret{}
	case "v1/ServiceAccount":
		obj = &corev1.ServiceAccount{}
	case "autoscaling/v2/HorizontalPodAutoscaler":
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1/PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "keda.sh/v1alpha1/ScaledObject":
		var so map[string]any
		if err := yaml.Unmarshal(doc, &so); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if errs := validateSchema(kedaSchema(t), so, "ScaledObject"); len(errs) > 0 {
			t.Fatalf("%s does not match KEDA's ScaledObject schema:\n%s", file, strings.Join(errs, "\n"))
		}
		// metadata is "type: object" in the CRD: check it as ObjectMeta.
		mb, err := yaml.Marshal(so["metadata"])
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(mb, &metav1.ObjectMeta{}); err != nil {
			t.Fatalf("%s: metadata: %v", file, err)
		}
		return object{file: file, kind: m.Kind, name: m.Metadata.Name, obj: so}
	default:
		t.Fatalf("%s: unexpected %s %s (add its type to decode)", file, m.APIVersion, m.Kind)
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		t.Fatalf("%s: %s %s does not decode strictly into the Kubernetes type: %v", file, m.Kind, m.Metadata.Name, err)
	}
	return object{file: file, kind: m.Kind, name: m.Metadata.Name, obj: obj}
}

// load reads a kustomization directory and every resource it lists.
func load(t *testing.T, dir string) (kustomization, []object) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("%s: %s %s", dir, k.APIVersion, k.Kind)
	}
	var objs []object
	for _, r := range k.Resources {
		p := filepath.Join(dir, r)
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatalf("%s lists %s: %v", dir, r, err)
		}
		if fi.IsDir() {
			_, sub := load(t, p)
			objs = append(objs, sub...)
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range docs(b) {
			objs = append(objs, decode(t, p, d))
		}
	}
	return k, objs
}

func find[T any](t *testing.T, objs []object, kind, name string) T {
	t.Helper()
	for _, o := range objs {
		if o.kind == kind && o.name == name {
			return o.obj.(T)
		}
	}
	t.Fatalf("no %s %s", kind, name)
	var zero T
	return zero
}

// flagEnv returns the LADLE_* variables of `ladle serve`, from the flags
// defined in cmd/ladle/config.go.
func flagEnv(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../cmd/ladle/config.go")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`fset\.\w+Var\(&c\.\w+, "([a-z0-9-]+)"`).FindAllSubmatch(b, -1) {
		out["LADLE_"+strings.ToUpper(strings.ReplaceAll(string(m[1]), "-", "_"))] = true
	}
	if len(out) < 10 {
		t.Fatalf("found only %d flags in cmd/ladle/config.go", len(out))
	}
	return out
}

func TestBase(t *testing.T) {
	_, objs := load(t, "base")
	cm := find[*corev1.ConfigMap](t, objs, "ConfigMap", "ladle")
	secret := find[*corev1.Secret](t, objs, "Secret", "ladle")

	// Every variable is a flag of `ladle serve`.
	flags := flagEnv(t)
	for k := range cm.Data {
		if !flags[k] {
			t.Errorf("ConfigMap sets %s, which is no flag of ladle serve", k)
		}
	}
	for k := range secret.StringData {
		if !flags[k] {
			t.Errorf("Secret sets %s, which is no flag of ladle serve", k)
		}
	}
	shutdown, err := time.ParseDuration(cm.Data["LADLE_SHUTDOWN_TIMEOUT"])
	if err != nil {
		t.Fatalf("LADLE_SHUTDOWN_TIMEOUT: %v", err)
	}

	for _, name := range []string{"ladle-api", "ladle-worker"} {
		d := find[*appsv1.Deployment](t, objs, "Deployment", name)
		role := strings.TrimPrefix(name, "ladle-")
		ps := d.Spec.Template.Spec
		if !labelsMatch(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("%s: selector %v does not select its pods %v", name, d.Spec.Selector.MatchLabels, d.Spec.Template.Labels)
		}
		if sc := ps.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser == 0 {
			t.Errorf("%s: must run as a non-root user", name)
		}
		if len(ps.Containers) != 1 {
			t.Fatalf("%s: %d containers", name, len(ps.Containers))
		}
		c := ps.Containers[0]
		if !slices.Equal(c.Args, []string{"serve", "--role", role}) {
			t.Errorf("%s: args %v, want serve --role %s", name, c.Args, role)
		}
		for _, e := range c.Env {
			if !flags[e.Name] {
				t.Errorf("%s sets %s, which is no flag of ladle serve", name, e.Name)
			}
		}
		if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
			t.Errorf("%s: liveness must probe /healthz", name)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
			t.Errorf("%s: readiness must probe /readyz", name)
		}
		if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
			t.Errorf("%s: root filesystem should be read-only", name)
		}
		// The pod gets long enough to drain: preStop, then the graceful
		// shutdown, with a margin before SIGKILL.
		pre := int64(0)
		if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
			pre = c.Lifecycle.PreStop.Sleep.Seconds
		}
		need := pre + int64(shutdown.Seconds()) + 5
		if g := ps.TerminationGracePeriodSeconds; g == nil || *g < need {
			t.Errorf("%s: terminationGracePeriodSeconds %v, want at least %d (preStop %ds + LADLE_SHUTDOWN_TIMEOUT %v + 5s)", name, g, need, pre, shutdown)
		}
		var envFrom []string
		for _, ef := range c.EnvFrom {
			switch {
			case ef.ConfigMapRef != nil:
				envFrom = append(envFrom, "cm/"+ef.ConfigMapRef.Name)
			case ef.SecretRef != nil:
				envFrom = append(envFrom, "secret/"+ef.SecretRef.Name)
			}
		}
		if !slices.Contains(envFrom, "cm/ladle") || !slices.Contains(envFrom, "secret/ladle") {
			t.Errorf("%s: envFrom %v, want the ladle ConfigMap and Secret", name, envFrom)
		}
		ports := map[string]bool{}
		for _, p := range c.Ports {
			ports[p.Name] = true
		}
		if !ports["http"] || !ports["metrics"] {
			t.Errorf("%s: ports %v, want http and metrics", name, ports)
		}

		// Its PodDisruptionBudget selects its pods.
		pdb := find[*policyv1.PodDisruptionBudget](t, objs, "PodDisruptionBudget", name)
		if !labelsMatch(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
			t.Errorf("PDB %s does not select the %s pods", name, name)
		}
	}

	hpa := find[*autoscalingv2.HorizontalPodAutoscaler](t, objs, "HorizontalPodAutoscaler", "ladle-api")
	if r := hpa.Spec.ScaleTargetRef; r.Kind != "Deployment" || r.Name != "ladle-api" {
		t.Errorf("HPA targets %v", r)
	}
	if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("the api HPA should scale on CPU: %+v", hpa.Spec.Metrics)
	}
	svc := find[*corev1.Service](t, objs, "Service", "ladle-api")
	api := find[*appsv1.Deployment](t, objs, "Deployment", "ladle-api")
	if !labelsMatch(svc.Spec.Selector, api.Spec.Template.Labels) {
		t.Error("the api Service does not select the api pods")
	}

	// The ScaledObject scales the worker Deployment on every worker
	// consumer's lag, on the stream the pods are told to use.
	so := find[map[string]any](t, objs, "ScaledObject", "ladle-worker")
	spec := so["spec"].(map[string]any)
	if ref := spec["scaleTargetRef"].(map[string]any); ref["name"] != "ladle-worker" {
		t.Errorf("ScaledObject targets %v", ref)
	}
	var consumers []string
	for _, tr := range spec["triggers"].([]any) {
		tr := tr.(map[string]any)
		if tr["type"] != "nats-jetstream" {
			t.Errorf("trigger type %v, want nats-jetstream", tr["type"])
			continue
		}
		md := tr["metadata"].(map[string]any)
		// The nats-jetstream scaler's parameters (KEDA docs / its scaler's
		// metadata struct).
		known := []string{"natsServerMonitoringEndpoint", "account", "accountID", "stream", "consumer", "lagThreshold", "activationLagThreshold", "useHttps"}
		for k, v := range md {
			if !slices.Contains(known, k) {
				t.Errorf("nats-jetstream trigger: unknown parameter %q", k)
			}
			if _, ok := v.(string); !ok {
				t.Errorf("nats-jetstream trigger: %s must be a string, is %T", k, v)
			}
		}
		for _, k := range []string{"natsServerMonitoringEndpoint", "stream", "consumer"} {
			if md[k] == nil || md[k] == "" {
				t.Errorf("nats-jetstream trigger: %s is required", k)
			}
		}
		for _, k := range []string{"lagThreshold", "activationLagThreshold"} {
			if s, ok := md[k].(string); ok {
				if _, err := strconv.ParseInt(s, 10, 64); err != nil {
					t.Errorf("nats-jetstream trigger: %s %q is not an integer", k, s)
				}
			}
		}
		if md["stream"] != cm.Data["LADLE_NATS_STREAM"] {
			t.Errorf("trigger stream %v, but the pods use LADLE_NATS_STREAM=%q", md["stream"], cm.Data["LADLE_NATS_STREAM"])
		}
		consumers = append(consumers, fmt.Sprint(md["consumer"]))
	}
	slices.Sort(consumers)
	want := []string{worker.ConsumerReady, worker.ConsumerReceipt}
	slices.Sort(want)
	if !slices.Equal(consumers, want) {
		t.Errorf("ScaledObject triggers on consumers %v, the worker runs %v", consumers, want)
	}
	if cm.Data["LADLE_NATS_REPLICAS"] != "3" {
		t.Errorf("LADLE_NATS_REPLICAS=%q, want 3 (R3 on the NATS cluster)", cm.Data["LADLE_NATS_REPLICAS"])
	}
}

func TestOverlays(t *testing.T) {
	_, base := load(t, "base")
	dirs, err := filepath.Glob("overlays/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no overlays: %v", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			k, objs := load(t, dir)
			if len(objs) != len(base) {
				t.Errorf("%s has %d objects, base %d", dir, len(objs), len(base))
			}
			if k.Namespace == "" {
				t.Errorf("%s sets no namespace", dir)
			}
			for _, p := range k.Patches {
				switch {
				case p.Path != "":
					b, err := os.ReadFile(filepath.Join(dir, p.Path))
					if err != nil {
						t.Fatal(err)
					}
					// A strategic merge patch: strictly its kind's type, and
					// an object the base has.
					o := decode(t, p.Path, b)
					found := false
					for _, bo := range base {
						found = found || (bo.kind == o.kind && bo.name == o.name)
					}
					if !found {
						t.Errorf("%s patches %s %s, which the base lacks", dir, o.kind, o.name)
					}
				case p.Target != nil:
					found := false
					for _, bo := range base {
						found = found || (bo.kind == p.Target.Kind && bo.name == p.Target.Name)
					}
					if !found {
						t.Errorf("%s patches %s %s, which the base lacks", dir, p.Target.Kind, p.Target.Name)
					}
					var ops []struct {
						Op    string `json:"op"`
						Path  string `json:"path"`
						Value any    `json:"value"`
					}
					if err := yaml.UnmarshalStrict([]byte(p.Patch), &ops); err != nil || len(ops) == 0 {
						t.Errorf("%s: JSON patch: %v", dir, err)
					}
				default:
					t.Errorf("%s: a patch with neither path nor target", dir)
				}
			}
		})
	}
}

func TestNATSValues(t *testing.T) {
	b, err := os.ReadFile("nats/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Config struct {
			Cluster struct {
				Enabled  bool `json:"enabled"`
				Replicas int  `json:"replicas"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					Enabled bool `json:"enabled"`
				} `json:"fileStore"`
			} `json:"jetstream"`
			Monitor struct {
				Enabled bool `json:"enabled"`
				Port    int  `json:"port"`
			} `json:"monitor"`
		} `json:"config"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	c := v.Config
	if !c.Cluster.Enabled || c.Cluster.Replicas != 3 || !c.JetStream.Enabled || !c.JetStream.FileStore.Enabled {
		t.Errorf("NATS values: want a 3-server cluster with JetStream on file storage, have %+v", c)
	}
	if !c.Monitor.Enabled || c.Monitor.Port != 8222 {
		t.Errorf("KEDA reads lag from the monitoring port 8222: %+v", c.Monitor)
	}
}

// TestSchemaValidatorRejects makes sure the schema check can fail: an
// unknown field, a wrong type and a missing required field in a
// ScaledObject are each reported.
func TestSchemaValidatorRejects(t *testing.T) {
	good, err := os.ReadFile("base/worker-scaledobject.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, from, to string }{
		{"unknown field", "  pollingInterval: 10", "  pollingInterval: 10\n  pollInterval: 10"},
		{"wrong type", "  minReplicaCount: 1", `  minReplicaCount: "one"`},
		{"missing required", "    name: ladle-worker\n  pollingInterval", "    kind: Deployment\n  pollingInterval"},
	} {
		bad := bytes.Replace(good, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, good) {
			t.Fatalf("%s: the replacement did not apply", c.name)
		}
		var so map[string]any
		if err := yaml.Unmarshal(bad, &so); err != nil {
			t.Fatal(err)
		}
		if errs := validateSchema(kedaSchema(t), so, "ScaledObject"); len(errs) == 0 {
			t.Errorf("%s: accepted", c.name)
		}
	}
}

func labelsMatch(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

package kubernetes

import (
	"fmt"
	"math"
	"os"
	"regexp"
	"slices"
	"sort"
	"sync"
	"testing"

	"sigs.k8s.io/yaml"
)

var (
	kedaOnce sync.Once
	kedaSch  map[string]any
	kedaErr  error
)

// kedaSchema returns the openAPIV3Schema of KEDA's ScaledObject v1alpha1,
// from the CRD committed in schema/.
func kedaSchema(t *testing.T) map[string]any {
	t.Helper()
	kedaOnce.Do(func() {
		b, err := os.ReadFile("schema/keda.sh_scaledobjects.yaml")
		if err != nil {
			kedaErr = err
			return
		}
		var crd struct {
			Spec struct {
				Versions []struct {
					Name   string `json:"name"`
					Schema struct {
						OpenAPIV3Schema map[string]any `json:"openAPIV3Schema"`
					} `json:"schema"`
				} `json:"versions"`
			} `json:"spec"`
		}
		if kedaErr = yaml.Unmarshal(b, &crd); kedaErr != nil {
			return
		}
		for _, v := range crd.Spec.Versions {
			if v.Name == "v1alpha1" {
				kedaSch = v.Schema.OpenAPIV3Schema
			}
		}
		if kedaSch == nil {
			kedaErr = fmt.Errorf("no v1alpha1 schema in the CRD")
		}
	})
	if kedaErr != nil {
		t.Fatal(kedaErr)
	}
	return kedaSch
}

// validateSchema checks v against a CRD's structural OpenAPI v3 schema the
// way the API server would on create with strict field validation: types,
// required fields, enums, patterns, minimums, and no field the schema does
// not declare (unless it says x-kubernetes-preserve-unknown-fields).
// CEL rules (x-kubernetes-validations) are not evaluated.
func validateSchema(s map[string]any, v any, path string) []string {
	var errs []string
	bad := func(format string, a ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, a...)) }
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		bad("null")
		return errs
	}
	if s["x-kubernetes-int-or-string"] == true {
		switch x := v.(type) {
		case string:
		case float64:
			if x != math.Trunc(x) {
				bad("%v is neither an integer nor a string", x)
			}
		default:
			bad("%T is neither an integer nor a string", v)
		}
		return errs
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			bad("want an object, have %T", v)
			return errs
		}
		props, _ := s["properties"].(map[string]any)
		addl, _ := s["additionalProperties"].(map[string]any)
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			switch ps, ok := props[k].(map[string]any); {
			case ok:
				errs = append(errs, validateSchema(ps, m[k], path+"."+k)...)
			case addl != nil:
				errs = append(errs, validateSchema(addl, m[k], path+"."+k)...)
			case s["x-kubernetes-preserve-unknown-fields"] == true:
			case props == nil && path != "ScaledObject":
				// "type: object" alone (metadata): checked elsewhere.
			default:
				bad("unknown field %q", k)
			}
		}
		if req, ok := s["required"].([]any); ok {
			for _, r := range req {
				if _, ok := m[r.(string)]; !ok {
					bad("missing required field %q", r)
				}
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			bad("want an array, have %T", v)
			return errs
		}
		if items, ok := s["items"].(map[string]any); ok {
			for i, x := range a {
				errs = append(errs, validateSchema(items, x, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case "string":
		x, ok := v.(string)
		if !ok {
			bad("want a string, have %T (%v)", v, v)
			return errs
		}
		if n, ok := s["minLength"].(float64); ok && float64(len(x)) < n {
			bad("%q is shorter than %v", x, n)
		}
		if p, ok := s["pattern"].(string); ok {
			if re, err := regexp.Compile(p); err == nil && !re.MatchString(x) {
				bad("%q does not match %s", x, p)
			}
		}
	case "integer", "number":
		x, ok := v.(float64)
		if !ok {
			bad("want a number, have %T (%v)", v, v)
			return errs
		}
		if s["type"] == "integer" && x != math.Trunc(x) {
			bad("%v is not an integer", x)
		}
		if m, ok := s["minimum"].(float64); ok && x < m {
			bad("%v is below the minimum %v", x, m)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			bad("want a boolean, have %T", v)
		}
	}
	if enum, ok := s["enum"].([]any); ok && !slices.Contains(enum, v) {
		bad("%v is not one of %v", v, enum)
	}
	return errs
}

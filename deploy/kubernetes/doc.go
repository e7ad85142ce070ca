// Package kubernetes holds Ladle's Kubernetes manifests (kustomize base and
// overlays, NATS Helm values) and, in manifests_test.go, their offline
// validation: every object decodes strictly into the upstream Go types of
// k8s.io/api, the KEDA ScaledObject validates against KEDA's own CRD
// schema (schema/), and the manifests agree with each other and with the
// ladle binary. `go test ./deploy/kubernetes` runs it; no cluster needed.
package kubernetes

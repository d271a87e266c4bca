//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// workloads are the Deployments the autoscalers scale: the kubelet runs a
// real process for each of their pods (workloadLabel). The image is never
// pulled.
const workloads = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  replicas: 2
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
        e2e.penny.dev/workload: "true"
    spec:
      containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          resources:
            requests:
              cpu: 10m
              memory: 64Mi
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cache
  namespace: shop
spec:
  replicas: 1
  selector:
    matchLabels:
      app: cache
  template:
    metadata:
      labels:
        app: cache
        e2e.penny.dev/workload: "true"
    spec:
      containers:
        - name: app
          image: registry.k8s.io/pause:3.10
          resources:
            requests:
              cpu: 10m
              memory: 64Mi
`

// readmeHPAs are the autoscalers of the README that the e2e proves.
var readmeHPAs = []string{"web-memory", "cache"}

// writeManifests writes the workloads and the README's autoscalers
// (readmeHPAs), exactly as the README shows them, into one file.
func (c *cluster) writeManifests(t *testing.T) string {
	t.Helper()
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	docs := []string{workloads}
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	for _, name := range readmeHPAs {
		n := len(docs)
		for _, m := range blocks {
			if strings.Contains(m[1], "kind: HorizontalPodAutoscaler\n") && strings.Contains(m[1], "\n  name: "+name+"\n") {
				docs = append(docs, m[1])
			}
		}
		if len(docs) != n+1 {
			t.Fatalf("README.md shows %d HorizontalPodAutoscalers named %s, want 1", len(docs)-n, name)
		}
	}
	return c.cp.writeFile(t, "workloads.yaml", []byte(strings.Join(docs, "---\n")))
}

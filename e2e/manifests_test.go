//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// workloads are the Deployments the autoscalers scale: the kubelet runs a
// real process for each of their pods (workloadLabel). The image is never
// pulled.
var workloads = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
` + deployment("web", "app", 2) + "---\n" + deployment("cache", "app", 1) + "---\n" + deployment("api", "api", 2)

// deployment is a Deployment of replicas pods labelled app=name in shop,
// whose one container is called container.
func deployment(name, container string, replicas int) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
  namespace: shop
spec:
  replicas: %[2]d
  selector:
    matchLabels:
      app: %[1]s
  template:
    metadata:
      labels:
        app: %[1]s
        e2e.penny.dev/workload: "true"
    spec:
      containers:
        - name: %[3]s
          image: registry.k8s.io/pause:3.10
          resources:
            requests:
              cpu: 10m
              memory: 64Mi
`, name, replicas, container)
}

// readmeHPAs are the autoscalers of the README that the e2e proves.
var readmeHPAs = []string{"web-memory", "cache", "api-latency"}

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

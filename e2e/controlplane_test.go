//go:build e2e

package e2e

import (
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// controlPlane is etcd (Debian's etcd-server), kube-apiserver and
// kube-controller-manager, configured as a cluster's: RBAC, service
// account tokens, the aggregation layer with front-proxy client
// certificates (the --requestheader-* flags, so that an aggregated server
// sees who calls it), and the HPA controller acting with its own service
// account.
type controlPlane struct {
	dir string
	// URL is the API server, on the test bridge: the aggregator replicas
	// in their namespaces reach it there.
	URL string
	// CA signs the API server's certificate and the clients'.
	CA *ca
	// Admin is a kubeconfig of a system:masters user.
	Admin  string
	Client kubernetes.Interface
}

// startControlPlane starts the control plane from the binaries in bin.
func startControlPlane(t *testing.T, bin, dir string) *controlPlane {
	t.Helper()
	cp := &controlPlane{dir: dir}
	cp.CA = newCA(t, dir, "cluster")
	port := freePort(t, bridgeIP)
	cp.URL = "https://" + bridgeIP + ":" + port
	apiCert, apiKey := cp.CA.issue(t, "apiserver", "kube-apiserver", nil, true,
		bridgeIP, "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "localhost")
	adminCert, adminKey := cp.CA.issue(t, "admin", "e2e-admin", []string{"system:masters"}, false)
	cp.Admin = kubeconfig(t, filepath.Join(dir, "admin.kubeconfig"), cp.URL, cp.CA.File, adminCert, adminKey, "")
	kcmCert, kcmKey := cp.CA.issue(t, "kcm", "system:kube-controller-manager", nil, false)
	kcmConfig := kubeconfig(t, filepath.Join(dir, "kcm.kubeconfig"), cp.URL, cp.CA.File, kcmCert, kcmKey, "")
	front := newCA(t, dir, "front-proxy")
	frontCert, frontKey := front.issue(t, "front-proxy-client", "front-proxy-client", nil, false)
	saKey, saPub := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	sa := newKey(t)
	writeKey(t, saKey, sa)
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, saPub, "PUBLIC KEY", pub)

	etcdPort, etcdPeer := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	etcdURL := "http://127.0.0.1:" + etcdPort
	etcd := start(t, dir, "etcd", exec.Command("etcd", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:"+etcdPeer, "--initial-advertise-peer-urls", "http://127.0.0.1:"+etcdPeer,
		"--initial-cluster", "default=http://127.0.0.1:"+etcdPeer, "--log-level", "warn"))
	waitHTTP(t, etcd, etcdURL+"/health", "", "", "", 30*time.Second)

	api := start(t, dir, "kube-apiserver", exec.Command(filepath.Join(bin, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", bridgeIP, "--secure-port", port, "--advertise-address", bridgeIP,
		"--service-cluster-ip-range", "10.96.0.0/16",
		"--client-ca-file", cp.CA.File, "--tls-cert-file", apiCert, "--tls-private-key-file", apiKey,
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", saPub, "--service-account-signing-key-file", saKey,
		"--authorization-mode", "RBAC", "--allow-privileged=true",
		// The aggregation layer as a real cluster runs it: requests to an
		// APIService go to its Service's endpoints, with the caller's
		// identity in front-proxy headers signed by the front proxy's
		// client certificate.
		"--enable-aggregator-routing=true",
		"--requestheader-client-ca-file", front.File, "--requestheader-allowed-names", "front-proxy-client",
		"--requestheader-username-headers", "X-Remote-User", "--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--proxy-client-cert-file", frontCert, "--proxy-client-key-file", frontKey))
	waitHTTP(t, api, cp.URL+"/readyz", cp.CA.File, adminCert, adminKey, 90*time.Second)

	kcm := start(t, dir, "kube-controller-manager", exec.Command(filepath.Join(bin, "kube-controller-manager"),
		"--kubeconfig", kcmConfig, "--authentication-kubeconfig", kcmConfig, "--authorization-kubeconfig", kcmConfig,
		"--bind-address", "127.0.0.1", "--secure-port", freePort(t, "127.0.0.1"), "--leader-elect=false",
		"--use-service-account-credentials=true", "--service-account-private-key-file", saKey, "--root-ca-file", cp.CA.File,
		// The harness's node sends no heartbeats: no node lifecycle.
		"--controllers", "*,-nodelifecycle,-nodeipam",
		"--horizontal-pod-autoscaler-sync-period", "5s",
		"--horizontal-pod-autoscaler-downscale-stabilization", "15s"))
	_ = kcm

	var cfg *rest.Config
	cfg, err = clientcmd.BuildConfigFromFlags("", cp.Admin)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		t.Fatal(err)
	}
	return cp
}

// kubectl runs the kubectl built with the control plane as the admin.
func (cp *controlPlane) kubectl(t *testing.T, bin string, args ...string) string {
	t.Helper()
	return run(t, filepath.Join(bin, "kubectl"), append([]string{"--kubeconfig", cp.Admin}, args...)...)
}

// writeFile writes a file into the control plane's directory.
func (cp *controlPlane) writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	f := filepath.Join(cp.dir, name)
	if err := os.WriteFile(f, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

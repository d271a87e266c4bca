package custommetricstest

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"mime"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeAPI stands in for the two kube-apiserver endpoints an extension
// apiserver delegates to: TokenReview (authentication.k8s.io/v1) and
// SubjectAccessReview (authorization.k8s.io/v1), served over TLS. It knows
// the users AddUser gave it and allows everything to the allowed ones.
// Anything else it is asked is answered 404 and listed by Unexpected.
//
// It is no kube-apiserver: the end-to-end tests run the real one.
type KubeAPI struct {
	// Kubeconfig is a kubeconfig file naming the stand-in, for
	// --authentication-kubeconfig, --authorization-kubeconfig and
	// --lister-kubeconfig.
	Kubeconfig string

	mu         sync.Mutex
	users      map[string]authnv1.UserInfo // by token
	allowed    map[string]bool             // by user name
	rules      map[string]func(authzv1.SubjectAccessReviewSpec) bool
	reviews    []authzv1.SubjectAccessReviewSpec
	unexpected []string
}

// StartKubeAPI starts the stand-in and writes its kubeconfig into a
// temporary directory; it stops when the test ends.
func StartKubeAPI(t testing.TB) *KubeAPI {
	t.Helper()
	k := &KubeAPI{users: map[string]authnv1.UserInfo{}, allowed: map[string]bool{},
		rules: map[string]func(authzv1.SubjectAccessReviewSpec) bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /apis/authentication.k8s.io/v1/tokenreviews", k.tokenReview)
	mux.HandleFunc("POST /apis/authorization.k8s.io/v1/subjectaccessreviews", k.accessReview)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		k.mu.Lock()
		k.unexpected = append(k.unexpected, r.Method+" "+r.URL.Path)
		k.mu.Unlock()
		writeJSON(w, http.StatusNotFound, &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
			Message: "the stand-in kube-apiserver serves only token and subject access reviews"})
	})
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)

	k.Kubeconfig = filepath.Join(t.TempDir(), "kubeconfig")
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	cfg := clientcmdapi.Config{
		Clusters:       map[string]*clientcmdapi.Cluster{"stand-in": {Server: srv.URL, CertificateAuthorityData: ca}},
		AuthInfos:      map[string]*clientcmdapi.AuthInfo{"penny": {Token: "penny-adapter-token"}},
		Contexts:       map[string]*clientcmdapi.Context{"stand-in": {Cluster: "stand-in", AuthInfo: "penny"}},
		CurrentContext: "stand-in",
	}
	if err := clientcmd.WriteToFile(cfg, k.Kubeconfig); err != nil {
		t.Fatal(err)
	}
	return k
}

// Args are the standard flags that point delegated authentication and
// authorization and the lister at the stand-in. The authentication
// configuration is not looked up in kube-system (the stand-in has none).
func (k *KubeAPI) Args() []string {
	return []string{"--authentication-kubeconfig", k.Kubeconfig, "--authorization-kubeconfig", k.Kubeconfig,
		"--lister-kubeconfig", k.Kubeconfig, "--authentication-skip-lookup"}
}

// AddUser makes token authenticate as user name; an allowed user may do
// anything, the others nothing.
func (k *KubeAPI) AddUser(token, name string, allowed bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.users[token] = authnv1.UserInfo{Username: name, UID: "uid-" + name, Groups: []string{"system:authenticated"}}
	k.allowed[name] = allowed
}

// AddUserInfo makes token authenticate as u (a ServiceAccount's, with
// its extra, say), allowed nothing until AllowIf says otherwise.
func (k *KubeAPI) AddUserInfo(token string, u authnv1.UserInfo) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.users[token] = u
}

// AllowIf lets allow decide the subject access reviews of user name, as
// RBAC rules would.
func (k *KubeAPI) AllowIf(name string, allow func(authzv1.SubjectAccessReviewSpec) bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.rules[name] = allow
}

// Reviews returns the subject access reviews asked so far.
func (k *KubeAPI) Reviews() []authzv1.SubjectAccessReviewSpec {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.reviews)
}

// Unexpected returns the requests the stand-in could not answer.
func (k *KubeAPI) Unexpected() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.unexpected)
}

func (k *KubeAPI) tokenReview(w http.ResponseWriter, r *http.Request) {
	var tr authnv1.TokenReview
	if !readJSON(w, r, &tr) {
		return
	}
	k.mu.Lock()
	user, ok := k.users[tr.Spec.Token]
	k.mu.Unlock()
	tr.TypeMeta = metav1.TypeMeta{Kind: "TokenReview", APIVersion: "authentication.k8s.io/v1"}
	tr.Status = authnv1.TokenReviewStatus{Authenticated: ok, User: user, Audiences: tr.Spec.Audiences}
	if !ok {
		tr.Status = authnv1.TokenReviewStatus{Error: "unknown token"}
	}
	writeJSON(w, http.StatusCreated, &tr)
}

func (k *KubeAPI) accessReview(w http.ResponseWriter, r *http.Request) {
	var sar authzv1.SubjectAccessReview
	if !readJSON(w, r, &sar) {
		return
	}
	k.mu.Lock()
	k.reviews = append(k.reviews, sar.Spec)
	allowed := k.allowed[sar.Spec.User]
	if rule := k.rules[sar.Spec.User]; rule != nil {
		allowed = rule(sar.Spec)
	}
	k.mu.Unlock()
	sar.TypeMeta = metav1.TypeMeta{Kind: "SubjectAccessReview", APIVersion: "authorization.k8s.io/v1"}
	sar.Status = authzv1.SubjectAccessReviewStatus{Allowed: allowed, Denied: !allowed,
		Reason: fmt.Sprintf("stand-in: user %q allowed=%t", sar.Spec.User, allowed)}
	writeJSON(w, http.StatusCreated, &sar)
}

// readJSON decodes a JSON request body into v, answering 415 or 400 when
// it cannot.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt != "application/json" {
		http.Error(w, "the stand-in speaks JSON only", http.StatusUnsupportedMediaType)
		return false
	}
	if err := json.NewDecoder(r.Body).Decode(v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

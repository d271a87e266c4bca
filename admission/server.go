package admission

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pennyhq/penny/internal/tlsfiles"
)

// Paths the Server serves.
const (
	// MutatePath takes AdmissionReviews of pods.
	MutatePath  = "/mutate-pods"
	HealthzPath = "/healthz"
	MetricsPath = "/metrics"
)

// Defaults of the Config's limits.
const (
	// DefaultMaxRequestBytes bounds an AdmissionReview: a pod is at most
	// etcd's 1.5 MiB, and the review carries it once on CREATE.
	DefaultMaxRequestBytes = 3 << 20
	// DefaultMaxInFlight bounds the reviews decoded at once, so memory
	// stays under MaxInFlight x MaxRequestBytes x a small factor.
	DefaultMaxInFlight = 16
	// DefaultNamespaceTimeout bounds the read of a namespace that is not
	// in the cache yet (created a moment ago).
	DefaultNamespaceTimeout = 2 * time.Second
)

// NamespaceGetter gives the namespace a pod is created in.
type NamespaceGetter interface {
	Namespace(ctx context.Context, name string) (*corev1.Namespace, error)
}

// Handler serves the webhook's API: AdmissionReviews of pods on
// MutatePath. The caller serves it over TLS (kube-apiserver calls
// webhooks over HTTPS only).
type Handler struct {
	// Rules gives the rules in force at each review (a reloaded file).
	Rules func() *Rules
	// Namespaces gives the pod's namespace when a rule reads it.
	Namespaces NamespaceGetter
	// RequireClientCert refuses reviews that come without a client
	// certificate that the server's client CA verified: for API servers
	// configured to present one (an AdmissionConfiguration kubeConfigFile).
	RequireClientCert bool
	// MaxRequestBytes and MaxInFlight bound the reviews; zero takes the
	// defaults.
	MaxRequestBytes int64
	MaxInFlight     int
	// NamespaceTimeout bounds the read of a namespace; zero takes the
	// default.
	NamespaceTimeout time.Duration
	Log              *slog.Logger
	Metrics          *Metrics

	sem chan struct{}
}

// Init checks the handler and fills in the defaults; call it once before
// serving.
func (h *Handler) Init() error {
	if h.Rules == nil || h.Namespaces == nil || h.Metrics == nil {
		return errors.New("admission: handler needs Rules, Namespaces and Metrics")
	}
	if h.MaxRequestBytes <= 0 {
		h.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if h.MaxInFlight <= 0 {
		h.MaxInFlight = DefaultMaxInFlight
	}
	if h.NamespaceTimeout <= 0 {
		h.NamespaceTimeout = DefaultNamespaceTimeout
	}
	if h.Log == nil {
		h.Log = slog.New(slog.DiscardHandler)
	}
	h.sem = make(chan struct{}, h.MaxInFlight)
	return nil
}

// ServeHTTP answers one AdmissionReview. Whatever happens to the pod's
// labels, the pod is allowed: a review that cannot be read is a 400 (the
// API server then applies the webhook's failurePolicy, Ignore in the
// chart), and a pod whose namespace cannot be read is allowed unchanged.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	result := h.serve(w, r)
	h.Metrics.observe(result, time.Since(start))
}

// Results of a review, the label of the metrics.
const (
	resultPatched     = "patched"
	resultUnchanged   = "unchanged"
	resultIgnored     = "ignored" // not a pod CREATE
	resultNoNamespace = "namespace_unavailable"
	resultRefused     = "refused" // not a review, too large, not authenticated
)

func (h *Handler) serve(w http.ResponseWriter, r *http.Request) string {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		httpError(w, http.StatusMethodNotAllowed, "POST an AdmissionReview")
		return resultRefused
	}
	if h.RequireClientCert && !tlsfiles.VerifiedClient(r.TLS) {
		httpError(w, http.StatusUnauthorized, "a client certificate signed by the client CA is required")
		return resultRefused
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		httpError(w, http.StatusUnsupportedMediaType, "content type must be application/json")
		return resultRefused
	}
	select {
	case h.sem <- struct{}{}:
		defer func() { <-h.sem }()
	case <-r.Context().Done():
		httpError(w, http.StatusServiceUnavailable, "too many reviews at once")
		return resultRefused
	}
	var review admissionv1.AdmissionReview
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, h.MaxRequestBytes))
	if err := dec.Decode(&review); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("review larger than %d bytes", h.MaxRequestBytes))
		} else {
			httpError(w, http.StatusBadRequest, "decode review: "+err.Error())
		}
		h.Log.Warn("admission review refused", "remote", r.RemoteAddr, "err", err)
		return resultRefused
	}
	req := review.Request
	if req == nil || req.UID == "" {
		httpError(w, http.StatusBadRequest, "the review has no request or no uid")
		return resultRefused
	}
	resp := &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true}
	result := h.admit(r.Context(), req, resp)
	writeJSON(w, http.StatusOK, admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"},
		Response: resp,
	})
	return result
}

// admit fills in resp's patch for a pod CREATE.
func (h *Handler) admit(ctx context.Context, req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) string {
	if req.Kind.Group != "" || req.Kind.Kind != "Pod" || req.Operation != admissionv1.Create || req.SubResource != "" {
		return resultIgnored
	}
	log := h.Log.With("namespace", req.Namespace, "uid", req.UID)
	var pod corev1.Pod
	if err := json.Unmarshal(req.Object.Raw, &pod); err != nil {
		log.Warn("pod not stamped: its object does not decode", "err", err)
		return resultIgnored
	}
	rules := h.Rules()
	var ns *corev1.Namespace
	if rules.NeedsNamespace() {
		nctx, cancel := context.WithTimeout(ctx, h.NamespaceTimeout)
		var err error
		ns, err = h.Namespaces.Namespace(nctx, req.Namespace)
		cancel()
		if err != nil {
			// Stamping the defaults where the namespace names a tenant
			// would charge the pod to the wrong one: stamp nothing.
			log.Warn("pod not stamped: its namespace cannot be read", "err", err)
			return resultNoNamespace
		}
	}
	ops, stamps := Patch(rules, &pod, ns)
	if len(ops) == 0 {
		return resultUnchanged
	}
	patch, err := json.Marshal(ops)
	if err != nil { // maps and strings: cannot fail
		log.Error("pod not stamped: encode patch", "err", err)
		return resultIgnored
	}
	pt := admissionv1.PatchTypeJSONPatch
	resp.Patch, resp.PatchType = patch, &pt
	for _, s := range stamps {
		h.Metrics.stamped.WithLabelValues(s.Key, s.Source).Inc()
	}
	if log.Enabled(ctx, slog.LevelDebug) {
		log.Debug("pod stamped", "name", podName(&pod), "labels", stamps)
	}
	return resultPatched
}

// podName is the pod's name, or its generateName and "*" before the API
// server named it.
func podName(p *corev1.Pod) string {
	if p.Name != "" {
		return p.Name
	}
	return p.GenerateName + "*"
}

// Healthz answers the probes.
func Healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func httpError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"code": status, "error": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

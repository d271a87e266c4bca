package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

var (
	// ErrConfig means the configuration is unusable.
	ErrConfig = errors.New("kube: invalid config")
	// ErrNotSynced means the pods were not listed before the context
	// ended: the API server is unreachable or slow. The watcher keeps
	// trying.
	ErrNotSynced = errors.New("kube: pods not synced")
)

// MirrorAnnotation holds, on a static pod's mirror pod, the UID the
// kubelet gave the static pod, which names its cgroup.
const MirrorAnnotation = "kubernetes.io/config.mirror"

// Names of the informer's indexes.
const (
	indexPodUID      = "penny/pod-uid"
	indexContainerID = "penny/container-id"
)

// sweepEvery is how often cached paths that were not resolved since the
// previous sweep are forgotten.
const sweepEvery = time.Minute

// Config configures a Watcher.
type Config struct {
	// KubeConfig is the path of a kubeconfig file; "" uses the in-cluster
	// configuration (the pod's service account).
	KubeConfig string
	// NodeName is the name of this node: only its pods are watched.
	NodeName string
	// SpotLabels mark a spot node besides the well-known SpotLabels
	// (NodeWatcher).
	SpotLabels []Label
	Logger     *slog.Logger
	// Registerer, when set, gets the watcher's metrics.
	Registerer prometheus.Registerer
	// DeletedGrace is how long the cgroups of a pod deleted from the API
	// keep its metadata (default DefaultDeletedGrace): the samples after
	// it went still carry what its containers did last (the requests of
	// its last second, shipped once its cgroup is removed).
	DeletedGrace time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// DefaultDeletedGrace is Config.DeletedGrace's default.
const DefaultDeletedGrace = time.Minute

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.DeletedGrace == 0 {
		c.DeletedGrace = DefaultDeletedGrace
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks the node name and the spot labels.
func (c *Config) Validate() error {
	if c.NodeName == "" {
		return fmt.Errorf("%w: node name is required", ErrConfig)
	}
	if c.DeletedGrace < 0 {
		return fmt.Errorf("%w: deleted grace %s: want 0 or more", ErrConfig, c.DeletedGrace)
	}
	if errs := validation.IsDNS1123Subdomain(c.NodeName); len(errs) > 0 {
		return fmt.Errorf("%w: node name %q: %s", ErrConfig, c.NodeName, strings.Join(errs, "; "))
	}
	for _, l := range c.SpotLabels {
		if err := l.validate(); err != nil {
			return fmt.Errorf("spot label %s: %w", l, err)
		}
	}
	return nil
}

// NewClient returns a client of the API server that cfg.KubeConfig names,
// or of the cluster the agent runs in.
func NewClient(cfg Config) (kubernetes.Interface, error) {
	var (
		rc  *rest.Config
		err error
	)
	if cfg.KubeConfig != "" {
		if rc, err = clientcmd.BuildConfigFromFlags("", cfg.KubeConfig); err != nil {
			return nil, fmt.Errorf("kubeconfig %s: %w", cfg.KubeConfig, err)
		}
	} else if rc, err = rest.InClusterConfig(); err != nil {
		return nil, fmt.Errorf("in-cluster config: %w", err)
	}
	rc.UserAgent = "penny-agent"
	c, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	return c, nil
}

// Watcher keeps the pods of this node and resolves cgroup paths to them.
type Watcher struct {
	cfg      Config
	log      *slog.Logger
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	indexer  cache.Indexer
	handler  cache.ResourceEventHandlerRegistration
	// gen counts changes of the pods; a cached answer older than it is
	// checked again.
	gen atomic.Uint64

	mu    sync.Mutex
	paths map[string]*entry // resolved paths, see resolve.go

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a watcher of the pods of cfg.NodeName. Start starts it.
func New(cfg Config, client kubernetes.Interface) (*Watcher, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("%w: no client", ErrConfig)
	}
	w := &Watcher{cfg: cfg, log: cfg.Logger, paths: map[string]*entry{}}
	node := cfg.NodeName
	w.factory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "spec.nodeName=" + node
		}),
		informers.WithTransform(transform))
	w.informer = w.factory.Core().V1().Pods().Informer()
	w.indexer = w.informer.GetIndexer()
	if err := w.informer.AddIndexers(cache.Indexers{
		indexPodUID:      w.podUIDKeys,
		indexContainerID: w.containerIDKeys,
	}); err != nil {
		return nil, fmt.Errorf("pod indexes: %w", err)
	}
	if err := w.informer.SetWatchErrorHandlerWithContext(w.watchError); err != nil {
		return nil, fmt.Errorf("watch error handler: %w", err)
	}
	bump := func(any) { w.gen.Add(1) }
	reg, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    bump,
		UpdateFunc: func(_, obj any) { bump(obj) },
		DeleteFunc: bump,
	})
	if err != nil {
		return nil, fmt.Errorf("pod event handler: %w", err)
	}
	w.handler = reg
	if cfg.Registerer != nil {
		if err := w.register(cfg.Registerer); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Start starts watching the pods until ctx ends or Close. Call it once.
func (w *Watcher) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.factory.StartWithContext(ctx)
	w.wg.Go(func() {
		t := time.NewTicker(sweepEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				w.sweep()
			}
		}
	})
	w.log.Info("watching pods", "node", w.cfg.NodeName)
}

// WaitForSync waits until the pods of the node are listed, and returns
// an error wrapping ErrNotSynced if ctx ends first.
func (w *Watcher) WaitForSync(ctx context.Context) error {
	if !cache.WaitFor(ctx, "", w.handler.HasSyncedChecker()) {
		return fmt.Errorf("%w: %w", ErrNotSynced, context.Cause(ctx))
	}
	return nil
}

// Close stops the watcher and waits for it to stop.
func (w *Watcher) Close() {
	if w.cancel != nil {
		w.cancel()
	}
	w.factory.Shutdown()
	w.wg.Wait()
}

// Pods returns the number of pods of this node the watcher knows.
func (w *Watcher) Pods() int {
	n := 0
	for _, obj := range w.indexer.List() {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName == w.cfg.NodeName {
			n++
		}
	}
	return n
}

// PodByContainerID returns the pod of this node whose status lists the
// container (by id, without the runtime's scheme), if the watcher knows
// it.
func (w *Watcher) PodByContainerID(id string) (*corev1.Pod, bool) {
	return w.byIndex(indexContainerID, id)
}

// byIndex returns the first pod of this node under key in index.
func (w *Watcher) byIndex(index, key string) (*corev1.Pod, bool) {
	objs, err := w.indexer.ByIndex(index, key)
	if err != nil {
		return nil, false
	}
	for _, obj := range objs {
		if p, ok := obj.(*corev1.Pod); ok && p.Spec.NodeName == w.cfg.NodeName {
			return p, true
		}
	}
	return nil, false
}

// podUIDKeys indexes a pod of this node by its UID and, for a mirror pod,
// by the UID of its static pod. Pods of other nodes are not indexed: the
// API server filters them out, and this is the second line.
func (w *Watcher) podUIDKeys(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName != w.cfg.NodeName {
		return nil, nil
	}
	keys := []string{string(p.UID)}
	if h := p.Annotations[MirrorAnnotation]; h != "" && h != string(p.UID) {
		keys = append(keys, h)
	}
	return keys, nil
}

// containerIDKeys indexes a pod of this node by the ids of its init,
// regular and ephemeral containers.
func (w *Watcher) containerIDKeys(obj any) ([]string, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok || p.Spec.NodeName != w.cfg.NodeName {
		return nil, nil
	}
	var keys []string
	for _, list := range [][]corev1.ContainerStatus{
		p.Status.InitContainerStatuses, p.Status.ContainerStatuses, p.Status.EphemeralContainerStatuses,
	} {
		for i := range list {
			if id := stripScheme(list[i].ContainerID); id != "" {
				keys = append(keys, id)
			}
		}
	}
	return keys, nil
}

// stripScheme returns the id of a status' containerID,
// "<runtime>://<id>" (containerd://, cri-o://, docker://).
func stripScheme(id string) string {
	if _, after, ok := strings.Cut(id, "://"); ok {
		return after
	}
	return id
}

// transform drops what the watcher does not use from the pods it keeps:
// managed fields, and annotations other than MirrorAnnotation (which can be
// large, such as kubectl's last-applied-configuration).
func transform(obj any) (any, error) {
	p, ok := obj.(*corev1.Pod)
	if !ok {
		return obj, nil
	}
	p.ManagedFields = nil
	if len(p.Annotations) > 0 {
		h, ok := p.Annotations[MirrorAnnotation]
		p.Annotations = nil
		if ok {
			p.Annotations = map[string]string{MirrorAnnotation: h}
		}
	}
	return p, nil
}

// watchError logs a failed list or watch; the informer retries with a
// backoff.
func (w *Watcher) watchError(ctx context.Context, _ *cache.Reflector, err error) {
	switch {
	case errors.Is(err, io.EOF):
		// The watch ended normally.
	case errors.Is(err, io.ErrUnexpectedEOF), apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		w.log.DebugContext(ctx, "pod watch restarts", "err", err)
	default:
		w.log.WarnContext(ctx, "listing or watching pods failed; retrying", "node", w.cfg.NodeName, "err", err)
	}
}

// register registers the watcher's metrics.
func (w *Watcher) register(r prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "penny_agent_kube_pods",
			Help: "Pods of this node the agent knows.",
		}, func() float64 { return float64(w.Pods()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "penny_agent_kube_unresolved_cgroups",
			Help: "Cgroups whose path names a pod that the agent does not know.",
		}, func() float64 { return float64(w.Unresolved()) }),
	} {
		if err := r.Register(c); err != nil {
			return fmt.Errorf("register kube metrics: %w", err)
		}
	}
	return nil
}

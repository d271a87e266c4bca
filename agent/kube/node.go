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

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/pennyhq/penny/internal/nodemeta"
)

// Node labels the facts come from, each with the legacy beta label it
// falls back to.
const (
	LabelInstanceType     = "node.kubernetes.io/instance-type"
	LabelInstanceTypeBeta = "beta.kubernetes.io/instance-type"
	LabelRegion           = "topology.kubernetes.io/region"
	LabelRegionBeta       = "failure-domain.beta.kubernetes.io/region"
	LabelZone             = "topology.kubernetes.io/zone"
	LabelZoneBeta         = "failure-domain.beta.kubernetes.io/zone"
)

// Label is a node label and its value.
type Label struct {
	Key, Value string
}

// String returns KEY=VALUE.
func (l Label) String() string { return l.Key + "=" + l.Value }

// ParseLabel parses KEY=VALUE: a label key (an optional DNS prefix and a
// name) and a label value, as Kubernetes validates them.
func ParseLabel(s string) (Label, error) {
	k, v, ok := strings.Cut(s, "=")
	if !ok {
		return Label{}, fmt.Errorf("%w: label %q: want KEY=VALUE", ErrConfig, s)
	}
	l := Label{Key: k, Value: v}
	return l, l.validate()
}

func (l Label) validate() error {
	if errs := validation.IsQualifiedName(l.Key); len(errs) > 0 {
		return fmt.Errorf("%w: label key %q: %s", ErrConfig, l.Key, strings.Join(errs, "; "))
	}
	if errs := validation.IsValidLabelValue(l.Value); len(errs) > 0 {
		return fmt.Errorf("%w: label value %q: %s", ErrConfig, l.Value, strings.Join(errs, "; "))
	}
	return nil
}

// SpotLabels mark a spot (or preemptible) node on the clouds and
// autoscalers that label their nodes: Karpenter, EKS managed node groups,
// GKE (spot and the older preemptible VMs) and AKS.
var SpotLabels = []Label{
	{"karpenter.sh/capacity-type", "spot"},
	{"eks.amazonaws.com/capacityType", "SPOT"},
	{"cloud.google.com/gke-spot", "true"},
	{"cloud.google.com/gke-preemptible", "true"},
	{"kubernetes.azure.com/scalesetpriority", "spot"},
}

// FactsOf returns what a Node object says of its node: instance type,
// region and zone from their labels (the legacy beta labels when the
// stable ones are absent), spot when one of SpotLabels or of spot is set
// (on-demand otherwise), and allocatable and capacity CPU and memory from
// its status. A value nodemeta would refuse is left out.
func FactsOf(n *corev1.Node, spot []Label) nodemeta.Facts {
	label := func(keys ...string) string {
		for _, k := range keys {
			if v := n.Labels[k]; v != "" {
				return v
			}
		}
		return ""
	}
	f := nodemeta.Facts{
		Name:         n.Name,
		InstanceType: label(LabelInstanceType, LabelInstanceTypeBeta),
		Region:       label(LabelRegion, LabelRegionBeta),
		Zone:         label(LabelZone, LabelZoneBeta),
		CapacityType: nodemeta.OnDemand,
		Source:       nodemeta.SourceKubernetes,
	}
	for _, list := range [][]Label{SpotLabels, spot} {
		for _, l := range list {
			if v, ok := n.Labels[l.Key]; ok && v == l.Value {
				f.CapacityType = nodemeta.Spot
			}
		}
	}
	if q, ok := n.Status.Allocatable[corev1.ResourceCPU]; ok {
		f.AllocatableCPUMillis = q.MilliValue()
	}
	if q, ok := n.Status.Allocatable[corev1.ResourceMemory]; ok {
		f.AllocatableMemoryBytes = q.Value()
	}
	if q, ok := n.Status.Capacity[corev1.ResourceCPU]; ok {
		f.CapacityCPUMillis = q.MilliValue()
	}
	if q, ok := n.Status.Capacity[corev1.ResourceMemory]; ok {
		f.CapacityMemoryBytes = q.Value()
	}
	// The trip through the wire's checks keeps what an aggregator accepts.
	f, _ = nodemeta.Decode(nodemeta.Encode(&f))
	return f
}

// NodeWatcher follows this node's Node object and keeps its facts. The
// agent runs without them: a Node object that does not exist, or that the
// agent may not read, leaves them unknown, said once in the log and in
// the gauge penny_agent_kube_node_facts_known.
type NodeWatcher struct {
	cfg      Config
	log      *slog.Logger
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	handler  cache.ResourceEventHandlerRegistration
	facts    atomic.Pointer[nodemeta.Facts] // nil while unknown

	mu  sync.Mutex
	why string // why the facts are unknown, as last logged

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// NewNodeWatcher returns a watcher of the Node object cfg.NodeName names,
// through client; cfg.SpotLabels add to SpotLabels. Start starts it.
func NewNodeWatcher(cfg Config, client kubernetes.Interface) (*NodeWatcher, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if client == nil {
		return nil, fmt.Errorf("%w: no client", ErrConfig)
	}
	w := &NodeWatcher{cfg: cfg, log: cfg.Logger}
	node := cfg.NodeName
	w.factory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = "metadata.name=" + node
		}),
		informers.WithTransform(transformNode))
	w.informer = w.factory.Core().V1().Nodes().Informer()
	if err := w.informer.SetWatchErrorHandlerWithContext(w.watchError); err != nil {
		return nil, fmt.Errorf("node watch error handler: %w", err)
	}
	reg, err := w.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    w.update,
		UpdateFunc: func(_, obj any) { w.update(obj) },
		DeleteFunc: w.deleted,
	})
	if err != nil {
		return nil, fmt.Errorf("node event handler: %w", err)
	}
	w.handler = reg
	if cfg.Registerer != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "penny_agent_kube_node_facts_known",
			Help: "1 when the agent knows its node's facts from the Node object, 0 when it does not (see its log).",
		}, func() float64 {
			if w.facts.Load() != nil {
				return 1
			}
			return 0
		})
		if err := cfg.Registerer.Register(g); err != nil {
			return nil, fmt.Errorf("register node metrics: %w", err)
		}
	}
	return w, nil
}

// Start starts following the Node object until ctx ends or Close. Call it
// once.
func (w *NodeWatcher) Start(ctx context.Context) {
	ctx, w.cancel = context.WithCancel(ctx)
	w.factory.StartWithContext(ctx)
	w.wg.Go(func() {
		if cache.WaitFor(ctx, "", w.handler.HasSyncedChecker()) && w.facts.Load() == nil {
			w.unknown(fmt.Sprintf("there is no Node object named %s", w.cfg.NodeName))
		}
	})
}

// Close stops the watcher and waits for it to stop.
func (w *NodeWatcher) Close() {
	if w.cancel != nil {
		w.cancel()
	}
	w.factory.Shutdown()
	w.wg.Wait()
}

// Facts returns the node's facts; ok is false while they are unknown.
func (w *NodeWatcher) Facts() (f nodemeta.Facts, ok bool) {
	if p := w.facts.Load(); p != nil {
		return *p, true
	}
	return nodemeta.Facts{}, false
}

// update takes the facts of an added or updated Node object.
func (w *NodeWatcher) update(obj any) {
	n, ok := obj.(*corev1.Node)
	if !ok || n.Name != w.cfg.NodeName {
		return // the API server filters by name; this is the second line
	}
	f := FactsOf(n, w.cfg.SpotLabels)
	old := w.facts.Swap(&f)
	if old != nil && *old == f {
		return
	}
	w.mu.Lock()
	w.why = ""
	w.mu.Unlock()
	w.log.Info("node facts from the Node object", "node", f.Name, "instance_type", f.InstanceType,
		"region", f.Region, "zone", f.Zone, "capacity_type", f.CapacityType,
		"allocatable_cpu_millis", f.AllocatableCPUMillis, "allocatable_memory_bytes", f.AllocatableMemoryBytes)
}

// deleted forgets the facts when the Node object is deleted.
func (w *NodeWatcher) deleted(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	if n, ok := obj.(*corev1.Node); !ok || n.Name != w.cfg.NodeName {
		return
	}
	w.facts.Store(nil)
	w.unknown("its Node object was deleted")
}

// unknown logs, once per reason, why the node's facts are unknown.
func (w *NodeWatcher) unknown(why string, attrs ...any) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if why == w.why {
		return
	}
	w.why = why
	w.log.Warn("node facts unknown (instance type, region, zone, capacity type, allocatable): "+why+
		"; the agent runs on, and --instance-type, --region, --zone and --capacity-type can give them",
		append([]any{"node", w.cfg.NodeName}, attrs...)...)
}

// watchError reports why the Node object cannot be read; the informer
// retries with a backoff.
func (w *NodeWatcher) watchError(ctx context.Context, _ *cache.Reflector, err error) {
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), apierrors.IsResourceExpired(err), apierrors.IsGone(err):
		w.log.DebugContext(ctx, "node watch restarts", "err", err)
	case w.facts.Load() != nil:
		// The last facts stay in force while the API server is away.
		w.log.DebugContext(ctx, "listing or watching the Node object failed; retrying", "err", err)
	case apierrors.IsForbidden(err):
		w.unknown("the agent may not read Node objects (its ClusterRole needs get, list and watch on nodes)", "err", err)
	default:
		w.unknown("listing the Node object failed; retrying", "err", err)
	}
}

// transformNode keeps of a Node object what its facts come from: its
// name, labels, allocatable and capacity. The rest (images, conditions,
// addresses, managed fields) is large and changes every few seconds.
func transformNode(obj any) (any, error) {
	n, ok := obj.(*corev1.Node)
	if !ok {
		return obj, nil
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, UID: n.UID, ResourceVersion: n.ResourceVersion, Labels: n.Labels},
		Status:     corev1.NodeStatus{Allocatable: n.Status.Allocatable, Capacity: n.Status.Capacity},
	}, nil
}

package custommetrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/spf13/pflag"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apiserver/pkg/endpoints"
	discoveryendpoint "k8s.io/apiserver/pkg/endpoints/discovery/aggregated"
	"k8s.io/klog/v2"
	cmv1beta1 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta1"
	cmv1beta2 "k8s.io/metrics/pkg/apis/custom_metrics/v1beta2"
	emv1beta1 "k8s.io/metrics/pkg/apis/external_metrics/v1beta1"
	basecmd "sigs.k8s.io/custom-metrics-apiserver/pkg/cmd"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/cmd/options"
	"sigs.k8s.io/custom-metrics-apiserver/pkg/provider"
)

// DefaultSecurePort is the default of --secure-port.
const DefaultSecurePort = 6443

// Adapter is the custom metrics apiserver: the library's AdapterBase,
// named penny, serving a Provider. Create it with NewAdapter, install its
// flags with AddFlags, parse them, then Run it once.
type Adapter struct {
	base  basecmd.AdapterBase
	flags *pflag.FlagSet
}

// NewAdapter returns an adapter whose standard options have Penny's
// defaults: --secure-port 6443, and without --tls-cert-file a self-signed
// certificate kept in memory (no --cert-dir).
// klogOnce sets klog's logger once per process (see Run).
var klogOnce sync.Once

func NewAdapter() *Adapter {
	a := &Adapter{}
	a.base.Name = "penny"
	a.base.CustomMetricsAdapterServerOptions = options.NewCustomMetricsAdapterServerOptions()
	a.base.SecureServing.BindPort = DefaultSecurePort
	a.base.SecureServing.ServerCert.CertDirectory = ""
	return a
}

// AddFlags installs the standard flags of an extension apiserver on fs:
// secure serving, delegated authentication and authorization, audit,
// features, and the Kubernetes client (--lister-kubeconfig). Call it once.
func (a *Adapter) AddFlags(fs *pflag.FlagSet) {
	a.flags = fs
	a.base.FlagSet = fs
	a.base.InstallFlags()
}

// Validate checks the standard options.
func (a *Adapter) Validate() error {
	if errs := a.base.CustomMetricsAdapterServerOptions.Validate(); len(errs) > 0 {
		return fmt.Errorf("custom metrics: %w", utilerrors.NewAggregate(errs))
	}
	return nil
}

// Run serves custom.metrics.k8s.io (v1beta1 and v1beta2) from a provider
// built from cfg until ctx is cancelled, then shuts down gracefully. The
// library logs through klog, which Run sends to cfg.Logger (klog is
// process-wide). It returns nil after ctx is cancelled, and why otherwise.
func (a *Adapter) Run(ctx context.Context, cfg Config) error {
	if a.flags == nil {
		return errors.New("custom metrics: run before AddFlags")
	}
	if err := registerLibraryMetrics(); err != nil {
		return fmt.Errorf("custom metrics: %w", err)
	}
	p, err := NewProvider(cfg)
	if err != nil {
		return err
	}
	// klog is process-wide and read without a lock by the apiserver's
	// goroutines: it is set once, by the first adapter of the process.
	klogOnce.Do(func() { klog.SetSlogLogger(p.cfg.Logger.With("component", "custom-metrics-apiserver")) })
	a.base.WithCustomMetrics(p)
	if cfg.ExternalMetrics {
		a.base.WithExternalMetrics(p)
	}
	srv, err := a.base.Server()
	if err != nil {
		if a.base.RemoteKubeConfigFile == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
			return fmt.Errorf("custom metrics api (outside a pod, give --lister-kubeconfig, "+
				"--authentication-kubeconfig and --authorization-kubeconfig): %w", err)
		}
		return fmt.Errorf("custom metrics api: %w", err)
	}
	if err := advertise(srv.GenericAPIServer.AggregatedDiscoveryGroupManager, p, cfg.ExternalMetrics); err != nil {
		return fmt.Errorf("custom metrics api: %w", err)
	}
	p.cfg.Logger.Info("custom metrics api starting", "port", a.base.SecureServing.BindPort,
		"window", p.cfg.Window, "max_staleness", p.cfg.MaxStaleness)
	if err := a.base.Run(ctx); err != nil {
		return fmt.Errorf("custom metrics api: %w", err)
	}
	return nil
}

// advertise lists the custom metrics API in the aggregated discovery
// document (/apis as apidiscovery.k8s.io/v2), as it is in the legacy one.
// The library fills only the legacy one, so that clients that ask for
// aggregated discovery (client-go's default), and kube-apiserver's
// aggregator merging the document, would otherwise find no resources.
// Both versions are listed, v1beta1 first, as the legacy /apis prefers it.
func advertise(m discoveryendpoint.ResourceManager, p *Provider, external bool) error {
	if m == nil {
		return nil // the server serves no aggregated discovery
	}
	if external {
		gv := emv1beta1.SchemeGroupVersion
		resources, err := endpoints.ConvertGroupVersionIntoToDiscovery(provider.NewExternalMetricResourceLister(p).ListAPIResources())
		if err != nil {
			return fmt.Errorf("discovery of %s: %w", gv, err)
		}
		m.AddGroupVersion(gv.Group, apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Resources: resources,
			Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent})
		m.SetGroupVersionPriority(metav1.GroupVersion{Group: gv.Group, Version: gv.Version}, 100, 100)
	}
	legacy := provider.NewCustomMetricResourceLister(p).ListAPIResources()
	for i, gv := range []schema.GroupVersion{cmv1beta1.SchemeGroupVersion, cmv1beta2.SchemeGroupVersion} {
		list := make([]metav1.APIResource, len(legacy))
		for j, r := range legacy {
			r.Group, r.Version = gv.Group, gv.Version
			list[j] = r
		}
		resources, err := endpoints.ConvertGroupVersionIntoToDiscovery(list)
		if err != nil {
			return fmt.Errorf("discovery of %s: %w", gv, err)
		}
		m.AddGroupVersion(gv.Group, apidiscoveryv2.APIVersionDiscovery{Version: gv.Version, Resources: resources,
			Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent})
		// Group priority as kube-apiserver's APIService for the group;
		// versions in the order of the legacy document.
		m.SetGroupVersionPriority(metav1.GroupVersion{Group: gv.Group, Version: gv.Version}, 100, 200-i)
	}
	return nil
}

// ListerKubeConfig is --lister-kubeconfig: the kubeconfig of the API
// server the adapter reads (empty: the in-cluster config).
func (a *Adapter) ListerKubeConfig() string { return a.base.RemoteKubeConfigFile }

// PrintFlags writes the usage of the standard flags, grouped by concern.
func (a *Adapter) PrintFlags(w io.Writer) {
	if a.flags == nil {
		return
	}
	// Which flag belongs where is learnt from fresh options, so that the
	// grouping follows the library's flags as they change.
	o := options.NewCustomMetricsAdapterServerOptions()
	groups := []struct {
		title string
		add   func(*pflag.FlagSet)
	}{
		{"Secure serving", o.SecureServing.AddFlags},
		{"Delegated authentication (TokenReview, client certificates, front proxy)", o.Authentication.AddFlags},
		{"Delegated authorization (SubjectAccessReview)", o.Authorization.AddFlags},
		{"Audit", o.Audit.AddFlags},
		{"Features", o.Features.AddFlags},
	}
	seen := map[string]bool{}
	section := func(title string, names *pflag.FlagSet) {
		out := pflag.NewFlagSet(title, pflag.ContinueOnError)
		names.VisitAll(func(f *pflag.Flag) {
			if real := a.flags.Lookup(f.Name); real != nil && !seen[f.Name] {
				seen[f.Name] = true
				out.AddFlag(real)
			}
		})
		if u := out.FlagUsages(); u != "" {
			fmt.Fprintf(w, "\n%s:\n%s", title, u)
		}
	}
	for _, g := range groups {
		names := pflag.NewFlagSet(g.title, pflag.ContinueOnError)
		g.add(names)
		section(g.title, names)
	}
	// The rest is AdapterBase's own: the client of the core API.
	rest := pflag.NewFlagSet("client", pflag.ContinueOnError)
	for _, n := range []string{"lister-kubeconfig", "discovery-interval", "client-qps", "client-burst"} {
		if f := a.flags.Lookup(n); f != nil {
			rest.AddFlag(f)
		}
	}
	section("Kubernetes API client", rest)
}

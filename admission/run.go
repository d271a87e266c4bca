package admission

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pennyhq/penny/internal/tlsfiles"
	"github.com/pennyhq/penny/internal/watchfile"
)

// Config is what `penny webhook` runs with.
type Config struct {
	// Listen is the address of the HTTPS server (the reviews, /healthz
	// and /metrics).
	Listen string
	// TLS is the serving certificate and key, read again when the files
	// change; with a CA file, reviews need a client certificate it signed
	// (RequireClientCert).
	TLS tlsfiles.Files
	// RulesFile is the rules ConfigMap's file, read again when it
	// changes; empty takes DefaultRules.
	RulesFile string
	// KubeConfig names the API server to read namespaces from; empty is
	// the cluster the webhook runs in.
	KubeConfig string
	// Limits (zero takes the defaults of Handler).
	MaxRequestBytes  int64
	MaxInFlight      int
	NamespaceTimeout time.Duration
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("admission: a listen address is required")
	}
	if c.TLS.CertFile == "" || c.TLS.KeyFile == "" {
		return errors.New("admission: a serving certificate and key are required: kube-apiserver calls webhooks over HTTPS only")
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if c.MaxRequestBytes < 0 || c.MaxInFlight < 0 || c.NamespaceTimeout < 0 {
		return errors.New("admission: limits must not be negative")
	}
	if c.MaxRequestBytes > 0 && c.MaxRequestBytes < 64<<10 {
		return fmt.Errorf("admission: max request bytes %d: a pod's review needs at least 64 KiB", c.MaxRequestBytes)
	}
	return nil
}

// Run serves the webhook until ctx is done.
func Run(ctx context.Context, cfg Config, log *slog.Logger) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := NewMetrics(reg)
	rules, err := loadRules(cfg.RulesFile, m, log)
	if err != nil {
		return err
	}
	// Look at the rules file without waiting for a review, so that a pod
	// the API server does not happen to call logs and counts a refused
	// file as promptly as the others.
	go func() {
		tick := time.NewTicker(watchfile.CheckEvery)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				rules()
			}
		}
	}()
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.KubeConfig)
	if err != nil {
		return fmt.Errorf("kubernetes client config: %w", err)
	}
	rc.UserAgent = "penny-webhook"
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return fmt.Errorf("kubernetes client: %w", err)
	}
	tlsCfg, err := tlsfiles.Server(cfg.TLS)
	if err != nil {
		return fmt.Errorf("serving certificate: %w", err)
	}
	h := &Handler{Rules: rules, Namespaces: NewNamespaces(ctx, client, 10*time.Second),
		RequireClientCert: cfg.TLS.CAFile != "", MaxRequestBytes: cfg.MaxRequestBytes, MaxInFlight: cfg.MaxInFlight,
		NamespaceTimeout: cfg.NamespaceTimeout, Log: log, Metrics: m}
	if err := h.Init(); err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.Handle(MutatePath, h)
	mux.HandleFunc(HealthzPath, Healthz)
	mux.Handle(MetricsPath, promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := &http.Server{
		Handler:           mux,
		TLSConfig:         tlsCfg,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	log.Info("webhook serving", "addr", ln.Addr().String(), "path", MutatePath, "rules", len(rules().Labels),
		"client_certs_required", h.RequireClientCert)
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// loadRules returns the rules in force: the defaults without a file, else
// the file's, read again when it changes (a file that does not parse
// keeps the last good rules, counted as refused).
func loadRules(path string, m *Metrics, log *slog.Logger) (func() *Rules, error) {
	if path == "" {
		r := DefaultRules()
		return func() *Rules { return r }, nil
	}
	parse := func(b []byte) (*Rules, error) {
		r, err := ParseRules(b)
		if err != nil {
			m.reloads.WithLabelValues("refused").Inc()
			return nil, err
		}
		m.reloads.WithLabelValues("ok").Inc()
		return r, nil
	}
	f, err := watchfile.New(path, "rules file", MaxRulesBytes, parse, log)
	if err != nil {
		return nil, err
	}
	return f.Load, nil
}

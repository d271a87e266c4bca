package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/pennyhq/penny/aggregator/access"
	"github.com/pennyhq/penny/aggregator/allocation"
	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
	"github.com/pennyhq/penny/aggregator/exporter"
	"github.com/pennyhq/penny/aggregator/gateway"
	"github.com/pennyhq/penny/aggregator/history"
	"github.com/pennyhq/penny/aggregator/ingest"
	"github.com/pennyhq/penny/aggregator/janitor"
	"github.com/pennyhq/penny/aggregator/podindex"
	"github.com/pennyhq/penny/aggregator/pricing"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/recommend"
	"github.com/pennyhq/penny/internal/tlsfiles"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvhttp"
	"github.com/pennyhq/penny/kvraft/transport"
	"github.com/pennyhq/penny/wire"
)

// Config configures one replica.
type Config struct {
	// Store is the replica's kvraft configuration; NewTransport, Logger and
	// Registerer are filled in by Start.
	Store kvraft.Config
	// SingleMember runs a one-member store without a peer transport.
	SingleMember bool
	// PeerListen, ClusterToken and PeerTLS configure the peer transport.
	PeerListen   string
	ClusterToken string
	PeerTLS      *transport.TLS
	// Listen is the HTTP listener's address (port 0 picks one).
	Listen string
	// TLS, when it names a certificate, serves the API over HTTPS (HTTP/2
	// and HTTP/1.1). Its CA file turns on authentication by client
	// certificates that CA signed (CN the user, O the groups; O=penny:agents
	// makes CN an agent's node), with the built-in rules alone when Access
	// names no authorizer: admins and agents.
	TLS tlsfiles.Files
	// APILimits bound the API listener's connections, headers and bodies
	// (limits.go); MaxRequestBytes bounds every KV and membership request
	// body (kvhttp.DefaultMaxRequestBytes, 1.5 MiB).
	APILimits       APILimits
	MaxRequestBytes int64
	// Access turns on the request path's modules: authentication,
	// authorization, rate limits and the audit log (package access). Its
	// Logger and Registerer are filled in by Start. With none on, every
	// client may do everything: fit for loopback only.
	Access access.Config
	// RequestTimeout bounds one API request; ShutdownGrace the wait for
	// in-flight requests on shutdown.
	RequestTimeout time.Duration
	ShutdownGrace  time.Duration
	// ReadStaleness is the default staleness bound of gateway reads.
	ReadStaleness time.Duration
	// SeriesTTL is how long a node may send nothing before its series are
	// deleted (10 minutes).
	SeriesTTL time.Duration
	// Limits bound the frames the ingest accepts.
	Limits wire.Limits
	// Ingest configures the ingest's limits and batching (package ingest's
	// defaults when zero); its Node, Limits, Logger and Registerer are
	// filled in by Start.
	Ingest ingest.Config
	// Pricing names the pricing file (OpenCost's default prices without
	// one), which the replica reloads when it changes and serves on
	// GET /v1/pricing; its Logger and Registerer are filled in by Start.
	Pricing pricing.Config
	// History configures the history of costs (the minute and hour
	// rollups, package history): its memory measure and retentions. Its
	// Store, Pricing, Logger and Registerer are filled in by Start.
	History history.Config
	// Allocation configures GET /v1/allocation: the cluster's name, the
	// tenant label and the limits of a query. Its History, Prices,
	// DefaultStaleness (ReadStaleness), Logger and Registerer are filled in
	// by Start.
	Allocation allocation.Config
	// PDBs are the cluster's PodDisruptionBudgets, for the scaling
	// recommendations (GET /v1/scaling/recommendations); nil outside
	// Kubernetes, where they say that budgets are unknown.
	PDBs recommend.PDBs
	// EnablePprof serves runtime profiles under /debug/pprof/, to admins
	// when authentication is on.
	EnablePprof bool
	// Gatherers are served on /metrics beside the replica's own registry,
	// such as the custom metrics library's (custommetrics.Gatherer). Their
	// families must not repeat the replica's.
	Gatherers []prometheus.Gatherer
	Logger    *slog.Logger
}

// Complete fills in the defaults, the store's included.
func (c *Config) Complete() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	c.APILimits.Complete()
	c.Store.Complete()
	if c.TLS.CAFile != "" && c.Access.Authenticator == nil {
		c.Access.Authenticator = authn.ClientCerts{}
		if c.Access.Authorizer == nil {
			c.Access.Authorizer = authz.Policy{}
		}
	}
}

// Validate checks a completed config; it changes nothing. The store's
// config is checked when the store starts, once Start has given it its
// transport.
func (c *Config) Validate() error {
	if c.Listen == "" {
		return errors.New("server: no listen address")
	}
	if !c.SingleMember && (c.PeerListen == "" || c.ClusterToken == "") {
		return errors.New("server: a cluster member needs a peer listen address and a cluster token")
	}
	if c.RequestTimeout <= 0 || c.ShutdownGrace < 0 {
		return errors.New("server: request timeout must be positive, shutdown grace not negative")
	}
	if err := c.TLS.Validate(); err != nil {
		return err
	}
	if err := c.APILimits.Validate(); err != nil {
		return err
	}
	kc := kvhttp.Config{MaxRequestBytes: c.MaxRequestBytes}
	kc.Complete()
	if err := kc.Validate(); err != nil {
		return err
	}
	if c.TLS.CAFile != "" && c.TLS.CertFile == "" {
		return errors.New("server: a client CA needs the server's own certificate and key")
	}
	hc := c.History
	hc.Complete()
	if err := hc.Validate(); err != nil {
		return err
	}
	ac := c.Allocation
	ac.Complete()
	if err := ac.Validate(); err != nil {
		return err
	}
	return c.Limits.Validate()
}

// historyConfig is the history's config with what Start fills in; the
// store is set once it runs.
func (c *Config) historyConfig(log *slog.Logger, reg prometheus.Registerer, prices *pricing.Watcher) history.Config {
	hc := c.History
	hc.Pricing, hc.Logger, hc.Registerer = prices, log, reg
	return hc
}

// Server is a running replica.
type Server struct {
	Node *kvraft.Node
	// Reads is Node with its pod index: what readers of pods read.
	Reads podindex.Store
	// Addr is the HTTP listener's address.
	Addr net.Addr

	cfg    Config
	log    *slog.Logger
	reg    *prometheus.Registry
	srv    *http.Server
	in     *ingest.Ingest
	prices *pricing.Watcher
	hist   *history.Reader
	chain  *access.Chain
	cancel context.CancelFunc
	wg     sync.WaitGroup // every goroutine Start starts but the supervisor
	done   chan struct{}  // closed by the supervisor once all have returned
	err    error
}

// Start starts the store, the ingest and the HTTP server. It completes cfg
// with the defaults first.
func Start(ctx context.Context, cfg Config) (_ *Server, err error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("member", cfg.Store.ID)
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// A refused pricing file stops the start before the store does.
	pc := cfg.Pricing
	pc.Logger, pc.Registerer = log, reg
	prices, err := pricing.NewWatcher(pc)
	if err != nil {
		return nil, err
	}
	sc := cfg.Store
	sc.Logger, sc.Registerer = cfg.Logger, reg
	index := podindex.New()
	sc.Watcher = index
	if cfg.SingleMember {
		sc.NewTransport = kvraft.SingleMember
	} else {
		var self string
		for _, m := range sc.InitialCluster {
			if m.ID == sc.ID {
				self = m.PeerURL
			}
		}
		sc.NewTransport = func(r kvraft.Receiver) (kvraft.Transport, error) {
			return transport.New(transport.Config{ID: sc.ID, ClusterToken: cfg.ClusterToken, ListenAddr: cfg.PeerListen,
				AdvertiseURL: self, TLS: cfg.PeerTLS, Logger: log}, r)
		}
	}
	node, err := kvraft.Start(ctx, sc)
	if err != nil {
		return nil, fmt.Errorf("start replica: %w", err)
	}
	defer func() {
		if err != nil {
			node.Stop()
		}
	}()

	reads := podindex.Store{Node: node, Index: index}
	api, err := kvhttp.NewHandler(node, kvhttp.Config{Timeout: cfg.RequestTimeout, MaxRequestBytes: cfg.MaxRequestBytes,
		Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	ic := cfg.Ingest
	ic.Node, ic.Limits, ic.Logger, ic.Registerer = node, cfg.Limits, log, reg
	in, err := ingest.New(ic)
	if err != nil {
		return nil, err
	}
	// Every reader prices memory in the measure the history rolls up.
	memory := cfg.History.Memory
	gw, err := gateway.NewHandler(gateway.Config{Store: reads, DefaultStaleness: cfg.ReadStaleness,
		Timeout: cfg.RequestTimeout, Prices: prices, MemoryMeasure: memory, Logger: log})
	if err != nil {
		return nil, err
	}
	coll, err := exporter.New(exporter.Config{Store: reads, Prices: prices, MemoryMeasure: memory,
		TenantLabel: cfg.Allocation.TenantLabel, Logger: log})
	if err != nil {
		return nil, err
	}
	jan, err := janitor.New(janitor.Config{Store: node, TTL: cfg.SeriesTTL, Logger: log, Registerer: reg})
	if err != nil {
		return nil, err
	}
	hc := cfg.historyConfig(log, reg, prices)
	hc.Store = node
	roller, err := history.New(hc)
	if err != nil {
		return nil, fmt.Errorf("history: %w", err)
	}
	hist, err := history.NewReader(history.ReaderConfig{Store: node})
	if err != nil {
		return nil, err
	}
	ac := cfg.Allocation
	ac.History, ac.Prices, ac.DefaultStaleness, ac.Logger, ac.Registerer = hist, prices, cfg.ReadStaleness, log, reg
	alloc, err := allocation.NewHandler(ac)
	if err != nil {
		return nil, err
	}
	live, err := query.New(query.Config{Store: reads, Prices: prices, MemoryMeasure: memory})
	if err != nil {
		return nil, err
	}
	rec, err := recommend.NewHandler(recommend.Config{History: hist, Live: live, Store: node, Prices: prices, PDBs: cfg.PDBs,
		Cluster: ac.Cluster, TenantLabel: ac.TenantLabel, Limits: ac.Limits, DefaultStaleness: cfg.ReadStaleness, Logger: log})
	if err != nil {
		return nil, err
	}

	var tlsCfg *tls.Config
	if cfg.TLS.Enabled() {
		if tlsCfg, err = tlsfiles.Server(cfg.TLS); err != nil {
			return nil, fmt.Errorf("api tls: %w", err)
		}
	}
	xc := cfg.Access
	xc.Logger, xc.Registerer = log, reg
	chain, err := access.New(xc)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = chain.Close()
		}
	}()
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle("GET /v1/health", api)
	mux.Handle(ingest.Path, bindAgent(in))
	mux.Handle(gateway.ContainersPath, gw)
	mux.Handle(gateway.PodsPath, gw)
	mux.Handle(gateway.NamespacesPath, gw)
	mux.Handle(gateway.NodesPath, gw)
	mux.Handle(allocation.Path, alloc)
	mux.Handle(recommend.Path, rec)
	mux.Handle("GET "+pricing.Path, prices.Handler())
	// The exporter's families (a series per container and family, most
	// of a scrape) are gathered beside the registry, not in it: a registry
	// checks and sorts every series again (exporter.Collector.Gather).
	gatherers := exporter.Beside(append(prometheus.Gatherers{reg}, cfg.Gatherers...), coll)
	scrape, err := exporter.Handler(gatherers, reg)
	if err != nil {
		return nil, err
	}
	mux.Handle("GET /metrics", scrape)
	if cfg.EnablePprof {
		mux.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
		mux.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		mux.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen for api: %w", err)
	}
	lim, lm := cfg.APILimits, newLimitMetrics(reg)
	ln = newLimitListener(ln, lim.MaxConns, lm)
	// The KV routes are matched on the path as sent, before the mux
	// cleans it (a cleaned key would be another key).
	// The access modules see every request, KV routes included.
	handler := bodyDeadline(chain.Wrap(kvhttp.Route(api, mux)), lim.BodyTimeout, lm)
	// No read or write timeout: an agent's ingest stream lasts as long as
	// its connection; bodies get their deadlines per request (limits.go).
	// Agents speak HTTP/2: over TLS, or without it by prior knowledge (h2c).
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: lim.ReadHeaderTimeout, IdleTimeout: lim.IdleTimeout,
		Protocols: new(http.Protocols), TLSConfig: tlsCfg, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	srv.HTTP2 = &http.HTTP2Config{MaxReceiveBufferPerConnection: lim.H2ReceiveBuffer, MaxReceiveBufferPerStream: lim.H2ReceiveBuffer}
	srv.Protocols.SetHTTP1(true)
	if tlsCfg != nil {
		srv.Protocols.SetHTTP2(true)
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
	}

	rctx, cancel := context.WithCancel(context.Background())
	s := &Server{Node: node, Reads: reads, Addr: ln.Addr(), cfg: cfg, log: log, reg: reg, srv: srv, in: in, prices: prices, hist: hist,
		chain: chain, cancel: cancel, done: make(chan struct{})}
	s.wg.Go(func() { runJanitor(rctx, jan) })
	s.wg.Go(func() { roller.Run(rctx) })
	s.wg.Go(func() { prices.Run(rctx) })
	s.wg.Go(func() { in.Run(rctx) })
	serveErr := make(chan error, 1)
	s.wg.Go(func() {
		if tlsCfg != nil {
			serveErr <- srv.ServeTLS(ln, "", "") // the certificate comes from TLSConfig
			return
		}
		serveErr <- srv.Serve(ln)
	})
	// The supervisor stops everything when Stop is called or a part fails,
	// and closes done once every goroutine has returned.
	go func() {
		defer close(s.done)
		select {
		case <-rctx.Done():
		case <-node.Done():
			s.err = node.Err()
			if s.err == nil {
				s.err = kvraft.ErrStopped
			}
		case err := <-serveErr:
			s.err = fmt.Errorf("api server: %w", err)
		}
		s.shutdown()
		cancel()
		if testHooks.waiting != nil {
			testHooks.waiting()
		}
		s.wg.Wait()
	}()
	log.Info("aggregator replica serving", "api", ln.Addr().String(), "tls", tlsCfg != nil,
		"client_certs", cfg.TLS.CAFile != "", "modules", chain.Modules(), "peer", cfg.PeerListen, "data_dir", sc.DataDir)
	return s, nil
}

// testHooks let this package's tests watch the shutdown; unset outside them.
var testHooks struct {
	// runJanitor runs the janitor in place of its Run method.
	runJanitor func(ctx context.Context, run func(context.Context))
	// waiting is called when the shutdown starts waiting for the server's
	// goroutines.
	waiting func()
}

func runJanitor(ctx context.Context, j *janitor.Janitor) {
	if testHooks.runJanitor != nil {
		testHooks.runJanitor(ctx, j.Run)
		return
	}
	j.Run(ctx)
}

// shutdown stops serving and stops the store.
func (s *Server) shutdown() {
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	// Agents' streams last as long as their connections: end them, or the
	// shutdown would wait out its grace for them.
	s.in.CloseStreams()
	if err := s.srv.Shutdown(sctx); err != nil {
		s.log.Warn("api server shutdown", "err", err)
		s.srv.Close()
	}
	s.Node.Stop()
	if err := s.chain.Close(); err != nil {
		s.log.Warn("audit log close", "err", err)
	}
}

// Stop shuts the replica down and waits for the store and every goroutine
// the replica started (ingest, janitor, history roller, pricing watcher,
// HTTP server) to return.
func (s *Server) Stop() {
	s.cancel()
	<-s.done
}

// Registerer is the registry the replica's /metrics serves, for
// collectors of components that run beside it.
func (s *Server) Registerer() prometheus.Registerer { return s.reg }

// Pricing is the prices in force, kept up to date with the pricing file.
func (s *Server) Pricing() *pricing.Watcher { return s.prices }

// History reads the history of costs (minute and hour rollups) for the
// cost model.
func (s *Server) History() *history.Reader { return s.hist }

// Done is closed when the replica has stopped.
func (s *Server) Done() <-chan struct{} { return s.done }

// Err says why the replica stopped on its own (nil after Stop).
func (s *Server) Err() error {
	<-s.done
	return s.err
}

// bindAgent holds the ingest to the node of an authenticated agent: every
// frame on its stream must name that node. Authorization lets only agents
// reach the ingest when authentication is on.
func bindAgent(in http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := authn.FromContext(r.Context()); id != nil {
			r = r.WithContext(ingest.WithAgentNode(r.Context(), id.Node))
		}
		in.ServeHTTP(w, r)
	})
}

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/internal/tlsfiles"
	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/transport"
)

func init() {
	register("aggregator", command{
		summary: "run one aggregator replica: the replicated store, agent ingest and the read APIs",
		run:     runAggregator,
	})
}

// aggregatorConfig is the parsed command line of `penny aggregator`.
type aggregatorConfig struct {
	ID             uint64
	DataDir        string
	Listen         string
	PeerListen     string
	InitialCluster string
	Join           bool
	APIURL         string
	ClusterToken   string
	PeerTLS        transport.TLS
	APITLS         tlsfiles.Files
	Tick           time.Duration
	ElectionTicks  int
	SnapshotCount  uint64
	SnapCatchUp    uint64
	RequestTimeout time.Duration
	ShutdownGrace  time.Duration
	EnablePprof    bool
	ReadStaleness  time.Duration
	SeriesTTL      time.Duration

	members []kvraft.Member
}

func parseAggregatorFlags(args []string, out io.Writer) (*aggregatorConfig, error) {
	c := &aggregatorConfig{}
	fs := flag.NewFlagSet("aggregator", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Uint64Var(&c.ID, "id", 0, "member ID of this replica (required, 1..65535, never reused)")
	fs.StringVar(&c.DataDir, "data-dir", "", "directory for the WAL and snapshots (required)")
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:7379", "HOST:PORT of the HTTP API")
	fs.StringVar(&c.PeerListen, "peer-listen", "127.0.0.1:7380", "HOST:PORT of the Raft peer transport")
	fs.StringVar(&c.InitialCluster, "initial-cluster", "", "ID=PEER_URL,... of the members (required; this member's entry is its advertised peer URL)")
	fs.BoolVar(&c.Join, "join", false, "join a running cluster after `POST /v1/cluster/members` added this member")
	fs.StringVar(&c.APIURL, "advertise-api-url", "", "API URL published in the membership (default http://<listen>)")
	fs.StringVar(&c.ClusterToken, "cluster-token", "penny", "token shared by all members; peers with another token are refused")
	fs.StringVar(&c.APITLS.CertFile, "cert-file", "", "TLS certificate of the API (agents, reads, KV API; enables https)")
	fs.StringVar(&c.APITLS.KeyFile, "key-file", "", "TLS key of the API")
	fs.StringVar(&c.APITLS.CAFile, "client-ca-file", "", "CA that signs agent certificates: the ingest and the KV API then require one")
	fs.StringVar(&c.PeerTLS.CertFile, "peer-cert-file", "", "TLS certificate for the peer transport (enables https)")
	fs.StringVar(&c.PeerTLS.KeyFile, "peer-key-file", "", "TLS key for the peer transport")
	fs.StringVar(&c.PeerTLS.TrustedCAFile, "peer-trusted-ca-file", "", "CA that signs peer certificates")
	fs.BoolVar(&c.PeerTLS.ClientCertAuth, "peer-client-cert-auth", false, "require peers to present a certificate signed by the trusted CA")
	fs.DurationVar(&c.Tick, "tick", 100*time.Millisecond, "Raft tick; heartbeats go out every tick")
	fs.IntVar(&c.ElectionTicks, "election-ticks", 10, "election timeout in ticks")
	fs.Uint64Var(&c.SnapshotCount, "snapshot-count", 10000, "applied entries between snapshots")
	fs.Uint64Var(&c.SnapCatchUp, "snapshot-catch-up-entries", 5000, "log entries kept behind a snapshot for slow followers")
	fs.DurationVar(&c.RequestTimeout, "request-timeout", 5*time.Second, "timeout of one API request")
	fs.DurationVar(&c.ShutdownGrace, "shutdown-grace", 5*time.Second, "time given to in-flight requests on shutdown")
	fs.BoolVar(&c.EnablePprof, "enable-pprof", false, "serve runtime profiles under /debug/pprof/ on the API listener")
	fs.DurationVar(&c.ReadStaleness, "read-staleness", 2*time.Second, "staleness bound of /v1/containers reads that ask for no consistency")
	fs.DurationVar(&c.SeriesTTL, "series-ttl", 10*time.Minute, "delete a node's series after its agent sent nothing for this long")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if c.APIURL == "" {
		c.APIURL = "http://" + c.Listen
		if c.APITLS.CertFile != "" {
			c.APIURL = "https://" + c.Listen
		}
	}
	return c, c.Validate()
}

// Validate checks the flags and parses the initial cluster.
func (c *aggregatorConfig) Validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("--id is required"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("--data-dir is required"))
	}
	for name, addr := range map[string]string{"--listen": c.Listen, "--peer-listen": c.PeerListen} {
		if _, _, err := net.SplitHostPort(addr); err != nil {
			errs = append(errs, fmt.Errorf("%s %q: %w", name, addr, err))
		}
	}
	if c.InitialCluster == "" {
		errs = append(errs, errors.New("--initial-cluster is required"))
	} else if ms, err := kvraft.ParseCluster(c.InitialCluster); err != nil {
		errs = append(errs, fmt.Errorf("--initial-cluster: %w", err))
	} else {
		c.members = ms
		if c.self() == nil {
			errs = append(errs, fmt.Errorf("--initial-cluster has no entry for --id %d", c.ID))
		}
	}
	tlsSet := c.PeerTLS.CertFile != "" || c.PeerTLS.KeyFile != ""
	if tlsSet && (c.PeerTLS.CertFile == "" || c.PeerTLS.KeyFile == "") {
		errs = append(errs, errors.New("--peer-cert-file and --peer-key-file go together"))
	}
	if (c.APITLS.CertFile == "") != (c.APITLS.KeyFile == "") {
		errs = append(errs, errors.New("--cert-file and --key-file go together"))
	}
	if c.APITLS.CAFile != "" && c.APITLS.CertFile == "" {
		errs = append(errs, errors.New("--client-ca-file needs --cert-file and --key-file"))
	}
	if c.Tick <= 0 || c.ElectionTicks < 2 || c.SnapshotCount == 0 || c.SnapCatchUp == 0 || c.RequestTimeout <= 0 || c.ShutdownGrace < 0 {
		errs = append(errs, errors.New("--tick, --election-ticks (>= 2), --snapshot-count, --snapshot-catch-up-entries and --request-timeout must be positive"))
	}
	return errors.Join(errs...)
}

func (c *aggregatorConfig) self() *kvraft.Member {
	for i := range c.members {
		if c.members[i].ID == c.ID {
			return &c.members[i]
		}
	}
	return nil
}

func runAggregator(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg, err := parseAggregatorFlags(args, stdout)
	if err != nil {
		return err
	}
	var peerTLS *transport.TLS
	if cfg.PeerTLS.CertFile != "" {
		peerTLS = &cfg.PeerTLS
	}
	srv, err := server.Start(ctx, server.Config{
		Store: kvraft.Config{
			ID:                     cfg.ID,
			DataDir:                cfg.DataDir,
			InitialCluster:         cfg.members,
			Join:                   cfg.Join,
			APIURL:                 cfg.APIURL,
			TickInterval:           cfg.Tick,
			ElectionTicks:          cfg.ElectionTicks,
			SnapshotCount:          cfg.SnapshotCount,
			SnapshotCatchUpEntries: cfg.SnapCatchUp,
			RequestTimeout:         cfg.RequestTimeout,
		},
		PeerListen:     cfg.PeerListen,
		ClusterToken:   cfg.ClusterToken,
		PeerTLS:        peerTLS,
		Listen:         cfg.Listen,
		TLS:            cfg.APITLS,
		RequestTimeout: cfg.RequestTimeout,
		ShutdownGrace:  cfg.ShutdownGrace,
		ReadStaleness:  cfg.ReadStaleness,
		SeriesTTL:      cfg.SeriesTTL,
		EnablePprof:    cfg.EnablePprof,
		Logger:         log,
	})
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		log.Info("shutting down", "member", cfg.ID)
		srv.Stop()
		return nil
	case <-srv.Done():
	}
	if err := srv.Err(); errors.Is(err, kvraft.ErrRemoved) {
		log.Info("this member was removed from the cluster; exiting", "member", cfg.ID)
		return nil
	} else if err != nil {
		return err
	}
	return nil
}

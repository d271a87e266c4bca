package transport

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"go.etcd.io/etcd/client/pkg/v3/types"
	"go.etcd.io/etcd/server/v3/etcdserver/api/rafthttp"
	stats "go.etcd.io/etcd/server/v3/etcdserver/api/v2stats"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/internal/zapslog"
)

// TLS configures the peer listener and the connections to peers. With
// ClientCertAuth, peers must present a certificate signed by TrustedCAFile.
type TLS struct {
	CertFile, KeyFile string
	TrustedCAFile     string
	ClientCertAuth    bool
}

// Config configures a Transport.
type Config struct {
	// ID is the local member ID.
	ID uint64
	// ClusterToken is shared by all members of one cluster.
	ClusterToken string
	// Listener, if set, is used for the peer server; otherwise ListenAddr
	// is bound.
	Listener   net.Listener
	ListenAddr string
	// AdvertiseURL is the URL peers use to reach this member.
	AdvertiseURL string
	// TLS, if set, serves and dials https.
	TLS *TLS
	// DialTimeout bounds connecting to a peer (1s).
	DialTimeout time.Duration
	// Logger receives the transport's logs (discarded if nil).
	Logger *slog.Logger
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.DialTimeout == 0 {
		c.DialTimeout = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == 0 {
		errs = append(errs, errors.New("id must be > 0"))
	}
	if c.ClusterToken == "" {
		errs = append(errs, errors.New("cluster token is required"))
	}
	if c.Listener == nil && c.ListenAddr == "" {
		errs = append(errs, errors.New("a listen address is required"))
	}
	u, err := url.Parse(c.AdvertiseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("advertise url %q must be http(s)://host:port", c.AdvertiseURL))
	}
	if c.TLS != nil && (c.TLS.CertFile == "" || c.TLS.KeyFile == "") {
		errs = append(errs, errors.New("tls needs a certificate and a key"))
	}
	if c.TLS != nil && c.TLS.ClientCertAuth && c.TLS.TrustedCAFile == "" {
		errs = append(errs, errors.New("client certificate auth needs a trusted CA file"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("transport config: %w", err)
	}
	return nil
}

// ClusterID derives the cluster ID that rafthttp checks from a token.
func ClusterID(token string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(token))
	return h.Sum64()
}

// Transport implements kvraft.Transport over rafthttp.
type Transport struct {
	log  *slog.Logger
	rt   *rafthttp.Transport
	srv  *http.Server
	ln   net.Listener
	errc chan error
	stop chan struct{}

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// New starts the peer server and returns the transport; r receives the
// messages that peers send. It completes cfg with the defaults first.
func New(cfg Config, r kvraft.Receiver) (*Transport, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.With("component", "rafthttp")
	zl := zapslog.New(log)
	var tlsInfo transport.TLSInfo
	if cfg.TLS != nil {
		tlsInfo = transport.TLSInfo{CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
			TrustedCAFile: cfg.TLS.TrustedCAFile, ClientCertAuth: cfg.TLS.ClientCertAuth, Logger: zl}
	}
	urls, err := types.NewURLs([]string{cfg.AdvertiseURL})
	if err != nil {
		return nil, fmt.Errorf("advertise url: %w", err)
	}
	idStr := types.ID(cfg.ID).String()
	t := &Transport{log: log, errc: make(chan error, 1), stop: make(chan struct{})}
	t.rt = &rafthttp.Transport{
		Logger:      zl,
		DialTimeout: cfg.DialTimeout,
		TLSInfo:     tlsInfo,
		ID:          types.ID(cfg.ID),
		URLs:        urls,
		ClusterID:   types.ID(ClusterID(cfg.ClusterToken)),
		Raft:        r,
		ServerStats: stats.NewServerStats(idStr, idStr),
		LeaderStats: stats.NewLeaderStats(zap.NewNop(), idStr),
		ErrorC:      t.errc,
	}
	if err := t.rt.Start(); err != nil {
		return nil, fmt.Errorf("start rafthttp: %w", err)
	}
	ln := cfg.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", cfg.ListenAddr); err != nil {
			t.rt.Stop()
			return nil, fmt.Errorf("listen for peers: %w", err)
		}
	}
	if cfg.TLS != nil {
		sc, err := tlsInfo.ServerConfig()
		if err != nil {
			ln.Close()
			t.rt.Stop()
			return nil, fmt.Errorf("peer tls: %w", err)
		}
		ln = tls.NewListener(ln, sc)
	}
	t.ln = ln
	mux := http.NewServeMux()
	mux.Handle(rafthttp.RaftPrefix, t.rt.Handler())
	mux.Handle(rafthttp.RaftPrefix+"/", t.rt.Handler())
	t.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	t.wg.Go(func() {
		if err := t.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("peer server stopped", "err", err)
		}
	})
	t.wg.Go(func() {
		for {
			select {
			case err := <-t.errc:
				// rafthttp's errMemberRemoved is unexported: peers answer
				// 410 Gone to a member they removed, as etcd does.
				if strings.Contains(err.Error(), memberRemoved) {
					r.ReportRemoved()
					continue
				}
				log.Error("peer transport reported a critical error", "err", err)
			case <-t.stop:
				return
			}
		}
	})
	log.Info("peer transport listening", "addr", ln.Addr().String(), "advertise", cfg.AdvertiseURL)
	return t, nil
}

// memberRemoved is the text of rafthttp's error for a member its peers
// removed from the cluster.
const memberRemoved = "the member has been permanently removed from the cluster"

// Addr returns the address the peer server listens on.
func (t *Transport) Addr() net.Addr { return t.ln.Addr() }

// Send implements kvraft.Transport.
func (t *Transport) Send(msgs []*raftpb.Message) {
	if len(msgs) == 0 {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.rt.Send(msgs)
	}
}

// AddPeer implements kvraft.Transport.
func (t *Transport) AddPeer(id uint64, peerURL string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.rt.AddPeer(types.ID(id), []string{peerURL})
	}
}

// ActiveSince implements kvraft.PeerStatus: when the stream to peer id
// became active, or the zero time if it is not connected now.
func (t *Transport) ActiveSince(id uint64) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return time.Time{}
	}
	return t.rt.ActiveSince(types.ID(id))
}

// RemovePeer implements kvraft.Transport.
func (t *Transport) RemovePeer(id uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed && t.rt.Get(types.ID(id)) != nil {
		t.rt.RemovePeer(types.ID(id))
	}
}

// Close stops the peer streams and the peer server.
func (t *Transport) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.mu.Unlock()
	t.rt.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := t.srv.Shutdown(ctx)
	if err != nil {
		err = t.srv.Close()
	}
	close(t.stop)
	t.wg.Wait()
	if err != nil {
		return fmt.Errorf("close peer server: %w", err)
	}
	return nil
}

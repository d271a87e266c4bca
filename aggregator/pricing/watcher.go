package pricing

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// DefaultInterval is how often a Watcher looks at its file.
const DefaultInterval = 10 * time.Second

// Config configures a Watcher.
type Config struct {
	// Path is the pricing file; empty means OpenCost's defaults.
	Path string
	// Overrides replace the on-demand default prices (penny local's
	// flags), in every version of the file.
	Overrides Overrides
	// Interval is how often to look at the file (DefaultInterval).
	Interval time.Duration
	// Logger receives reloads and refusals (discarded if nil).
	Logger *slog.Logger
	// Registerer, if set, receives the Watcher's metrics.
	Registerer prometheus.Registerer
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Complete fills in the defaults.
func (c *Config) Complete() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks a completed config; it changes nothing.
func (c *Config) Validate() error {
	if c.Interval <= 0 {
		return errors.New("pricing: the reload interval must be positive")
	}
	return c.Overrides.Validate()
}

// Status is the state of a Watcher: the prices in force and where they
// come from.
type Status struct {
	// Pricing is the prices in force.
	Pricing *Pricing
	// File is the pricing file's path ("" without one); SHA256 the hash of
	// the content in force, LoadedAt when it was put in force (the start,
	// without a file).
	File     string
	SHA256   string
	LoadedAt time.Time
	// Refused, when set, is why the file as it is now was refused: the
	// prices in force are an earlier version's.
	Refused *Refusal
}

// Refusal is a version of the file that was refused.
type Refusal struct {
	Time   time.Time
	SHA256 string
	Err    error
}

// Watcher keeps the prices of a pricing file in force, reloading the file
// when its content changes.
type Watcher struct {
	cfg    Config
	status atomic.Pointer[Status]

	// mu serializes reloads; seen is what the last one read: "sha256:HEX"
	// or "error:MESSAGE", so that an unchanged file, or an unchanged
	// failure to read it, is not handled twice.
	mu   sync.Mutex
	seen string

	reloads     *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	info        *prometheus.GaugeVec
}

// NewWatcher loads the pricing file (an error if it is refused) and
// registers the Watcher's metrics. It completes cfg with the defaults
// first. Run follows the file's changes.
func NewWatcher(cfg Config) (*Watcher, error) {
	cfg.Complete()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	w := &Watcher{
		cfg: cfg,
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "penny_pricing_reloads_total",
			Help: "Loads of the pricing file, the first included, by result: ok, or refused (the last good prices stay in force)."},
			[]string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{Name: "penny_pricing_last_reload_success_timestamp_seconds",
			Help: "When the prices in force were loaded (Unix seconds): the start, or the last accepted reload of the pricing file."}),
		info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "penny_pricing_info",
			Help: "The prices in force: their currency and source (default: OpenCost's, file, flags); always 1."},
			[]string{"currency", "source"}),
	}
	w.reloads.WithLabelValues("ok")
	w.reloads.WithLabelValues("refused")
	if cfg.Path == "" {
		p, err := New(nil, cfg.Overrides)
		if err != nil {
			return nil, err
		}
		w.publish(&Status{Pricing: p, LoadedAt: cfg.Now()})
	} else {
		data, sum, err := w.read()
		if err != nil {
			return nil, fmt.Errorf("pricing file %s: %w", cfg.Path, err)
		}
		p, err := Parse(data, cfg.Overrides)
		if err != nil {
			return nil, fmt.Errorf("pricing file %s: %w", cfg.Path, err)
		}
		w.seen = "sha256:" + sum
		w.reloads.WithLabelValues("ok").Inc()
		w.publish(&Status{Pricing: p, File: cfg.Path, SHA256: sum, LoadedAt: cfg.Now()})
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{w.reloads, w.lastSuccess, w.info} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("pricing: register metrics: %w", err)
			}
		}
	}
	st := w.Status()
	cfg.Logger.Info("prices in force", "file", cfg.Path, "source", st.Pricing.Source(), "currency", st.Pricing.Currency(),
		"node_prices", len(st.Pricing.file.Nodes))
	return w, nil
}

// Current returns the prices in force.
func (w *Watcher) Current() *Pricing { return w.status.Load().Pricing }

// Rates returns the prices in force of one node (Pricing.Rates).
func (w *Watcher) Rates(f Facts) Rates { return w.Current().Rates(f) }

// Status returns the Watcher's state; the caller must not change it.
func (w *Watcher) Status() *Status { return w.status.Load() }

// Run looks at the file every Interval and reloads it when its content
// changed, until ctx is done. Without a file it returns at once.
func (w *Watcher) Run(ctx context.Context) {
	if w.cfg.Path == "" {
		return
	}
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		_ = w.Reload() // logged and counted
	}
}

// Reload reads the file now and puts it in force if its content changed
// and it is valid. It returns why the file was refused, or nil (also when
// nothing changed). An unreadable file is refused too; the prices in force
// stay.
func (w *Watcher) Reload() error {
	if w.cfg.Path == "" {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	data, sum, err := w.read()
	seen := "sha256:" + sum
	if err != nil {
		seen = "error:" + err.Error()
	}
	if seen == w.seen {
		if st := w.Status(); st.Refused != nil {
			return st.Refused.Err
		}
		return nil
	}
	w.seen = seen
	var p *Pricing
	if err == nil {
		p, err = Parse(data, w.cfg.Overrides)
	}
	now := w.cfg.Now()
	old := w.Status()
	if err != nil {
		w.reloads.WithLabelValues("refused").Inc()
		st := *old
		st.Refused = &Refusal{Time: now, SHA256: sum, Err: err}
		w.status.Store(&st)
		w.cfg.Logger.Warn("pricing file refused; the last good prices stay in force", "file", w.cfg.Path,
			"sha256", sum, "in_force", old.SHA256, "err", err)
		return err
	}
	w.reloads.WithLabelValues("ok").Inc()
	w.publish(&Status{Pricing: p, File: w.cfg.Path, SHA256: sum, LoadedAt: now})
	w.cfg.Logger.Info("pricing file reloaded", "file", w.cfg.Path, "sha256", sum, "source", p.Source(),
		"currency", p.Currency(), "node_prices", len(p.file.Nodes))
	return nil
}

// read reads the file and hashes it.
func (w *Watcher) read() ([]byte, string, error) {
	data, err := ReadFile(w.cfg.Path)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(data)
	return data, hex.EncodeToString(sum[:]), nil
}

// publish puts st in force and updates the metrics.
func (w *Watcher) publish(st *Status) {
	w.status.Store(st)
	w.lastSuccess.Set(float64(st.LoadedAt.UnixNano()) / 1e9)
	w.info.Reset()
	w.info.WithLabelValues(st.Pricing.Currency(), string(st.Pricing.Source())).Set(1)
}

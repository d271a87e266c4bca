package access

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"

	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/internal/lru"
	"github.com/pennyhq/penny/kvraft/kvhttp"
)

// RateLimitConfig configures the rate limits: a token bucket per identity
// (per client address without authentication), and one per client
// address for the requests authentication refuses, at a tenth of the rate:
// beyond it a client address gets 429 before any authenticator is asked.
type RateLimitConfig struct {
	// QPS is the rate each identity's bucket refills at; 0 turns rate
	// limiting off.
	QPS float64
	// Burst is the bucket's size (2 x QPS, at least 1).
	Burst int
	// MaxIdentities bounds the buckets kept (10000), the least recently
	// used forgotten first.
	MaxIdentities int
	// Now is the clock (time.Now).
	Now func() time.Time
}

// Complete fills in the defaults.
func (c *RateLimitConfig) Complete() {
	if c.Burst == 0 && c.QPS > 0 {
		c.Burst = max(1, int(math.Ceil(2*c.QPS)))
	}
	if c.MaxIdentities == 0 {
		c.MaxIdentities = 10000
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate checks a completed config.
func (c *RateLimitConfig) Validate() error {
	if c.QPS < 0 || math.IsNaN(c.QPS) || math.IsInf(c.QPS, 0) || c.Burst < 0 || c.MaxIdentities < 1 {
		return errors.New("access: rate limit qps and burst must not be negative")
	}
	if c.QPS > 0 && c.Burst < 1 {
		return errors.New("access: a rate limit needs a burst of at least 1")
	}
	return nil
}

type rateLimiter struct {
	rs       routes
	cfg      RateLimitConfig
	limiters *lru.Cache[string, *rate.Limiter]
	limited  prometheus.Counter
}

func newRateLimiter(cfg RateLimitConfig, reg prometheus.Registerer) *rateLimiter {
	rl := &rateLimiter{cfg: cfg, limiters: lru.New[string, *rate.Limiter](cfg.MaxIdentities),
		limited: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_rate_limited_total",
			Help: "Requests refused with 429 by the rate limit of their identity."})}
	if reg != nil {
		reg.MustRegister(rl.limited)
	}
	return rl
}

// key names whose bucket a request draws from: its identity's, or its
// client address's without authentication.
func key(r *http.Request) string {
	if id := authn.FromContext(r.Context()); id != nil {
		return "u:" + id.Name
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "a:" + host
}

func (rl *rateLimiter) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rl.rs.open(r) {
			next.ServeHTTP(w, r)
			return
		}
		lim := rl.limiters.GetOrAdd(key(r), func() *rate.Limiter {
			return rate.NewLimiter(rate.Limit(rl.cfg.QPS), rl.cfg.Burst)
		})
		now := rl.cfg.Now()
		res := lim.ReserveN(now, 1)
		if d := res.DelayFrom(now); d > 0 {
			res.CancelAt(now)
			rl.refuse(w, d)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// refuse answers 429, to retry after d.
func (rl *rateLimiter) refuse(w http.ResponseWriter, d time.Duration) {
	rl.limited.Inc()
	w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
	kvhttp.WriteJSON(w, http.StatusTooManyRequests, map[string]string{"error": "rate limit exceeded: retry later"})
}

// failureKey names the bucket of a client address's failed
// authentications.
func failureKey(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "f:" + host
}

// failing reports whether r's client address has used up its bucket of
// failed authentications: a tenth of an identity's rate, the same burst.
func (rl *rateLimiter) failing(r *http.Request) bool {
	lim, ok := rl.limiters.Get(failureKey(r))
	return ok && lim.TokensAt(rl.cfg.Now()) < 1
}

// failed takes a token from r's client address's bucket of failed
// authentications.
func (rl *rateLimiter) failed(r *http.Request) {
	lim := rl.limiters.GetOrAdd(failureKey(r), func() *rate.Limiter {
		return rate.NewLimiter(rate.Limit(rl.cfg.QPS/10), rl.cfg.Burst)
	})
	lim.AllowN(rl.cfg.Now(), 1)
}

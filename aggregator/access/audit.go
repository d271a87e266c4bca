package access

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pennyhq/penny/aggregator/authn"
)

// Audit appends a JSON line to its file for every write (any method but
// GET and HEAD) and every refusal (401, 403, 429).
type Audit struct {
	rs     routes
	log    *slog.Logger
	events prometheus.Counter
	errors prometheus.Counter

	mu sync.Mutex
	f  *os.File
}

// Event is one line of the audit log.
type Event struct {
	Time   time.Time `json:"time"`
	User   string    `json:"user,omitempty"`
	Groups []string  `json:"groups,omitempty"`
	Node   string    `json:"node,omitempty"`
	Remote string    `json:"remote"`
	Method string    `json:"method"`
	Verb   string    `json:"verb,omitempty"`
	Path   string    `json:"path"`
	Status int       `json:"status"`
}

// OpenAudit opens (creates, appends to) the audit log at path.
func OpenAudit(path string, log *slog.Logger, reg prometheus.Registerer) (*Audit, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	a := &Audit{f: f, log: log,
		events: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_audit_events_total", Help: "Lines written to the audit log."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "penny_audit_errors_total", Help: "Audit lines that could not be written."})}
	if reg != nil {
		reg.MustRegister(a.events, a.errors)
	}
	return a, nil
}

// Close closes the file.
func (a *Audit) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.f.Close()
}

func audited(method string, status int) bool {
	return method != http.MethodGet && method != http.MethodHead ||
		status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusTooManyRequests
}

func (a *Audit) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.rs.open(r) {
			next.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		if audited(r.Method, sw.status) {
			a.write(r, sw.status)
		}
	})
}

// refused audits a request that authentication refused.
func (a *Audit) refused(r *http.Request, status int) { a.write(r, status) }

func (a *Audit) write(r *http.Request, status int) {
	e := Event{Time: time.Now().UTC(), Remote: r.RemoteAddr, Method: r.Method, Path: r.URL.Path, Status: status,
		Verb: a.rs.classify(r).Attrs.Verb}
	if id := authn.FromContext(r.Context()); id != nil {
		e.User, e.Groups, e.Node = id.Name, id.Groups, id.Node
	}
	b, err := json.Marshal(&e)
	if err == nil {
		b = append(b, '\n')
		a.mu.Lock()
		_, err = a.f.Write(b)
		a.mu.Unlock()
	}
	if err != nil {
		a.errors.Inc()
		a.log.Error("audit log not written", "err", err)
		return
	}
	a.events.Inc()
}

// statusWriter remembers the status of a response; Unwrap lets
// http.ResponseController reach the connection (flushes, full duplex).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

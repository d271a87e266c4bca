package cost

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid means a query parameter is malformed or breaks a limit: a 400.
// Errors that wrap it are *ParamError, which names the parameter.
var ErrInvalid = errors.New("cost: invalid query")

// ParamError is a bad query parameter and the reason.
type ParamError struct {
	Param, Value, Reason string
}

func (e *ParamError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("invalid parameter %s: %s", e.Param, e.Reason)
	}
	return fmt.Sprintf("invalid parameter %s=%q: %s", e.Param, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *ParamError) Unwrap() error { return ErrInvalid }

func badParam(param, value, reason string, args ...any) error {
	return &ParamError{Param: param, Value: value, Reason: fmt.Sprintf(reason, args...)}
}

// Defaults of Limits.
const (
	DefaultMaxWindow = 90 * day
	DefaultMaxSteps  = 10000
	// MinStep is the shortest step: the store's finest rollup.
	MinStep = time.Minute
)

// Limits bound what one query may ask for.
type Limits struct {
	// MaxWindow bounds the window (DefaultMaxWindow: the store keeps 90
	// days).
	MaxWindow time.Duration
	// MaxSteps bounds the number of steps (DefaultMaxSteps).
	MaxSteps int
}

// Complete fills in the defaults.
func (l *Limits) Complete() {
	if l.MaxWindow == 0 {
		l.MaxWindow = DefaultMaxWindow
	}
	if l.MaxSteps == 0 {
		l.MaxSteps = DefaultMaxSteps
	}
}

// Validate checks completed limits; it changes nothing.
func (l *Limits) Validate() error {
	if l.MaxWindow < MinStep || l.MaxSteps < 1 {
		return errors.New("cost: limits must allow a window of a minute and one step")
	}
	return nil
}

// Query is a parsed allocation query.
type Query struct {
	// Window is what to price; Step cuts it into sets (the last one ends
	// with the window). Step is the window's length when not asked for.
	Window Window
	Step   time.Duration
	// Aggregate is what to group by. Nil is OpenCost's default (cluster,
	// node, namespace, pod, container: one allocation per container); an
	// empty, non-nil slice ("all") puts everything in one allocation.
	Aggregate []Property
	// Accumulate sums the sets of all steps into one.
	Accumulate bool
	// Idle includes the idle allocations (default true).
	Idle bool
	// ShareIdle distributes idle cost to the allocations, per resource, in
	// proportion to their CPU and memory cost.
	ShareIdle bool
	// IdleByNode shares idle within each node (default true); false shares
	// a cluster's idle across the cluster, as OpenCost does by default.
	IdleByNode bool
	// SplitIdle keeps one idle allocation per node (per cluster when
	// IdleByNode is false) instead of one __idle__.
	SplitIdle bool
	// IncludeAggregatedMetadata keeps the labels an aggregate's members
	// share in its properties.
	IncludeAggregatedMetadata bool
	// Filter selects the allocations; nil selects every one.
	Filter *Filter
}

// Steps returns the query's step windows: Step long from the window's
// start, the last one cut at the window's end.
func (q *Query) Steps() []Window {
	step := q.Step
	if step <= 0 {
		step = q.Window.Duration()
	}
	var ws []Window
	for s := q.Window.Start; s.Before(q.Window.End); s = s.Add(step) {
		ws = append(ws, Window{s, minTime(s.Add(step), q.Window.End)})
	}
	return ws
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// PassThrough are the parameters ParseQuery leaves to its caller: the read
// consistency every Penny read takes.
var PassThrough = []string{"consistency", "max_staleness", "index"}

// ParseQuery parses OpenCost's /allocation parameters with the default
// Limits; see Limits.ParseQuery.
func ParseQuery(v url.Values, now time.Time) (Query, error) {
	var l Limits
	l.Complete()
	return l.ParseQuery(v, now)
}

// ParseQuery parses OpenCost's /allocation parameters, relative to now:
//
//	window      required; see docs/cost.md for the grammar
//	step        a duration (1h, 1d, 2w), at least a minute; default: the window
//	aggregate   comma-separated properties (Property); default: per container
//	accumulate  true sums the steps into one set (accumulateBy=all too)
//	idle        include idle (default true; includeIdle is the same)
//	shareIdle   share idle (default false)
//	idleByNode  share idle per node (default true) or per cluster
//	splitIdle   one idle allocation per node or cluster (default false)
//	includeAggregatedMetadata  keep shared labels of aggregates (default false)
//	filter      OpenCost's filter language (Filter)
//	resolution  accepted and ignored: Penny's resolution is its rollups
//
// The consistency parameters (PassThrough) are the caller's. Any other
// parameter, an OpenCost parameter Penny cannot honour (sharing namespaces
// or labels, accumulating by day, ...), and every bad value is an error
// that wraps ErrInvalid and names the parameter.
func (l Limits) ParseQuery(v url.Values, now time.Time) (Query, error) {
	q := Query{Idle: true, IdleByNode: true}
	for _, k := range slices.Sorted(maps.Keys(v)) {
		vs := v[k]
		if len(vs) > 1 {
			return q, badParam(k, "", "given %d times", len(vs))
		}
		if err := knownParam(k, vs[0]); err != nil {
			return q, err
		}
	}
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }

	var reason string
	ws := get("window")
	if q.Window, reason = parseWindow(ws, now); reason != "" {
		return q, badParam("window", ws, "%s", reason)
	}
	switch w := q.Window; {
	case !w.End.After(w.Start):
		return q, badParam("window", ws, "ends before it starts")
	case w.Duration() < MinStep:
		return q, badParam("window", ws, "is shorter than %s", MinStep)
	case w.Duration() > l.MaxWindow:
		return q, badParam("window", ws, "is longer than %s (%v)", formatDays(l.MaxWindow), w.Duration())
	case w.Start.After(now):
		return q, badParam("window", ws, "starts in the future")
	}

	q.Step = q.Window.Duration()
	if s := get("step"); s != "" {
		d, ok := parseStep(s)
		switch {
		case !ok:
			return q, badParam("step", s, "is not a duration (30m, 1h, 1d, 1w)")
		case d < MinStep:
			return q, badParam("step", s, "is shorter than %s", MinStep)
		}
		q.Step = min(d, q.Window.Duration())
	}
	if n := (q.Window.Duration() + q.Step - 1) / q.Step; n > time.Duration(l.MaxSteps) {
		return q, badParam("step", get("step"), "makes %d steps, more than %d: use a longer step or a shorter window", n, l.MaxSteps)
	}
	if s := get("resolution"); s != "" {
		if d, ok := parseStep(s); !ok || d <= 0 {
			return q, badParam("resolution", s, "is not a duration")
		}
	}

	var err error
	if q.Aggregate, err = ParseAggregate(get("aggregate")); err != nil {
		return q, err
	}

	bools := []struct {
		name string
		dst  *bool
	}{
		{"accumulate", &q.Accumulate},
		{"idle", &q.Idle},
		{"includeIdle", &q.Idle},
		{"shareIdle", &q.ShareIdle},
		{"idleByNode", &q.IdleByNode},
		{"splitIdle", &q.SplitIdle},
		{"includeAggregatedMetadata", &q.IncludeAggregatedMetadata},
	}
	seen := map[*bool]string{}
	for _, b := range bools {
		s := get(b.name)
		if s == "" {
			continue
		}
		val, err := strconv.ParseBool(s)
		if err != nil {
			return q, badParam(b.name, s, "want true or false")
		}
		if other, ok := seen[b.dst]; ok && *b.dst != val {
			return q, badParam(b.name, s, "contradicts %s", other)
		}
		seen[b.dst] = b.name
		*b.dst = val
	}
	switch s := get("accumulateBy"); strings.ToLower(s) {
	case "", "none":
	case "all":
		q.Accumulate = true
	default:
		return q, badParam("accumulateBy", s, "Penny accumulates all or nothing: use step=1h, 1d or 1w with accumulate=false")
	}

	if s := v.Get("filter"); strings.TrimSpace(s) != "" {
		if q.Filter, err = ParseFilter(s); err != nil {
			return q, badParam("filter", s, "%v", err)
		}
	}
	return q, nil
}

// knownParam refuses an unknown parameter, and an OpenCost parameter Penny
// cannot honour when it asks for more than the default.
func knownParam(k, val string) error {
	switch k {
	case "window", "step", "resolution", "aggregate", "accumulate", "accumulateBy", "idle", "includeIdle",
		"shareIdle", "idleByNode", "splitIdle", "includeAggregatedMetadata", "filter":
		return nil
	case "consistency", "max_staleness", "index":
		return nil
	case "sharelb", "includeProportionalAssetResourceCosts", "includeSharedCostBreakdown", "external", "reconcile", "shareTenancyCosts":
		if b, err := strconv.ParseBool(strings.TrimSpace(val)); err == nil && !b || strings.TrimSpace(val) == "" {
			return nil
		}
		return badParam(k, val, "is not supported by Penny (no load balancers, assets or external costs)")
	case "shareNamespaces", "shareLabels", "shareCost", "shareSplit":
		if strings.TrimSpace(val) == "" || k == "shareSplit" && strings.EqualFold(strings.TrimSpace(val), "weighted") {
			return nil
		}
		return badParam(k, val, "is not supported by Penny: only idle is shared (shareIdle)")
	case "filterNamespaces", "filterClusters", "filterNodes", "filterControllerKinds", "filterControllers",
		"filterPods", "filterContainers", "filterLabels", "filterAnnotations", "filterServices":
		return badParam(k, val, "the v1 filters are not supported: use filter (e.g. filter=namespace:\"default\")")
	}
	return badParam(k, val, "is not a parameter of /allocation")
}

func formatDays(d time.Duration) string {
	if d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	return d.String()
}

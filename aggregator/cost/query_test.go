package cost

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

// now is a Wednesday, 10:17 UTC.
var now = time.Date(2026, 3, 18, 10, 17, 0, 0, time.UTC)

func date(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseWindow(t *testing.T) {
	for _, tc := range []struct {
		window     string
		start, end string
	}{
		{"today", "2026-03-18T00:00:00Z", "2026-03-19T00:00:00Z"},
		{"yesterday", "2026-03-17T00:00:00Z", "2026-03-18T00:00:00Z"},
		{"week", "2026-03-15T00:00:00Z", "2026-03-18T10:17:00Z"},
		{"lastweek", "2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"},
		{"month", "2026-03-01T00:00:00Z", "2026-03-18T10:17:00Z"},
		{"lastmonth", "2026-02-01T00:00:00Z", "2026-03-01T00:00:00Z"},
		// OpenCost aligns durations to the end of the current unit.
		{"24h", "2026-03-17T11:00:00Z", "2026-03-18T11:00:00Z"},
		{"30m", "2026-03-18T09:48:00Z", "2026-03-18T10:18:00Z"},
		{"7d", "2026-03-12T00:00:00Z", "2026-03-19T00:00:00Z"},
		{"2w", "2026-03-05T00:00:00Z", "2026-03-19T00:00:00Z"},
		{"1d offset 1d", "2026-03-16T10:17:00Z", "2026-03-17T10:17:00Z"},
		{"2026-03-01T00:00:00Z,2026-03-02T12:00:00Z", "2026-03-01T00:00:00Z", "2026-03-02T12:00:00Z"},
		{"2026-03-01T01:00:00+01:00, 2026-03-02T00:00:00Z", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"1772323200,1772409600", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
		{"1772323200-1772409600", "2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z"},
	} {
		q, err := ParseQuery(url.Values{"window": {tc.window}}, now)
		if err != nil {
			t.Errorf("%s: %v", tc.window, err)
			continue
		}
		if want := (Window{date(tc.start), date(tc.end)}); !q.Window.Start.Equal(want.Start) || !q.Window.End.Equal(want.End) {
			t.Errorf("%s: %v..%v, want %v..%v", tc.window, q.Window.Start, q.Window.End, want.Start, want.End)
		}
		if q.Step != q.Window.Duration() || len(q.Steps()) != 1 {
			t.Errorf("%s: step %v, want the window", tc.window, q.Step)
		}
	}
}

func TestParseQueryDefaults(t *testing.T) {
	q, err := ParseQuery(url.Values{"window": {"1d"}}, now)
	if err != nil {
		t.Fatal(err)
	}
	if !q.Idle || q.ShareIdle || !q.IdleByNode || q.SplitIdle || q.Accumulate || q.Aggregate != nil || q.Filter != nil {
		t.Errorf("defaults %+v", q)
	}
	q, err = ParseQuery(url.Values{
		"window": {"7d"}, "step": {"1d"}, "aggregate": {"Namespace, label:app,tenant,namespace"}, "accumulateBy": {"all"},
		"includeIdle": {"false"}, "shareIdle": {"1"}, "idleByNode": {"false"}, "splitIdle": {"true"},
		"includeAggregatedMetadata": {"true"}, "filter": {`namespace:"a"`}, "resolution": {"1m"},
		"consistency": {"linearizable"}, "sharelb": {"false"}, "shareSplit": {"weighted"},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	if q.Idle || !q.ShareIdle || q.IdleByNode || !q.SplitIdle || !q.Accumulate || !q.IncludeAggregatedMetadata || q.Filter == nil {
		t.Errorf("parsed %+v", q)
	}
	if len(q.Steps()) != 7 || q.Step != 24*time.Hour {
		t.Errorf("steps %v", q.Steps())
	}
	want := []Property{{kind: propNamespace}, {kind: propLabel, Label: "app"}, {kind: propTenant}}
	if len(q.Aggregate) != len(want) {
		t.Fatalf("aggregate %v, want %v", q.Aggregate, want)
	}
	for i := range want {
		if q.Aggregate[i] != want[i] {
			t.Errorf("aggregate %v, want %v", q.Aggregate, want)
		}
	}
}

func TestParseQueryErrors(t *testing.T) {
	for _, tc := range []struct {
		query  string
		param  string
		reason string
	}{
		{"", "window", "is required"},
		{"window=3x", "window", "is not today, yesterday"},
		{"window=0h", "window", "is empty"},
		{"window=2026-03-02T00:00:00Z,2026-03-01T00:00:00Z", "window", "ends before it starts"},
		{"window=2026-03-01T00:00:00Z,2026-03-01T00:00:30Z", "window", "shorter than 1m"},
		{"window=2026-03-01T00:00:00Z,tomorrow", "window", "RFC3339"},
		{"window=91d", "window", "longer than 90d"},
		{"window=2027-01-01T00:00:00Z,2027-01-02T00:00:00Z", "window", "starts in the future"},
		{"window=1d&window=2d", "window", "given 2 times"},
		{"window=1d&step=fortnight", "step", "not a duration"},
		{"window=1d&step=30s", "step", "shorter than 1m"},
		{"window=90d&step=1m", "step", "more than 10000"},
		{"window=1d&resolution=fine", "resolution", "not a duration"},
		{"window=1d&aggregate=bogus", "aggregate", `unknown property "bogus"`},
		{"window=1d&aggregate=label:", "aggregate", "needs a key"},
		{"window=1d&aggregate=namespace,annotation:x", "aggregate", "not supported"},
		{"window=1d&aggregate=service", "aggregate", "not supported"},
		{"window=1d&accumulate=maybe", "accumulate", "want true or false"},
		{"window=1d&shareIdle=yes", "shareIdle", "want true or false"},
		{"window=1d&idle=true&includeIdle=false", "includeIdle", "contradicts idle"},
		{"window=1d&accumulateBy=day", "accumulateBy", "all or nothing"},
		{`window=1d&filter=namespace="a"`, "filter", "unexpected character"},
		{`window=1d&filter=annotation[a]:"b"`, "filter", "not supported"},
		{"window=1d&shareNamespaces=kube-system", "shareNamespaces", "only idle is shared"},
		{"window=1d&shareSplit=even", "shareSplit", "only idle is shared"},
		{"window=1d&sharelb=true", "sharelb", "not supported"},
		{"window=1d&filterNamespaces=a", "filterNamespaces", "use filter"},
		{"window=1d&aggregte=namespace", "aggregte", "not a parameter"},
	} {
		v, err := url.ParseQuery(tc.query)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseQuery(v, now)
		var pe *ParamError
		if !errors.Is(err, ErrInvalid) || !errors.As(err, &pe) {
			t.Errorf("%s: %v, want a ParamError wrapping ErrInvalid", tc.query, err)
			continue
		}
		if pe.Param != tc.param || !strings.Contains(pe.Reason, tc.reason) || !strings.Contains(err.Error(), tc.param) {
			t.Errorf("%s: %q (param %s), want %s and %q", tc.query, err, pe.Param, tc.param, tc.reason)
		}
	}
}

func TestLimits(t *testing.T) {
	l := Limits{MaxWindow: 2 * time.Hour, MaxSteps: 4}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.ParseQuery(url.Values{"window": {"3h"}}, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("3h under a 2h limit: %v", err)
	}
	if _, err := l.ParseQuery(url.Values{"window": {"2h"}, "step": {"20m"}}, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("6 steps under a limit of 4: %v", err)
	}
	if _, err := l.ParseQuery(url.Values{"window": {"2h"}, "step": {"30m"}}, now); err != nil {
		t.Errorf("4 steps: %v", err)
	}
	if err := (&Limits{MaxWindow: time.Second, MaxSteps: 1}).Validate(); err == nil {
		t.Error("a one-second window limit passed")
	}
}

// FuzzParseQuery: no input makes ParseQuery panic, and every refusal
// wraps ErrInvalid.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"window=7d&aggregate=namespace", "window=today&step=1h&filter=pod~:\"a\"", "window=1,2", "window=1d offset 2h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := url.ParseQuery(s)
		if err != nil {
			return
		}
		q, err := ParseQuery(v, now)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("%q: %v does not wrap ErrInvalid", s, err)
			}
			return
		}
		if !q.Window.End.After(q.Window.Start) || q.Step < MinStep || len(q.Steps()) > DefaultMaxSteps {
			t.Fatalf("%q: accepted %+v", s, q)
		}
	})
}

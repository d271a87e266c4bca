package history

import (
	"context"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/pennyhq/penny/internal/kvtest"
	"github.com/pennyhq/penny/kvraft"
)

// TestQuotaPressureCompactsMinutesEarly plays four hours of a node on a
// store without pressure, then the same on a store whose quota is 60% of
// what that took: every frame and roll still commits, the oldest minutes
// are compacted into their hours before --history-minute-retention (48
// hours) and the hours hold to the unit what they hold without pressure;
// the last hour keeps its minutes.
func TestQuotaPressureCompactsMinutesEarly(t *testing.T) {
	const (
		hours = 4
		step  = 10
	)
	ctx := context.Background()
	play := func(store *kvraft.Node) (*Roller, int64) {
		t.Helper()
		c := &clock{}
		r := newRoller(t, store, c)
		var ws []*workload
		for i := range 12 {
			ws = append(ws, &workload{path: fmt.Sprintf("/w%d", i), rss: int64(i+1) << 24, cpuMilli: uint64(10 * (i + 1)),
				inetPerS: uint64(i)})
		}
		a := newAgent(t, store, "node-a", ws...)
		var peak int64
		sec := 0
		for m := 1; m <= hours*60; m++ {
			a.runEvery(sec, m*60+step, step) // fails the test on a refused frame
			sec = m*60 + 2*step
			c.set(at(m*60 + step + 5))
			if _, err := r.RollAll(ctx); err != nil {
				t.Fatalf("roll at minute %d: %v", m, err)
			}
			if err := r.relieve(ctx); err != nil { // as Run does every minute
				t.Fatalf("relieve at minute %d: %v", m, err)
			}
			peak = max(peak, store.Status().StoreBytes)
		}
		return r, peak
	}

	free := kvtest.Start(t)
	play(free)
	need := free.Status().StoreBytes
	quota := need * 6 / 10
	tight := kvtest.Start(t, func(c *kvraft.Config) { c.QuotaBytes = quota })
	r, peak := play(tight)

	st := tight.Status()
	if st.NoSpaceAlarm || peak > quota {
		t.Fatalf("store peaked at %d bytes of a %d quota (alarm %v)", peak, quota, st.NoSpaceAlarm)
	}
	if st.StoreBytes > int64(pressureHigh*float64(quota)) {
		t.Errorf("store holds %d bytes, over %v of its %d quota", st.StoreBytes, pressureHigh, quota)
	}
	if n := testutil.ToFloat64(r.m.pressureHours); n < 1 {
		t.Errorf("%v node-hours compacted early, want some", n)
	}
	if g := testutil.ToFloat64(r.m.pressure); g != 0 {
		t.Errorf("pressure gauge %v with room made", g)
	}
	// Nothing is lost: the hours are those of the store without pressure.
	if got, want := totals(t, tight, hourPrefix), totals(t, free, hourPrefix); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("hours under pressure\n %v, without\n %v", got, want)
	}
	// The oldest hour lost its minutes; the last hour before now kept them.
	lastHour := minute((hours - 1) * 60)
	var oldest, recent int
	for _, kv := range read(t, tight, minutePrefix) {
		s, _, _ := parseTimeKey(minutePrefix, kv.Key)
		switch {
		case s < minute(60):
			oldest++
		case s >= lastHour:
			recent++
		}
	}
	if oldest != 0 {
		t.Errorf("%d minute records of the first hour left under pressure", oldest)
	}
	if recent != 60 {
		t.Errorf("%d minute records of the last hour, want 60", recent)
	}
}

package history

import (
	"context"
	"fmt"
	"time"
)

// Quota pressure. Minute records are nearly all of the history's bytes (30
// bytes per container-minute against under a byte for its hours), and the
// store's quota refuses every write that grows it once reached: new
// containers' live series and the next rolls alike. So when the store
// holds more than pressureHigh of its quota, the leader compacts the
// oldest hours of minutes early, as the compaction of MinuteRetention
// would, until it holds less than pressureLow or only the minutes of the
// last pressureFloor are left. The hours keep every unit of what the
// minutes held: the price is windows whose edges fall in those hours are
// prorated from the hour, not read to the minute. Hour records and
// identities, the billing record, are never deleted early; when the store
// stays over the mark without them, the roller says so
// (penny_history_quota_pressure = 1) and an operator raises --quota-bytes or
// shortens --history-hour-retention.
const (
	pressureHigh  = 0.8
	pressureLow   = 0.7
	pressureFloor = time.Hour
)

// underPressure reports whether the store holds more than pressureHigh of
// its quota.
func (r *Roller) underPressure() bool {
	st := r.cfg.Store.Status()
	return st.QuotaBytes > 0 && float64(st.StoreBytes) > pressureHigh*float64(st.QuotaBytes)
}

// relieve compacts the oldest hours of minutes early while the store is
// over pressureLow of its quota (see pressureHigh). It does nothing unless
// the store is over pressureHigh.
func (r *Roller) relieve(ctx context.Context) error {
	if !r.underPressure() {
		r.m.pressure.Set(0)
		return nil
	}
	before := r.cfg.Store.Status()
	low := int64(pressureLow * float64(before.QuotaBytes))
	opts, err := r.readOpts(ctx)
	if err != nil {
		return fmt.Errorf("read index: %w", err)
	}
	floor := floorHour(r.cfg.Now().UnixMilli()-pressureFloor.Milliseconds()) / 1000
	hours, upTo, err := r.compactMinutes(ctx, opts, floor, func() bool { return r.cfg.Store.Status().StoreBytes > low })
	r.m.pressureHours.Add(float64(hours))
	if err != nil {
		return fmt.Errorf("compact minutes early: %w", err)
	}
	after := r.cfg.Store.Status()
	log := r.cfg.Logger.With("store_bytes_before", before.StoreBytes, "store_bytes", after.StoreBytes,
		"quota_bytes", after.QuotaBytes, "node_hours_compacted", hours)
	if hours > 0 {
		log = log.With("minutes_compacted_before", time.Unix(upTo, 0).UTC())
	}
	if r.underPressure() {
		r.m.pressure.Set(1)
		log.Warn("history: the store stays near its quota with the minutes of the last hour only: raise --quota-bytes or shorten --history-hour-retention")
		return nil
	}
	r.m.pressure.Set(0)
	log.Warn("history: the store neared its quota: minutes compacted into their hours early")
	return nil
}

package history

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/pennyhq/penny/kvraft"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// Compaction and retention, on the leader, every CompactEvery:
//
//   - the minute records of every node-hour older than MinuteRetention are
//     deleted, one transaction per node and hour; its hour record already
//     holds their sum (each roll adds its span to it in the transaction that
//     writes the span), and is written from them if it is missing;
//   - hour records older than HourRetention are deleted, and so are the
//     identities not seen since and the cursors of nodes gone since;
//   - the bytes of each kind of record are measured on the way.
//
// Every step reads and deletes a page at a time, so memory stays bounded
// whatever the store holds.

// pageSize is the keys one step reads or deletes at once.
const pageSize = 1000

// Compact runs one pass of compaction and retention.
func (r *Roller) Compact(ctx context.Context) error {
	opts, err := r.readOpts(ctx)
	if err != nil {
		r.m.errors.Inc()
		return fmt.Errorf("read index: %w", err)
	}
	now := r.cfg.Now().UnixMilli()
	minuteCut := floorHour(now-r.cfg.MinuteRetention.Milliseconds()) / 1000
	hourCut := floorHour(now-r.cfg.HourRetention.Milliseconds()) / 1000
	var errs []error
	if _, _, err := r.compactMinutes(ctx, opts, minuteCut, nil); err != nil {
		errs = append(errs, fmt.Errorf("compact minutes: %w", err))
	}
	for _, k := range kindPrefixes {
		if err := r.expire(ctx, opts, k.kind, []byte(k.prefix), hourCut); err != nil {
			errs = append(errs, fmt.Errorf("expire %s records: %w", k.kind, err))
		}
	}
	// Expired hours went first: they may be room enough.
	if err := r.relieve(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		r.m.errors.Inc()
		return err
	}
	return nil
}

// compactMinutes compacts the hours of minutes that end before cut (unix
// seconds), oldest first, while more (nil: always) says so. It returns
// how many node-hours it compacted, and the end of the last hour it did.
func (r *Roller) compactMinutes(ctx context.Context, opts kvraft.ReadOptions, cut int64, more func() bool) (int, int64, error) {
	st := r.cfg.Store
	from, nodeHours := int64(0), 0
	for more == nil || more() {
		res, err := st.Range(ctx, kvraft.RangeRequest{Start: timeBound(minutePrefix, from),
			End: timeBound(minutePrefix, cut), Limit: 1}, opts)
		if err != nil {
			return nodeHours, from, err
		}
		if len(res.Items) == 0 {
			break
		}
		sec, _, err := parseTimeKey(minutePrefix, res.Items[0].Key)
		if err != nil {
			return nodeHours, from, err
		}
		hour := floorHour(sec*1000) / 1000
		n, err := r.compactHour(ctx, opts, hour)
		nodeHours += n
		if err != nil {
			return nodeHours, from, err
		}
		from = hour + hourMs/1000
	}
	return nodeHours, from, nil
}

// compactHour compacts the minute records of every node in one hour and
// returns how many node-hours it compacted.
func (r *Roller) compactHour(ctx context.Context, opts kvraft.ReadOptions, hour int64) (int, error) {
	st := r.cfg.Store
	nodes := map[string]bool{}
	start, end := timeBound(minutePrefix, hour), timeBound(minutePrefix, hour+hourMs/1000)
	for {
		res, err := st.Range(ctx, kvraft.RangeRequest{Start: start, End: end, Limit: pageSize}, opts)
		if err != nil {
			return 0, err
		}
		for _, kv := range res.Items {
			if _, node, err := parseTimeKey(minutePrefix, kv.Key); err == nil {
				nodes[node] = true
			}
		}
		if !res.More {
			break
		}
		start = append(slices.Clone(res.Items[len(res.Items)-1].Key), 0)
	}
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	slices.Sort(names)
	var txns []kvraft.Txn
	var minutes []int
	ops, size, compacted := 0, 0, 0
	flush := func() error {
		if len(txns) == 0 {
			return nil
		}
		_, ok, err := st.Txns(ctx, txns)
		if err != nil {
			return err
		}
		for i, done := range ok {
			if done {
				compacted++
				r.m.compacted.Inc()
				r.m.deleted.WithLabelValues(KindMinute).Add(float64(minutes[i]))
			}
		}
		txns, minutes, ops, size = nil, nil, 0, 0
		return nil
	}
	for _, node := range names {
		txn, n, err := r.compactNodeHour(ctx, opts, node, hour)
		if err != nil {
			r.m.errors.Inc()
			r.cfg.Logger.Warn("history: cannot compact an hour", "node", node, "hour", hour, "err", err)
			continue
		}
		k, b := len(txn.If)+len(txn.Then), kvraft.TxnSize(txn)
		if ops+k > kvraft.MaxTxnsOps || size+b > kvraft.BatchBytes || len(txns) == kvraft.MaxTxns {
			if err := flush(); err != nil {
				return compacted, err
			}
		}
		txns = append(txns, txn)
		minutes = append(minutes, n)
		ops += k
		size += b
	}
	err := flush()
	return compacted, err
}

// compactNodeHour is the transaction that deletes a node's minute records
// of one hour, writing their sum as the hour record if there is none, as
// long as the hour record is as read.
func (r *Roller) compactNodeHour(ctx context.Context, opts kvraft.ReadOptions, node string, hour int64) (kvraft.Txn, int, error) {
	st := r.cfg.Store
	hk := HourKey(hour, node)
	hg, err := st.Get(ctx, hk, opts)
	if err != nil {
		return kvraft.Txn{}, 0, err
	}
	txn := kvraft.Txn{If: []kvraft.Compare{kvraft.CompareModIndex(hk, kvraft.CmpEqual, hg.ModIndex)}}
	var sum Record
	n := 0
	for m := hour; m < hour+hourMs/1000; m += 60 {
		k := MinuteKey(m, node)
		g, err := st.Get(ctx, k, opts)
		if err != nil {
			return kvraft.Txn{}, 0, err
		}
		if !g.Found {
			continue
		}
		n++
		txn.Then = append(txn.Then, kvraft.Op{Type: kvraft.OpDelete, Key: k})
		if hg.Found {
			continue
		}
		rec, err := DecodeRecord(g.Value)
		if err != nil {
			return kvraft.Txn{}, 0, fmt.Errorf("minute %d: %w", m, err)
		}
		for i := range rec.Segments {
			sum.add(&rec.Segments[i])
		}
	}
	if !hg.Found && len(sum.Segments) > 0 {
		txn.Then = append(txn.Then, kvraft.Op{Type: kvraft.OpPut, Key: hk, Value: sum.Encode()})
	}
	return txn, n, nil
}

// expire deletes the records of one kind that are older than cut (unix
// seconds) and sets the bytes gauge of that kind to what is left.
func (r *Roller) expire(ctx context.Context, opts kvraft.ReadOptions, kind string, prefix []byte, cut int64) error {
	st := r.cfg.Store
	start, end := prefix, kvstore.PrefixEnd(prefix)
	var bytes int64
	for {
		res, err := st.Range(ctx, kvraft.RangeRequest{Start: start, End: end, Limit: pageSize}, opts)
		if err != nil {
			return err
		}
		var txn kvraft.Txn
		var condemned []kvraft.KV
		for _, kv := range res.Items {
			old, err := expired(kind, kv, cut)
			if err != nil {
				r.cfg.Logger.Warn("history: deleting a record that does not decode", "key", string(kv.Key), "err", err)
				old = true
			}
			if !old {
				bytes += int64(len(kv.Key) + len(kv.Value))
				continue
			}
			condemned = append(condemned, kv)
		}
		// Identities and cursors may be rewritten meanwhile: each goes
		// only if unchanged. Minute and hour records past retention are
		// never written again.
		var txns []kvraft.Txn
		for _, kv := range condemned {
			op := kvraft.Op{Type: kvraft.OpDelete, Key: kv.Key}
			if kind == KindIdentity || kind == KindCursor {
				txns = append(txns, kvraft.Txn{If: []kvraft.Compare{kvraft.CompareModIndex(kv.Key, kvraft.CmpEqual, kv.ModIndex)},
					Then: []kvraft.Op{op}})
			} else {
				txn.Then = append(txn.Then, op)
			}
		}
		if len(txn.Then) > 0 {
			txns = append(txns, txn)
		}
		if len(txns) > 0 {
			_, ok, err := st.Txns(ctx, txns)
			if err != nil {
				return err
			}
			n := 0
			for i, done := range ok {
				if done {
					n += len(txns[i].Then)
				}
			}
			r.m.deleted.WithLabelValues(kind).Add(float64(n))
		}
		if !res.More {
			break
		}
		start = append(slices.Clone(res.Items[len(res.Items)-1].Key), 0)
	}
	r.m.bytes.WithLabelValues(kind).Set(float64(bytes))
	return nil
}

// expired says whether a record is past retention: a minute or hour
// record that ends before cut, an identity last seen before it, a cursor
// of a node not rolled since.
func expired(kind string, kv kvraft.KV, cut int64) (bool, error) {
	switch kind {
	case KindMinute, KindHour:
		p := minutePrefix
		if kind == KindHour {
			p = hourPrefix
		}
		sec, _, err := parseTimeKey(p, kv.Key)
		return sec < cut, err
	case KindIdentity:
		ls, err := lastSeenOf(kv.Value)
		return ls < cut, err
	case KindCursor:
		c, err := DecodeCursor(kv.Value)
		if err != nil {
			return false, err
		}
		return c.MinuteMs/1000 < cut, nil
	}
	return false, nil
}

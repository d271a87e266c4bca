package kvraft

import (
	"context"
	"fmt"
	"time"

	"github.com/pennyhq/penny/kvraft/command"
	"github.com/pennyhq/penny/kvraft/kvstore"
)

// DefaultQuotaBytes is the default store quota: 256 MiB of keys and
// values. A replica's heap holds the store once (plus B-tree nodes), and
// while a snapshot is written its encoding once more (the snapshot's data
// is not kept in memory: see storage), so at the quota a replica's live
// heap is about 550 MiB plus Raft's in-memory log: inside the chart's
// 1 GiB memory limit.
const DefaultQuotaBytes = 256 << 20

// quotaClearRatio: the NOSPACE alarm clears once deletes bring the store
// under this fraction of the quota (or a write that grows it fits again).
const quotaClearRatio = 0.9

// noSpaceErr is the refusal of a write that would take the store past
// quota bytes.
func noSpaceErr(quota int64) error {
	return fmt.Errorf("%w: store quota of %d bytes reached: delete keys or raise --quota-bytes", ErrNoSpace, quota)
}

// configuredQuota is the quota this replica proposes when it leads: 0 for
// none.
func (n *Node) configuredQuota() uint64 {
	if n.cfg.QuotaBytes < 0 {
		return 0
	}
	return uint64(n.cfg.QuotaBytes)
}

// overQuota reports whether an entry that grows the store by at most
// maxGrowth bytes, by exactly delta() bytes, must be refused: it would
// take the store past the replicated quota. Every replica decides alike,
// from the replicated quota and state only. Callers hold stateMu.
func (n *Node) overQuota(maxGrowth int64, delta func() int64) (int64, bool) {
	q := n.quota.Load()
	if q <= 0 || maxGrowth <= 0 {
		return q, false
	}
	cur := n.kv.Bytes()
	if cur+maxGrowth <= q {
		return q, false
	}
	d := delta()
	return q, d > 0 && cur+d > q
}

// checkQuota refuses, before proposing, a write that this replica's state
// says would be refused when applied. The apply-time check decides; this
// one spares the log an entry that cannot apply.
func (n *Node) checkQuota(maxGrowth int64, delta func() int64) error {
	n.stateMu.RLock()
	q, over := n.overQuota(maxGrowth, delta)
	n.stateMu.RUnlock()
	if over {
		n.refuseNoSpace(q, n.kv.Bytes(), 0)
		return noSpaceErr(q)
	}
	return nil
}

// refuseNoSpace counts a refusal and raises the alarm.
func (n *Node) refuseNoSpace(quota, storeBytes int64, index uint64) {
	n.metrics.noSpaceRefusals.Inc()
	if !n.alarm.Swap(true) {
		n.metrics.noSpaceAlarm.Set(1)
		n.log.Warn("store quota reached: refusing writes that grow the store until keys are deleted",
			"quota_bytes", quota, "store_bytes", storeBytes, "index", index)
	}
}

// txnsMaxGrowth bounds how much txns can grow the store.
func txnsMaxGrowth(txns []command.Txn) int64 {
	var g int64
	for _, t := range txns {
		g += max(kvstore.MaxGrowth(t.Then), kvstore.MaxGrowth(t.Else))
	}
	return g
}

// applyWrite applies a batch or txns entry unless it would take the store
// past the quota, and updates the alarm. Callers hold stateMu.
func (n *Node) applyWrite(cmd *command.Command, index uint64, res *applyResult) {
	before := n.kv.Bytes()
	var q int64
	var over bool
	switch cmd.Kind {
	case command.KindBatch:
		q, over = n.overQuota(kvstore.MaxGrowth(cmd.Ops), func() int64 { return n.kv.Delta(cmd.Ops) })
		if !over {
			n.kv.Apply(cmd.Ops, index)
		}
	case command.KindTxn:
		q, over = n.overQuota(txnsMaxGrowth(cmd.Txns), func() int64 { return n.kv.TxnsDelta(cmd.Txns) })
		if !over {
			res.succeeded = n.kv.ApplyTxns(cmd.Txns, index)
		}
	}
	if over {
		res.err = noSpaceErr(q)
		n.refuseNoSpace(q, before, index)
		return
	}
	after := n.kv.Bytes()
	n.metrics.storeBytes.Set(float64(after))
	if n.alarm.Load() && (after > before || float64(after) <= quotaClearRatio*float64(q) || q <= 0) {
		n.alarm.Store(false)
		n.metrics.noSpaceAlarm.Set(0)
		n.log.Info("store quota alarm cleared", "quota_bytes", q, "store_bytes", after, "index", index)
	}
}

// applyQuota applies a committed KindQuota entry.
func (n *Node) applyQuota(quota uint64, index uint64) {
	n.memMu.Lock()
	old := n.members.QuotaBytes
	n.members.QuotaBytes = quota
	n.memMu.Unlock()
	n.setQuota(quota)
	if old != quota {
		n.log.Info("store quota set", "quota_bytes", quota, "previous", old, "index", index)
	}
}

func (n *Node) setQuota(quota uint64) {
	n.quota.Store(int64(min(quota, 1<<62)))
	n.metrics.quotaBytes.Set(float64(quota))
}

// quotaLoop makes the replicated quota this replica's configured one while
// it leads: the leader's --quota-bytes applies to the whole cluster.
func (n *Node) quotaLoop() {
	want := n.configuredQuota()
	for {
		changed := n.leaderChanged()
		n.memMu.RLock()
		have := n.members.QuotaBytes
		n.memMu.RUnlock()
		if n.leader.Load() == n.id && have != want {
			ctx, cancel := context.WithTimeout(context.Background(), n.cfg.RequestTimeout)
			_, err := n.propose(ctx, &command.Command{Kind: command.KindQuota, QuotaBytes: want})
			cancel()
			if err != nil {
				n.log.Debug("proposing the store quota failed; retrying", "err", err)
			}
		}
		select {
		case <-n.stopc:
			return
		case <-changed:
		case <-time.After(n.cfg.TickInterval * time.Duration(n.cfg.ElectionTicks)):
		}
	}
}

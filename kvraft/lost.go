package kvraft

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"go.etcd.io/raft/v3/raftpb"
)

// refusedFile, in the data dir, records why this member refuses to run: it
// lost log entries it had acknowledged. Start refuses while it exists.
const refusedFile = "REFUSED"

// checkRefused returns ErrLostEntries if an earlier run found that this
// data dir lost acknowledged entries.
func checkRefused(dir string) error {
	path := filepath.Join(dir, refusedFile)
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("read %s: %w", path, err)
	}
	return fmt.Errorf("%w (found by an earlier start and recorded in %s): %s",
		ErrLostEntries, path, strings.TrimSpace(strings.TrimPrefix(string(b), ErrLostEntries.Error()+": ")))
}

// checkCommit stops the node, before Raft sees m, if the leader counts
// entries as stored here that the log no longer holds: the leader sends a
// commit index up to what this member acknowledged, so a larger one than
// the last index means the WAL lost an acknowledged tail (a torn or
// truncated file). Raft would panic on it ("tocommit out of range"), and
// again at every restart.
func (n *Node) checkCommit(m *raftpb.Message) bool {
	if m.GetType() != raftpb.MsgHeartbeat {
		return true
	}
	last, err := n.storage.Raft().LastIndex()
	if err != nil || m.GetCommit() <= last {
		return true
	}
	where := "the newest WAL file is " + n.storage.LastWAL()
	if n.repaired != "" {
		where = "its torn tail was cut from " + n.repaired + " at this start (the cut bytes are in " + n.repaired + ".broken)"
	}
	err = fmt.Errorf("%w: the leader (member %d) counts entries up to index %d as stored on this member, "+
		"but its write-ahead log in %s ends at index %d; %s. Those entries cannot be recovered from this data dir: "+
		"replace this member (remove it from the cluster, wipe %s, add it again under a new id)",
		ErrLostEntries, m.GetFrom(), m.GetCommit(), n.storage.WALDir(), last, where, n.cfg.DataDir)
	n.lostOnce.Do(func() {
		n.log.Error("refusing to continue: this member lost log entries it had acknowledged", "err", err)
		if werr := writeSynced(filepath.Join(n.cfg.DataDir, refusedFile), []byte(err.Error()+"\n")); werr != nil {
			n.log.Warn("cannot record the refusal in the data dir", "err", werr)
		}
		n.fail(err)
	})
	return false
}

func writeSynced(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

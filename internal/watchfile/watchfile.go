package watchfile

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CheckEvery is how often a File looks whether its file changed, at most.
const CheckEvery = time.Second

// ErrTooLarge means the file is larger than the File's bound.
var ErrTooLarge = errors.New("watchfile: file too large")

// File is the parsed contents of a file, reread when the file changes.
type File[T any] struct {
	path  string
	what  string // what the file is, for the log: "token file"
	max   int64
	parse func([]byte) (T, error)
	log   *slog.Logger

	cur       atomic.Pointer[T]
	nextCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // one reread at a time
	stamp     stamp
	// refused is the stamp of the last version that did not parse: it is
	// not read again (nor logged again) until the file changes.
	refused stamp
}

type stamp struct {
	size    int64
	modTime time.Time
}

// New reads and parses the file at path: an error if it cannot, so a
// process does not start with a file it would refuse. what names the file
// in errors and the log; max bounds its size in bytes (read before it is
// parsed); log may be nil.
func New[T any](path, what string, max int64, parse func([]byte) (T, error), log *slog.Logger) (*File[T], error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	f := &File[T]{path: path, what: what, max: max, parse: parse, log: log}
	if _, err := f.reload(); err != nil {
		return nil, err
	}
	f.nextCheck.Store(time.Now().Add(CheckEvery).UnixNano())
	return f, nil
}

// Load returns the contents in force, having reread the file first if
// CheckEvery has passed since the last look and the file changed.
func (f *File[T]) Load() T {
	now := time.Now().UnixNano()
	if next := f.nextCheck.Load(); now >= next && f.nextCheck.CompareAndSwap(next, now+int64(CheckEvery)) {
		if changed, err := f.reload(); err != nil {
			f.log.Error(f.what+" not reloaded: keeping the last good one", "path", f.path, "err", err)
		} else if changed {
			f.log.Info(f.what+" reloaded", "path", f.path)
		}
	}
	return *f.cur.Load()
}

// reload reads the file if it changed since the last read.
func (f *File[T]) reload() (changed bool, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fi, err := os.Stat(f.path)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.what, err)
	}
	st := stamp{size: fi.Size(), modTime: fi.ModTime()}
	if f.cur.Load() != nil && (st == f.stamp || st == f.refused) {
		return false, nil
	}
	fd, err := os.Open(f.path)
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.what, err)
	}
	defer fd.Close()
	b, err := io.ReadAll(io.LimitReader(fd, f.max+1))
	if err != nil {
		return false, fmt.Errorf("%s: %w", f.what, err)
	}
	if int64(len(b)) > f.max {
		f.refused = st
		return false, fmt.Errorf("%s %s: %w: more than %d bytes", f.what, f.path, ErrTooLarge, f.max)
	}
	v, err := f.parse(b)
	if err != nil {
		f.refused = st
		return false, fmt.Errorf("%s %s: %w", f.what, f.path, err)
	}
	f.cur.Store(&v)
	f.stamp = st
	return true, nil
}

// Recheck makes the next Load look at the file, whenever the last look
// was: for a caller told that the file changed (a signal, a test).
func (f *File[T]) Recheck() { f.nextCheck.Store(0) }

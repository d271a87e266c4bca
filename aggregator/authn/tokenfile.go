package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// tokenFileCheckEvery is how often a TokenFile looks whether its file
// changed, at most.
const tokenFileCheckEvery = time.Second

// TokenFile authenticates bearer tokens listed in a file in
// kube-apiserver's --token-auth-file format: one token a line,
// token,user,uid,"group1,group2" (groups optional), lines starting with #
// ignored. A user in group penny:agents is the agent of the node its user
// name names. The file is read again when it changes (checked at most
// once a second, on requests); a file that no longer parses keeps the
// tokens of the last good one, and says so in the log.
type TokenFile struct {
	path string
	log  *slog.Logger

	tokens    atomic.Pointer[map[[32]byte]tokenEntry]
	nextCheck atomic.Int64 // unix nanoseconds
	mu        sync.Mutex   // one reload at a time
	stamp     fileStamp
}

type tokenEntry struct {
	token string
	id    *Identity
}

type fileStamp struct {
	size    int64
	modTime time.Time
}

// NewTokenFile reads the token file at path.
func NewTokenFile(path string, log *slog.Logger) (*TokenFile, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tf := &TokenFile{path: path, log: log}
	if err := tf.reload(); err != nil {
		return nil, err
	}
	tf.nextCheck.Store(time.Now().Add(tokenFileCheckEvery).UnixNano())
	return tf, nil
}

// Authenticate implements Authenticator.
func (tf *TokenFile) Authenticate(_ context.Context, r *http.Request) (*Identity, error) {
	tok := bearerToken(r)
	if tok == "" {
		return nil, ErrNoCredentials
	}
	tf.maybeReload()
	sum := sha256.Sum256([]byte(tok))
	// The map is keyed by the token's hash, and the token itself is
	// compared in constant time: how long the lookup takes says nothing
	// about the tokens.
	e, ok := (*tf.tokens.Load())[sum]
	if !ok || subtle.ConstantTimeCompare([]byte(e.token), []byte(tok)) != 1 {
		return nil, fmt.Errorf("%w: unknown token", ErrInvalid)
	}
	return e.id, nil
}

func (tf *TokenFile) maybeReload() {
	now := time.Now().UnixNano()
	next := tf.nextCheck.Load()
	if now < next || !tf.nextCheck.CompareAndSwap(next, now+int64(tokenFileCheckEvery)) {
		return
	}
	if err := tf.reload(); err != nil {
		tf.log.Error("token file not reloaded: keeping the tokens of the last good one", "path", tf.path, "err", err)
	}
}

// reload reads the file if it changed since the last read.
func (tf *TokenFile) reload() error {
	tf.mu.Lock()
	defer tf.mu.Unlock()
	fi, err := os.Stat(tf.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	st := fileStamp{size: fi.Size(), modTime: fi.ModTime()}
	if tf.tokens.Load() != nil && st == tf.stamp {
		return nil
	}
	f, err := os.Open(tf.path)
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	m, err := parseTokenFile(io.LimitReader(f, 64<<20))
	if err != nil {
		return fmt.Errorf("token file %s: %w", tf.path, err)
	}
	tf.tokens.Store(&m)
	if !tf.stamp.modTime.IsZero() {
		tf.log.Info("token file reloaded", "path", tf.path, "tokens", len(m))
	}
	tf.stamp = st
	return nil
}

// parseTokenFile parses a token file into its tokens, keyed by their
// SHA-256.
func parseTokenFile(r io.Reader) (map[[32]byte]tokenEntry, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	m := map[[32]byte]tokenEntry{}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return m, nil
		}
		if err != nil {
			return nil, err
		}
		line, _ := cr.FieldPos(0)
		if len(rec) < 3 {
			return nil, fmt.Errorf("line %d: want token,user,uid[,\"groups\"]", line)
		}
		tok, user := strings.TrimSpace(rec[0]), strings.TrimSpace(rec[1])
		if tok == "" || user == "" {
			return nil, fmt.Errorf("line %d: empty token or user", line)
		}
		id := &Identity{Name: user, UID: strings.TrimSpace(rec[2])}
		if len(rec) > 3 {
			for g := range strings.SplitSeq(rec[3], ",") {
				if g = strings.TrimSpace(g); g != "" {
					id.Groups = append(id.Groups, g)
				}
			}
		}
		if id.InGroup(GroupAgents) {
			agent(id, user)
		}
		sum := sha256.Sum256([]byte(tok))
		if _, dup := m[sum]; dup {
			return nil, fmt.Errorf("line %d: token repeated", line)
		}
		m[sum] = tokenEntry{token: tok, id: id}
	}
}

package authn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/pennyhq/penny/internal/watchfile"
)

// TokenFile authenticates bearer tokens listed in a file in
// kube-apiserver's --token-auth-file format: one token a line,
// token,user,uid,"group1,group2" (groups optional), lines starting with #
// ignored. A user in group penny:agents is the agent of the node its user
// name names. The file is read again when it changes (checked at most
// once a second, on requests); a file that no longer parses keeps the
// tokens of the last good one, and says so in the log.
type TokenFile struct {
	f *watchfile.File[map[[32]byte]tokenEntry]
}

type tokenEntry struct {
	token string
	id    *Identity
}

// maxTokenFile bounds a token file's size.
const maxTokenFile = 64 << 20

// NewTokenFile reads the token file at path.
func NewTokenFile(path string, log *slog.Logger) (*TokenFile, error) {
	f, err := watchfile.New(path, "token file", maxTokenFile, func(b []byte) (map[[32]byte]tokenEntry, error) {
		return parseTokenFile(bytes.NewReader(b))
	}, log)
	if err != nil {
		return nil, err
	}
	return &TokenFile{f: f}, nil
}

// Authenticate implements Authenticator.
func (tf *TokenFile) Authenticate(_ context.Context, r *http.Request) (*Identity, error) {
	tok := bearerToken(r)
	if tok == "" {
		return nil, ErrNoCredentials
	}
	sum := sha256.Sum256([]byte(tok))
	// The map is keyed by the token's hash, and the token itself is
	// compared in constant time: how long the lookup takes says nothing
	// about the tokens.
	e, ok := tf.f.Load()[sum]
	if !ok || subtle.ConstantTimeCompare([]byte(e.token), []byte(tok)) != 1 {
		return nil, fmt.Errorf("%w: unknown token", ErrInvalid)
	}
	return e.id, nil
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

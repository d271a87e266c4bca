package authn

import (
	"context"
	"fmt"
	"net/http"
	"slices"
)

// ClientCerts authenticates a request by the client certificate the
// server's TLS verified against its client CA: CN is the user name, O the
// groups. A certificate with O=penny:agents is the agent of the node its
// CN names.
type ClientCerts struct{}

// Authenticate implements Authenticator.
func (ClientCerts) Authenticate(_ context.Context, r *http.Request) (*Identity, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return nil, ErrNoCredentials
	}
	if len(r.TLS.VerifiedChains) == 0 {
		// The server verifies what it asked for; an unverified
		// certificate is one it was not asked to trust.
		return nil, fmt.Errorf("%w: client certificate not verified", ErrInvalid)
	}
	c := r.TLS.VerifiedChains[0][0]
	if c.Subject.CommonName == "" {
		return nil, fmt.Errorf("%w: client certificate without a common name", ErrInvalid)
	}
	id := &Identity{Name: c.Subject.CommonName, Groups: slices.Clone(c.Subject.Organization)}
	if id.InGroup(GroupAgents) {
		agent(id, id.Name)
	}
	return id, nil
}

// Package tlsfiles builds the TLS configurations of the agent-to-aggregator
// API from PEM files: a certificate and key, and a CA that signs the other
// side. Certificates are read again when their files change, so a rotation
// (cert-manager, a renewed Secret) needs no restart: a handshake after the
// files were replaced presents the new pair. A pair that fails to load
// keeps the previous one in use and is tried again at the next handshake.
package tlsfiles

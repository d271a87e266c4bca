// Package freeport hands out loopback addresses with a free TCP port, for
// tests and benchmark drivers that start servers in other processes and
// must name their address before they listen.
//
// The port is free when it is returned; another process can take it before
// the server binds it, which on a test machine is rare enough to accept.
package freeport

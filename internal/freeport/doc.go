// Package freeport hands out loopback addresses with a free TCP port, for
// tests and benchmark drivers that start servers in other processes and
// must name their address before they listen.
//
// The port is free when it is returned, and below the kernel's ephemeral
// range, so that no outgoing connection takes it while a server that
// had it is restarted (a flake seen when ports came from listening on
// port 0). Another process can still take it before the server binds it:
// only one that picks ports the same way, at random among twenty
// thousand, which on a test machine is rare enough to accept.
package freeport

// Package kvtest starts real single-member kvraft stores for tests of the
// packages built on top of the store.
package kvtest

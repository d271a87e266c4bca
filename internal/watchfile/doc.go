// Package watchfile keeps what a configuration file says current while a
// process runs: the token file of the aggregator's authentication and the
// policy file of its authorization are read again when they change, and a
// file that no longer parses keeps the last good contents in force, with
// the reason in the log, once per version of the file.
//
// A File looks at its file's size and modification time at most once a
// CheckEvery, on the caller's goroutine when it asks for the contents
// (Load), so an idle process does no work and needs no goroutine; one
// caller at a time rereads, the others go on with what is in force.
package watchfile

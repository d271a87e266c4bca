// Package testenv is how Penny's tests say that the environment lacks
// something they need: root, a tool such as promtool, a pseudo-terminal, or
// the binaries `make e2e` passes in.
//
// On a developer's machine such a test is skipped, and the skip message says
// why and how to provide what is missing. In CI nothing may be silently
// skipped: with the environment variable PENNY_TEST_NO_SKIP=1 (.ci/run sets
// it) every one of these skips is a test failure instead, so a CI machine
// that lost a tool or its privileges fails rather than passing fewer tests.
//
// Tests never call t.Skip directly for a missing tool or privilege; they
// call Skip, RequireRoot or RequireTool.
package testenv

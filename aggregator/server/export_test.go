package server

import (
	"context"
	"testing"
)

// SetTestHooks makes the servers started until the test ends run their
// janitor through runJanitor and call waiting when their shutdown starts
// waiting for their goroutines.
func SetTestHooks(t testing.TB, runJanitor func(ctx context.Context, run func(context.Context)), waiting func()) {
	t.Helper()
	testHooks.runJanitor, testHooks.waiting = runJanitor, waiting
	t.Cleanup(func() { testHooks.runJanitor, testHooks.waiting = nil, nil })
}

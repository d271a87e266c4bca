package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// NoSkipEnv names the environment variable that turns the skips of this
// package into failures when it is set to 1 (or any true value
// strconv.ParseBool accepts).
const NoSkipEnv = "PENNY_TEST_NO_SKIP"

// NoSkip reports whether NoSkipEnv is set: a test that would be skipped for
// a missing tool or privilege fails instead.
func NoSkip() bool {
	v, err := strconv.ParseBool(os.Getenv(NoSkipEnv))
	return err == nil && v
}

// Skip skips the test because the environment lacks something it needs, as
// reason says, or fails it when NoSkipEnv is set.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if NoSkip() {
		t.Fatalf("%s (%s=1: a test may not be skipped)", reason, NoSkipEnv)
	}
	t.Skipf("%s; %s=1 makes this a failure", reason, NoSkipEnv)
}

// Skipf is Skip with a formatted reason.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	Skip(t, fmt.Sprintf(format, args...))
}

// RequireRoot skips the test, or fails it (see Skip), unless it runs as
// root. why says what needs root, e.g. "it loads eBPF programs".
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	requireRoot(t, os.Geteuid(), why)
}

func requireRoot(t testing.TB, euid int, why string) {
	t.Helper()
	if euid != 0 {
		Skipf(t, "needs root: %s (run the tests with sudo)", why)
	}
}

// RequireTool returns the path of the program name, found in PATH, or
// skips the test, or fails it (see Skip), when it is missing. install says
// how to install it, e.g. "apt-get install prometheus".
func RequireTool(t testing.TB, name, install string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		Skip(t, missingTool(name, install))
	}
	return path
}

// LookTool is RequireTool for a test that checks more than the tool does: when
// the tool is missing it logs that the check needing it is left out and
// returns false, and the test goes on; with NoSkipEnv set it fails the test.
func LookTool(t testing.TB, name, install string) (string, bool) {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if NoSkip() {
			t.Errorf("%s (%s=1: a check may not be left out)", missingTool(name, install), NoSkipEnv)
		} else {
			t.Logf("leaving out a check: %s; %s=1 makes this a failure", missingTool(name, install), NoSkipEnv)
		}
		return "", false
	}
	return path, true
}

func missingTool(name, install string) string {
	return fmt.Sprintf("%s not found in PATH (%s; sudo hack/install-test-deps.sh installs what the tests use)", name, install)
}

// OptIn skips a test that is a benchmark in a test's form (it needs a
// harness only tests have, such as the end-to-end control plane) unless
// the environment variable env is set to a true value, as its make target
// does: such a test is not part of the suite, so its skip is never a
// failure, NoSkipEnv or not.
func OptIn(t testing.TB, env, target string) {
	t.Helper()
	if v, err := strconv.ParseBool(os.Getenv(env)); err != nil || !v {
		t.Skipf("a benchmark, run by %s (%s=1)", target, env)
	}
}

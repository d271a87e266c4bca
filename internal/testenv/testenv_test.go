package testenv

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// childEnv names the case TestChild runs when the test binary runs itself.
const childEnv = "PENNY_TESTENV_CHILD"

// TestChild is what the subprocesses of TestSkipOrFail run; on its own it
// does nothing.
func TestChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "":
	case "skip":
		Skip(t, "no widget here")
	case "skipf":
		Skipf(t, "no widget %d here", 7)
	case "not-root":
		requireRoot(t, 1000, "it loads widgets")
	case "root":
		requireRoot(t, 0, "it loads widgets")
		t.Log("went on")
	case "tool":
		RequireTool(t, "penny-no-such-tool", "apt-get install widgets")
	case "tool-found":
		if p := RequireTool(t, "penny-widget", "apt-get install widgets"); filepath.Base(p) != "penny-widget" {
			t.Fatalf("path %q", p)
		}
	case "look":
		if _, ok := LookTool(t, "penny-no-such-tool", "apt-get install widgets"); ok {
			t.Fatal("found a tool that does not exist")
		}
		t.Log("went on")
	default:
		t.Fatalf("unknown case %q", os.Getenv(childEnv))
	}
}

// TestSkipOrFail runs each helper in a subprocess of the test binary,
// without and with PENNY_TEST_NO_SKIP=1, and checks that it skips (or lets
// the test go on) normally and fails with the variable set.
func TestSkipOrFail(t *testing.T) {
	// A PATH with one tool in it, for the case that finds it.
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "penny-widget"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	const (
		pass = "--- PASS: TestChild"
		skip = "--- SKIP: TestChild"
		fail = "--- FAIL: TestChild"
	)
	for _, tt := range []struct {
		child string
		// What the child prints without and with PENNY_TEST_NO_SKIP=1.
		normal, noSkip []string
	}{
		{"skip",
			[]string{skip, "no widget here; PENNY_TEST_NO_SKIP=1 makes this a failure"},
			[]string{fail, "no widget here (PENNY_TEST_NO_SKIP=1: a test may not be skipped)"}},
		{"skipf",
			[]string{skip, "no widget 7 here; PENNY_TEST_NO_SKIP=1 makes this a failure"},
			[]string{fail, "no widget 7 here (PENNY_TEST_NO_SKIP=1"}},
		{"not-root",
			[]string{skip, "needs root: it loads widgets (run the tests with sudo); PENNY_TEST_NO_SKIP=1 makes this a failure"},
			[]string{fail, "needs root: it loads widgets"}},
		{"root",
			[]string{pass, "went on"},
			[]string{pass, "went on"}},
		{"tool",
			[]string{skip, "penny-no-such-tool not found in PATH (apt-get install widgets; sudo hack/install-test-deps.sh", "PENNY_TEST_NO_SKIP=1 makes this a failure"},
			[]string{fail, "penny-no-such-tool not found in PATH"}},
		{"tool-found",
			[]string{pass},
			[]string{pass}},
		{"look",
			[]string{pass, "leaving out a check: penny-no-such-tool not found", "went on"},
			[]string{fail, "penny-no-such-tool not found in PATH", "a check may not be left out", "went on"}},
	} {
		for _, noSkip := range []bool{false, true} {
			name := tt.child
			want := tt.normal
			if noSkip {
				name += "/no-skip"
				want = tt.noSkip
			}
			t.Run(name, func(t *testing.T) {
				out, failed := runChild(t, tt.child, noSkip, bin)
				if failed != (want[0] == fail) {
					t.Errorf("child failed: %v, want %v", failed, want[0] == fail)
				}
				for _, w := range want {
					if !strings.Contains(out, w) {
						t.Errorf("output lacks %q", w)
					}
				}
				if t.Failed() {
					t.Logf("output:\n%s", out)
				}
			})
		}
	}
}

// runChild runs TestChild in a subprocess for the case child, with
// PENNY_TEST_NO_SKIP=1 or without it, and with dir first in PATH.
func runChild(t *testing.T, child string, noSkip bool, dir string) (out string, failed bool) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestChild$", "-test.v", "-test.count=1")
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if name != NoSkipEnv && name != childEnv && name != "PATH" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"="+child, "PATH="+dir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	if noSkip {
		cmd.Env = append(cmd.Env, NoSkipEnv+"=1")
	}
	b, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run the test binary: %v", err)
	}
	return string(b), err != nil
}

func TestNoSkip(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  bool
	}{{"", false}, {"0", false}, {"false", false}, {"no", false}, {"1", true}, {"true", true}} {
		t.Setenv(NoSkipEnv, tt.value)
		if got := NoSkip(); got != tt.want {
			t.Errorf("%s=%q: NoSkip() = %v, want %v", NoSkipEnv, tt.value, got, tt.want)
		}
	}
}

func TestOptIn(t *testing.T) {
	const env = "PENNY_TEST_OPT_IN"
	for _, tt := range []struct {
		value   string
		skipped bool
	}{{"", true}, {"0", true}, {"nonsense", true}, {"1", false}, {"true", false}} {
		t.Run("value "+tt.value, func(t *testing.T) {
			t.Setenv(env, tt.value)
			t.Setenv(NoSkipEnv, "1") // a benchmark's skip is never a failure
			var ran bool
			t.Run("bench", func(t *testing.T) {
				OptIn(t, env, "make bench-x")
				ran = true
			})
			if ran == tt.skipped {
				t.Errorf("%s=%q: ran %v, want skipped %v", env, tt.value, ran, tt.skipped)
			}
		})
	}
}

package watchfile

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// parseInt parses a file holding one integer, counting its calls.
func parseInt(calls *int) func([]byte) (int, error) {
	return func(b []byte) (int, error) {
		*calls++
		return strconv.Atoi(strings.TrimSpace(string(b)))
	}
}

func write(t *testing.T, path, content string, mtime time.Time) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	// Set the time: two writes within the file system's time resolution
	// must still look changed when their sizes are equal.
	if err := os.Chtimes(path, mtime, mtime); err != nil {
		t.Fatal(err)
	}
}

func TestFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "n")
	t0 := time.Now().Add(-time.Hour)
	write(t, path, "1\n", t0)
	var calls int
	var logs bytes.Buffer
	f, err := New(path, "number file", 16, parseInt(&calls), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name    string
		content string // "" leaves the file as it is; "-" removes it
		recheck bool
		want    int
		calls   int
		log     string
	}{
		{"read at start", "", false, 1, 1, ""},
		{"changed, not looked at before CheckEvery", "2\n", false, 1, 1, ""},
		{"changed and looked at", "", true, 2, 2, "number file reloaded"},
		{"unchanged: not parsed again", "", true, 2, 2, ""},
		{"same size, newer", "3\n", true, 3, 3, "number file reloaded"},
		{"refused: the last good stays", "x\n", true, 3, 4, "number file not reloaded"},
		{"refused and unchanged: not parsed or logged again", "", true, 3, 4, ""},
		{"too large: refused before parsing", strings.Repeat("9", 17), true, 3, 4, "more than 16 bytes"},
		{"too large and unchanged: not logged again", "", true, 3, 4, ""},
		{"removed: the last good stays", "-", true, 3, 4, "no such file"},
		{"back", "5\n", true, 5, 5, "number file reloaded"},
	}
	for i, s := range steps {
		logs.Reset()
		switch s.content {
		case "":
		case "-":
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		default:
			write(t, path, s.content, t0.Add(time.Duration(i+1)*time.Second))
		}
		if s.recheck {
			f.Recheck()
		}
		if got := f.Load(); got != s.want || calls != s.calls {
			t.Errorf("%s: %d after %d parses, want %d after %d", s.name, got, calls, s.want, s.calls)
		}
		if !strings.Contains(logs.String(), s.log) || s.log == "" && logs.Len() > 0 {
			t.Errorf("%s: log %q, want %q", s.name, logs.String(), s.log)
		}
	}
}

func TestNewRefuses(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	write(t, big, "123456789", time.Now())
	bad := filepath.Join(dir, "bad")
	write(t, bad, "one", time.Now())
	for _, tc := range []struct {
		name, path string
		err        error
	}{
		{"missing", filepath.Join(dir, "none"), os.ErrNotExist},
		{"too large", big, ErrTooLarge},
		{"refused by its parser", bad, strconv.ErrSyntax},
	} {
		var calls int
		if _, err := New(tc.path, "number file", 4, parseInt(&calls), nil); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
}

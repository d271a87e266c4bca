// Command dashboards writes Penny's Grafana dashboards (package
// internal/dashboards) as JSON into charts/penny/dashboards/, or with
// -check fails, naming the files, when the committed ones differ from what
// the code builds. Run from the repository's root:
//
//	go run ./hack/dashboards          # write
//	go run ./hack/dashboards -check   # compare (make chart-lint)
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pennyhq/penny/internal/dashboards"
)

func main() {
	dir := flag.String("dir", "charts/penny/dashboards", "the `directory` of the dashboards' JSON files")
	check := flag.Bool("check", false, "write nothing: fail when the files differ from what the code builds")
	flag.Parse()
	if err := run(*dir, *check); err != nil {
		slog.Error("dashboards", "err", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	ds, err := dashboards.All()
	if err != nil {
		return err
	}
	var stale, want []string
	for _, d := range ds {
		want = append(want, d.File)
		path := filepath.Join(dir, d.File)
		old, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if bytes.Equal(old, d.JSON) {
			continue
		}
		if check {
			stale = append(stale, path)
			continue
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, d.JSON, 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	// A dashboard removed from the code must not linger in the chart.
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return err
	}
	for _, f := range files {
		if !slices.Contains(want, filepath.Base(f)) {
			stale = append(stale, f+" (not built by the code)")
		}
	}
	if len(stale) > 0 {
		return fmt.Errorf("stale: %s: run go run ./hack/dashboards", strings.Join(stale, ", "))
	}
	return nil
}

package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
)

func init() {
	register("version", command{
		summary: "print the version of this binary",
		run: func(_ context.Context, args []string, stdout io.Writer, _ *slog.Logger) error {
			if err := newCmdFlags("version", "Prints the version of this binary.", "").parse(args, stdout); err != nil {
				return err
			}
			v := "(devel)"
			if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
				v = bi.Main.Version
			}
			_, err := fmt.Fprintf(stdout, "penny %s\n", v)
			return err
		},
	})
}

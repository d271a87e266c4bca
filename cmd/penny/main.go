// Command penny is the single binary for every Penny role: the node agent,
// the aggregator replicas and the one-host `penny local` mode.
//
// Each subcommand lives in its own file and registers itself in commands;
// main only parses the subcommand name, builds a logger and runs it. Every
// subcommand parses its flags with cmdFlags (flags.go): one flag style, one
// help layout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"syscall"

	"github.com/spf13/pflag"
)

// command is one subcommand: it parses its own flags into a config struct
// (see cmdFlags), completes and validates it and runs until ctx is
// cancelled or the work is done. Help goes to stdout.
// Each subcommand registers itself from the init of its file. Built with
// -tags agentonly (bin/penny-agent, what the chart's DaemonSet runs), the
// binary has `agent` and `version` only: every other subcommand's file is
// left out with what it links (the aggregator's Raft store, the custom
// metrics apiserver, …), which halves the binary and the agent's resident
// memory, most of which is the binary's own pages (docs/agent.md).
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

func usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: penny <command> [flags]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'penny <command> --help' for the flags of one command.\n")
}

func main() {
	os.Exit(pennyMain(os.Args[1:], os.Stdout, os.Stderr))
}

// pennyMain runs the subcommand args name and returns the exit code: 0,
// also for help (printed to stdout); 2 for a wrong command line (the
// error and a hint to --help go to stderr); 1 when the command fails.
func pennyMain(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	name := args[0]
	switch name {
	case "-h", "--help", "help", "-help":
		usage(stdout)
		return 0
	}
	c, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "penny: unknown command %q\n\n", name)
		usage(stderr)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel()}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("PENNY_CPUPROFILE"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(stderr, "penny: %v\n", err)
			return 1
		}
		defer stopProfile()
	}
	err := c.run(ctx, args[1:], stdout, log)
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, pflag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintf(stderr, "penny %s: %v\nRun 'penny %s --help' for usage.\n", name, err, name)
		return 2
	default:
		fmt.Fprintf(stderr, "penny %s: %v\n", name, err)
		return 1
	}
}

// startCPUProfile writes a CPU profile of the whole run to path (set
// PENNY_CPUPROFILE to profile any subcommand).
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// logLevel reads PENNY_LOG_LEVEL (debug, info, warn, error); info by default.
func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("PENNY_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

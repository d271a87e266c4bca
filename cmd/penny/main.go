// Command penny is the single binary for every Penny role: the node agent,
// the aggregator replicas and the one-host `penny local` mode.
//
// Each subcommand lives in its own file and registers itself in commands;
// main only parses the subcommand name, builds a logger and runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"strings"
	"syscall"
)

// command is one subcommand: it parses its own flags into a config struct,
// validates it and runs until ctx is cancelled or the work is done.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error
}

var commands = map[string]command{}

// errUsage means the command line was wrong and the usage was printed.
var errUsage = errors.New("usage")

// parseFlags parses args and maps flag errors to errUsage (exit 2) and -h to
// flag.ErrHelp (exit 0); the flag package has already printed why.
func parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return err
	case err != nil:
		return errUsage
	case fs.NArg() > 0:
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return errUsage
	}
	return nil
}

func register(name string, c command) { commands[name] = c }

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: penny <command> [flags]\n\ncommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nRun 'penny <command> -h' for the flags of one command.\n")
}

func main() {
	if len(os.Args) < 2 || os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
		usage(os.Stderr)
		if len(os.Args) < 2 {
			os.Exit(2)
		}
		return
	}
	c, ok := commands[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "penny: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: logLevel()}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if path := os.Getenv("PENNY_CPUPROFILE"); path != "" {
		stopProfile, err := startCPUProfile(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "penny: %v\n", err)
			os.Exit(1)
		}
		defer stopProfile()
	}
	err := c.run(ctx, os.Args[2:], os.Stdout, log)
	switch {
	case err == nil, errors.Is(err, context.Canceled), errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		if err != errUsage { // it says what was wrong beyond the usage
			fmt.Fprintf(os.Stderr, "penny %s: %v\n", os.Args[1], err)
		}
		stop()
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "penny %s: %v\n", os.Args[1], err)
		stop()
		os.Exit(1)
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

// urlList is a flag of comma-separated URLs; repeating the flag adds more.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }

func (l *urlList) Set(v string) error {
	for u := range strings.SplitSeq(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

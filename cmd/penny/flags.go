package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"
)

// errUsage marks a wrong command line: main prints the error and a hint to
// --help on stderr and exits 2.
var errUsage = errors.New("usage error")

// usageError is a wrong command line; its message is the wrapped error's.
type usageError struct{ error }

func (e usageError) Is(target error) bool { return target == errUsage }
func (e usageError) Unwrap() error        { return e.error }

// usageErrorf formats a usage error.
func usageErrorf(format string, a ...any) error {
	return usageError{fmt.Errorf(format, a...)}
}

// cmdFlags is the flag set of one subcommand. Every subcommand parses its
// flags the same way (pflag: --name, --name=value, shorthands such as -n,
// and the single-dash long names Go's flag package took) and prints the
// same help, to stdout:
//
//	Usage: penny <command> <usage>
//
//	<about, one paragraph>
//
//	Flags:
//	<the flags>
//	<more>
type cmdFlags struct {
	*pflag.FlagSet
	cmd   string
	usage []string
	about string
	// nargs is how many positional arguments the command takes at most.
	nargs int
	// more prints sections after Flags; their flags, in extra, are parsed
	// too (penny aggregator's custom metrics API flags).
	more  func(io.Writer)
	extra []*pflag.FlagSet

	help bool
	// positional holds the arguments that are not flags, after parse.
	positional []string
}

// newCmdFlags starts the flags of `penny cmd`; each usage is one usage
// line after "penny cmd", about says in one paragraph what it does.
// requestsUsage describes --requests, of penny local and penny agent.
const requestsUsage = "count the requests every server socket answers and time them (HTTP/1, HTTP/2, gRPC, other TCP: docs/requests.md); " +
	"--requests=false leaves their eBPF programs unloaded"

func newCmdFlags(cmd, about string, usage ...string) *cmdFlags {
	c := &cmdFlags{FlagSet: pflag.NewFlagSet("penny "+cmd, pflag.ContinueOnError), cmd: cmd, usage: usage, about: about}
	c.SetOutput(io.Discard) // parse reports every error itself
	c.Usage = func() {}
	c.BoolVarP(&c.help, "help", "h", false, "show this help")
	return c
}

// printHelp writes the help of the command to w.
func (c *cmdFlags) printHelp(w io.Writer) {
	for i, u := range c.usage {
		prefix := "Usage: "
		if i > 0 {
			prefix = "       "
		}
		fmt.Fprintln(w, strings.TrimRight(prefix+"penny "+c.cmd+" "+u, " "))
	}
	fmt.Fprintf(w, "\n%s\n\nFlags:\n%s", wrap(c.about, 80), c.FlagUsages())
	if c.more != nil {
		c.more(w)
	}
}

// parse parses args. For -h or --help it prints the help to stdout and
// returns pflag.ErrHelp; for a wrong command line (an unknown flag, a bad
// value, more than nargs arguments) a usage error.
func (c *cmdFlags) parse(args []string, stdout io.Writer) error {
	fs := c.FlagSet
	if len(c.extra) > 0 {
		fs = pflag.NewFlagSet(c.Name(), pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Usage = func() {}
		fs.AddFlagSet(c.FlagSet)
		for _, x := range c.extra {
			var clash []string
			x.VisitAll(func(f *pflag.Flag) {
				if fs.Lookup(f.Name) != nil {
					clash = append(clash, "--"+f.Name)
				}
			})
			if len(clash) > 0 { // AddFlagSet would drop them silently
				return fmt.Errorf("flags %v are both penny %s's and the %s flags", clash, c.cmd, x.Name())
			}
			fs.AddFlagSet(x)
		}
	}
	err := fs.Parse(legacyArgs(fs, args))
	var unknown *pflag.NotExistError
	switch {
	case errors.As(err, &unknown) && len(unknown.GetSpecifiedShortnames()) > 1:
		// -bogus is an unknown long name with one dash, as Go's flag
		// package took them, more likely than shorthands b, o, g...
		name, _, _ := strings.Cut(unknown.GetSpecifiedShortnames(), "=")
		return usageErrorf("unknown flag: -%s", name)
	case err != nil:
		return usageError{err}
	case c.help:
		c.printHelp(stdout)
		return pflag.ErrHelp
	case fs.NArg() > c.nargs:
		return usageErrorf("unexpected argument %q", fs.Arg(c.nargs))
	}
	c.positional = fs.Args()
	return nil
}

// legacyArgs rewrites the single-dash long flags that Go's flag package
// took and pflag does not: -interval 2s becomes --interval 2s and
// -once=false --once=false. Only an argument whose name, up to '=', is a
// long flag of two or more characters changes: shorthands (-n), negative
// numbers, the value that follows a flag which takes one, and everything
// after "--" stay as they are.
func legacyArgs(fs *pflag.FlagSet, args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			out = append(out, args[i:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			out = append(out, a)
			continue
		}
		var f *pflag.Flag
		name, _, inline := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		switch {
		case a[1] == '-':
			f = fs.Lookup(name)
		case len(name) > 1 && fs.Lookup(name) != nil:
			a, f = "-"+a, fs.Lookup(name)
		default: // shorthands, as pflag reads them: -n NS, -nNS, -n=NS
			s := a[1:]
			for len(s) > 0 {
				sf := fs.ShorthandLookup(s[:1])
				if sf == nil || len(s) > 1 && s[1] == '=' {
					break
				}
				if sf.NoOptDefVal == "" {
					f, inline = sf, len(s) > 1
					break
				}
				s = s[1:]
			}
		}
		out = append(out, a)
		if f != nil && !inline && f.NoOptDefVal == "" && i+1 < len(args) {
			i++ // the flag's value
			out = append(out, args[i])
		}
	}
	return out
}

// wrap breaks text into lines of at most width characters, between words.
func wrap(text string, width int) string {
	var b strings.Builder
	n := 0
	for _, w := range strings.Fields(text) {
		switch {
		case n == 0:
		case n+1+len(w) > width:
			b.WriteByte('\n')
			n = 0
		default:
			b.WriteByte(' ')
			n++
		}
		b.WriteString(w)
		n += len(w)
	}
	return b.String()
}

// urlList is a flag of comma-separated URLs; repeating the flag adds more.
type urlList []string

func (l *urlList) String() string { return strings.Join(*l, ",") }
func (l *urlList) Type() string   { return "urls" }

func (l *urlList) Set(v string) error {
	for u := range strings.SplitSeq(v, ",") {
		if u = strings.TrimSpace(u); u != "" {
			*l = append(*l, u)
		}
	}
	return nil
}

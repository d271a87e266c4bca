package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/cmd/penny/loadgen"
	"github.com/pennyhq/penny/cmd/penny/local"
	"github.com/pennyhq/penny/cmd/penny/top"
	"github.com/pennyhq/penny/internal/nodemeta"
)

func TestLegacyArgs(t *testing.T) {
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	fs.Duration("interval", time.Second, "")
	fs.Bool("once", false, "")
	fs.Int("offset", 0, "")
	fs.StringP("namespace", "n", "", "")
	fs.BoolP("all", "A", false, "")
	fs.String("x", "", "") // a one-letter long name stays as pflag reads it
	tests := []struct {
		name string
		args []string
		want []string // nil: unchanged
	}{
		{"long flag and value", []string{"-interval", "2s"}, []string{"--interval", "2s"}},
		{"long flag with =", []string{"-interval=2s", "-once=false"}, []string{"--interval=2s", "--once=false"}},
		{"bool flag", []string{"-once", "pods"}, []string{"--once", "pods"}},
		{"double dash untouched", []string{"--interval", "2s", "--once=true"}, nil},
		{"negative number as a value", []string{"-offset", "-5"}, []string{"--offset", "-5"}},
		{"negative number as an argument", []string{"-5", "-1.5"}, nil},
		{"a value that looks like a flag", []string{"--namespace", "-once", "-n", "-interval"}, nil},
		{"a legacy flag's value that looks like a flag", []string{"-namespace", "-once"}, []string{"--namespace", "-once"}},
		{"shorthands", []string{"-n", "shop", "-n=shop", "-nshop", "-A", "-An", "shop"}, nil},
		{"bool shorthand then a legacy flag", []string{"-A", "-once"}, []string{"-A", "--once"}},
		{"unknown flags are left to pflag", []string{"-frobnicate", "-f=1"}, nil},
		{"one-letter long name", []string{"-x", "1"}, nil},
		{"help", []string{"-h", "-help"}, nil},
		{"stops at --", []string{"-once", "--", "-interval", "2s"}, []string{"--once", "--", "-interval", "2s"}},
		{"lone dash", []string{"-", "-once"}, []string{"-", "--once"}},
		{"flag without its value at the end", []string{"-interval"}, []string{"--interval"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == nil {
				want = tt.args
			}
			if got := legacyArgs(fs, tt.args); !slices.Equal(got, want) {
				t.Errorf("legacyArgs(%q) = %q, want %q", tt.args, got, want)
			}
		})
	}
}

// parsers parse the command line of each subcommand into its config,
// without running it.
var parsers = map[string]func(args []string) (any, error){
	"agent":   func(args []string) (any, error) { return parseAgentFlags(args, &bytes.Buffer{}) },
	"local":   func(args []string) (any, error) { return parseLocalFlags(args, &bytes.Buffer{}) },
	"top":     func(args []string) (any, error) { return parseTopFlags(args, &bytes.Buffer{}) },
	"cost":    func(args []string) (any, error) { return parseCostFlags(args, &bytes.Buffer{}) },
	"loadgen": func(args []string) (any, error) { return parseLoadgenFlags(args, &bytes.Buffer{}) },
	"aggregator": func(args []string) (any, error) {
		c, err := parseAggregatorFlags(args, &bytes.Buffer{})
		if c != nil {
			c.adapter = nil // holds its flag set, which differs run to run
		}
		return c, err
	},
}

// TestLegacyFlags checks that the single-dash long flags of Go's flag
// package, and -n and -l of penny top, parse to the same config as the
// double-dash forms, and that each changes the config.
func TestLegacyFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("PENNY_AGGREGATOR", "")
	required := map[string][]string{
		"agent":      {"--aggregator", "http://a:1"},
		"top":        {"pods"},
		"loadgen":    {"--aggregator", "http://a:1"},
		"aggregator": {"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://a:1"},
	}
	tests := []struct {
		cmd            string
		legacy, modern []string
		asRequired     bool // the flags restate the defaults
	}{
		{"local", []string{"-interval", "2s"}, []string{"--interval", "2s"}, false},
		{"local", []string{"-interval=2s"}, []string{"--interval=2s"}, false},
		{"local", []string{"-once", "-json"}, []string{"--once", "--json"}, false},
		{"local", []string{"-once=true", "-json=1"}, []string{"--once", "--json=true"}, false},
		{"local", []string{"-once=false"}, []string{"--once=false"}, true},
		{"local", []string{"-listen", ":9464", "-bpf-stats"}, []string{"--listen=:9464", "--bpf-stats"}, false},
		{"local", []string{"-api-listen", "127.0.0.1:7000"}, []string{"--api-listen", "127.0.0.1:7000"}, false},
		{"local", []string{"-data-dir=/d", "-node-name", "n"}, []string{"--data-dir", "/d", "--node-name=n"}, false},
		{"local", []string{"-pricing-file", "p.yaml", "-price-cpu-core-hour=0.05", "-price-memory-gib-hour", "0"},
			[]string{"--pricing-file=p.yaml", "--price-cpu-core-hour", "0.05", "--price-memory-gib-hour=0"}, false},
		{"local", []string{"-instance-type", "m5.large", "-region=us-east-1", "-zone", "us-east-1a", "-capacity-type", "spot"},
			[]string{"--instance-type=m5.large", "--region", "us-east-1", "--zone=us-east-1a", "--capacity-type=spot"}, false},

		{"agent", []string{"-aggregator", "http://b:1,http://c:1", "-aggregator=http://d:1"},
			[]string{"--aggregator=http://b:1", "--aggregator", "http://c:1,http://d:1"}, false},
		{"agent", []string{"-node-name", "n", "-interval", "2s", "-listen=:9464", "-bpf-stats"},
			[]string{"--node-name=n", "--interval=2s", "--listen", ":9464", "--bpf-stats=true"}, false},
		{"agent", []string{"-buffer-bytes", "1024", "-keyframe-every=5"}, []string{"--buffer-bytes=1024", "--keyframe-every", "5"}, false},
		{"agent", []string{"-kubernetes", "on", "-kubeconfig", "k"}, []string{"--kubernetes=on", "--kubeconfig=k"}, false},
		{"agent", []string{"-ca-file", "ca", "-cert-file", "c", "-key-file=k"}, []string{"--ca-file=ca", "--cert-file", "c", "--key-file", "k"}, false},
		{"agent", []string{"-instance-type=c6i.large", "-region", "eu-west-1", "-zone=eu-west-1b", "-capacity-type", "on-demand"},
			[]string{"--instance-type", "c6i.large", "--region=eu-west-1", "--zone", "eu-west-1b", "--capacity-type=on-demand"}, false},
		{"agent", []string{"-kubernetes=on", "-spot-label", "pool=cheap", "-spot-label=example.com/lifecycle=spot"},
			[]string{"--kubernetes", "on", "--spot-label=pool=cheap", "--spot-label", "example.com/lifecycle=spot"}, false},

		{"top", []string{"-aggregator", "http://x:1"}, []string{"--aggregator=http://x:1"}, false},
		{"top", []string{"-n", "shop"}, []string{"--namespace", "shop"}, false},
		{"top", []string{"-n=shop"}, []string{"--namespace=shop"}, false},
		{"top", []string{"--n", "shop"}, []string{"--namespace", "shop"}, false},
		{"top", []string{"-l", "app=web,tier!=batch"}, []string{"--selector", "app=web,tier!=batch"}, false},
		{"top", []string{"-l=app=web", "--l=app=db"}, []string{"--selector=app=db"}, false},
		{"top", []string{"-metric-selector", "container=c", "-window=1m", "-sort", "rss"},
			[]string{"--metric-selector=container=c", "--window", "1m", "--sort=rss"}, false},
		{"top", []string{"-ca-file", "ca", "-cert-file=c", "-key-file", "k", "-timeout", "3s"},
			[]string{"--ca-file=ca", "--cert-file", "c", "--key-file=k", "--timeout=3s"}, false},

		{"cost", []string{"-aggregator", "http://x:1", "-window=7d", "-by", "pod"}, []string{"--aggregator=http://x:1", "--window", "7d", "--by=pod"}, false},
		{"cost", []string{"-n", "shop", "-share-idle", "-csv"}, []string{"--namespace=shop", "--share-idle", "--csv=true"}, false},
		{"cost", []string{"--n=shop", "-filter", `pod~:"a"`, "-json"}, []string{"-n", "shop", "--filter", `pod~:"a"`, "--json"}, false},

		{"loadgen", []string{"-aggregator", "http://b:1", "-agents", "5", "-containers=6"},
			[]string{"--aggregator=http://b:1", "--agents=5", "--containers", "6"}, false},
		{"loadgen", []string{"-interval", "2s", "-warmup=0s", "-duration", "5s", "-probes", "1"},
			[]string{"--interval=2s", "--warmup", "0s", "--duration=5s", "--probes=1"}, false},

		{"aggregator", []string{"-listen", "127.0.0.1:1", "-join", "-tick=10ms", "-cluster-token", "t"},
			[]string{"--listen=127.0.0.1:1", "--join", "--tick", "10ms", "--cluster-token=t"}, false},
		{"aggregator", []string{"-custom-metrics", "-custom-metrics-window", "1m", "-secure-port=7443"},
			[]string{"--custom-metrics", "--custom-metrics-window=1m", "--secure-port", "7443"}, false},
		{"aggregator", []string{"-pricing-file", "/etc/penny/pricing/pricing.yaml"}, []string{"--pricing-file=/etc/penny/pricing/pricing.yaml"}, false},
		{"aggregator", []string{"-cost-cluster-name", "prod", "-cost-tenant-label=team"}, []string{"--cost-cluster-name=prod", "--cost-tenant-label", "team"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.cmd+" "+strings.Join(tt.legacy, " "), func(t *testing.T) {
			parse := parsers[tt.cmd]
			base, err := parse(required[tt.cmd])
			if err != nil {
				t.Fatalf("%s %q: %v", tt.cmd, required[tt.cmd], err)
			}
			legacy, err := parse(append(slices.Clone(required[tt.cmd]), tt.legacy...))
			if err != nil {
				t.Fatalf("legacy %q: %v", tt.legacy, err)
			}
			modern, err := parse(append(slices.Clone(required[tt.cmd]), tt.modern...))
			if err != nil {
				t.Fatalf("modern %q: %v", tt.modern, err)
			}
			if !reflect.DeepEqual(legacy, modern) {
				t.Errorf("%q parsed to\n%+v\n%q to\n%+v", tt.legacy, legacy, tt.modern, modern)
			}
			if reflect.DeepEqual(modern, base) != tt.asRequired {
				t.Errorf("%q: changed the config: %v, want %v", tt.modern, !tt.asRequired, tt.asRequired)
			}
		})
	}
}

func TestTopArgs(t *testing.T) {
	t.Setenv("PENNY_AGGREGATOR", "")
	tests := []struct {
		args []string
		want topConfig
	}{
		{[]string{"pods"}, topConfig{Resource: "pods"}},
		{[]string{"po", "-n", "shop"}, topConfig{Resource: "pods", Config: top.Config{Namespace: "shop"}}},
		{[]string{"-n", "shop", "pod"}, topConfig{Resource: "pods", Config: top.Config{Namespace: "shop"}}},
		{[]string{"ns", "-l", "app=web"}, topConfig{Resource: "namespaces", Config: top.Config{Selector: "app=web"}}},
		{[]string{"namespace"}, topConfig{Resource: "namespaces"}},
		{[]string{"namespaces", "--aggregator", "https://agg:1"}, topConfig{Resource: "namespaces", Config: top.Config{URL: "https://agg:1"}}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			got, err := parseTopFlags(tt.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want.URL == "" {
				want.URL = top.DefaultURL
			}
			want.Window, want.Sort, want.Timeout = 30*time.Second, "name", 10*time.Second
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got %+v, want %+v", *got, want)
			}
		})
	}
	t.Run("PENNY_AGGREGATOR", func(t *testing.T) {
		t.Setenv("PENNY_AGGREGATOR", "http://env:1")
		for args, want := range map[string]string{"pods": "http://env:1", "pods --aggregator http://flag:1": "http://flag:1"} {
			got, err := parseTopFlags(strings.Fields(args), &bytes.Buffer{})
			if err != nil || got.URL != want {
				t.Errorf("%s: %+v, %v; want URL %s", args, got, err, want)
			}
		}
	})
}

func TestAgentKubernetes(t *testing.T) {
	tests := []struct {
		args    []string
		inPod   bool
		want    string // on, off, or the error
		wantErr bool
	}{
		{nil, false, "off", false},
		{nil, true, "on", false},
		{[]string{"--kubeconfig", "k"}, false, "on", false},
		{[]string{"--kubernetes", "on"}, false, "on", false},
		{[]string{"--kubernetes", "off"}, true, "off", false},
		{[]string{"--kubernetes", "off", "--kubeconfig", "k"}, false, "--kubeconfig with --kubernetes off", true},
		{[]string{"--kubernetes", "maybe"}, false, `--kubernetes "maybe": want auto, on or off`, true},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			host := ""
			if tt.inPod {
				host = "10.0.0.1"
			}
			t.Setenv("KUBERNETES_SERVICE_HOST", host)
			c, err := parseAgentFlags(append([]string{"--aggregator", "http://a:1"}, tt.args...), &bytes.Buffer{})
			switch {
			case tt.wantErr && (err == nil || !errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("err = %v, want a usage error containing %q", err, tt.want)
			case !tt.wantErr && (err != nil || c.Kubernetes != tt.want):
				t.Errorf("got %+v, %v; want --kubernetes %s", c, err, tt.want)
			}
		})
	}
}

// TestFactFlags checks the flags that give the node's facts: what they
// set, and the command lines they refuse.
func TestFactFlags(t *testing.T) {
	t.Setenv("NODE_NAME", "")
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	tests := []struct {
		name  string
		cmd   string
		args  []string
		facts nodemeta.Facts
		spot  []kube.Label
		err   string // "": accepted
	}{
		{"agent: none", "agent", nil, nodemeta.Facts{}, nil, ""},
		{"agent: every fact", "agent", []string{"--instance-type", "m5.large", "--region", "us-east-1", "--zone", "us-east-1a",
			"--capacity-type", "spot"},
			nodemeta.Facts{InstanceType: "m5.large", Region: "us-east-1", Zone: "us-east-1a", CapacityType: nodemeta.Spot}, nil, ""},
		{"agent: spot labels", "agent", []string{"--kubernetes", "on", "--spot-label", "pool=cheap", "--spot-label", "example.com/lifecycle=spot"},
			nodemeta.Facts{}, []kube.Label{{Key: "pool", Value: "cheap"}, {Key: "example.com/lifecycle", Value: "spot"}}, ""},
		{"agent: capacity type", "agent", []string{"--capacity-type", "preemptible"}, nodemeta.Facts{}, nil,
			`invalid argument "preemptible" for "--capacity-type" flag: want spot or on-demand`},
		{"agent: spot label without a value", "agent", []string{"--kubernetes", "on", "--spot-label", "pool"}, nodemeta.Facts{}, nil,
			`invalid argument "pool" for "--spot-label" flag`},
		{"agent: spot label key", "agent", []string{"--kubernetes", "on", "--spot-label", "my pool=cheap"}, nodemeta.Facts{}, nil,
			`label key "my pool"`},
		{"agent: spot label without kubernetes", "agent", []string{"--spot-label", "pool=cheap"}, nodemeta.Facts{}, nil,
			"--spot-label with --kubernetes off"},
		{"agent: instance type with a space", "agent", []string{"--instance-type", "m5 large"}, nodemeta.Facts{}, nil,
			"node facts: node.instance-type: nodemeta: invalid"},
		{"local: every fact", "local", []string{"--instance-type", "bare-metal", "--region", "home", "--zone", "rack-2",
			"--capacity-type", "on-demand"},
			nodemeta.Facts{InstanceType: "bare-metal", Region: "home", Zone: "rack-2", CapacityType: nodemeta.OnDemand}, nil, ""},
		{"local: capacity type", "local", []string{"--capacity-type", "Spot"}, nodemeta.Facts{}, nil,
			`invalid argument "Spot" for "--capacity-type" flag`},
		{"local: long zone", "local", []string{"--zone", strings.Repeat("z", 254)}, nodemeta.Facts{}, nil,
			"node facts: node.zone: nodemeta: invalid"},
		{"local: no spot labels", "local", []string{"--spot-label", "pool=cheap"}, nodemeta.Facts{}, nil, "unknown flag: --spot-label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				facts nodemeta.Facts
				spot  []kube.Label
				err   error
			)
			if tt.cmd == "agent" {
				var c *agentConfig
				if c, err = parseAgentFlags(append([]string{"--aggregator", "http://a:1"}, tt.args...), &bytes.Buffer{}); c != nil {
					facts, spot = c.Daemon.Facts, c.Kube.SpotLabels
				}
			} else {
				var c *local.Config
				if c, err = parseLocalFlags(tt.args, &bytes.Buffer{}); c != nil {
					facts = c.Facts
				}
			}
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.err != "" && (!errors.Is(err, errUsage) || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("err = %v, want a usage error containing %q", err, tt.err)
			case tt.err == "" && (facts != tt.facts || !slices.Equal(spot, tt.spot)):
				t.Errorf("facts %+v, spot labels %v; want %+v, %v", facts, spot, tt.facts, tt.spot)
			}
		})
	}
}

// TestHelp checks that every subcommand prints its help in the common
// layout to stdout and exits 0, for -h, --help and the single-dash -help,
// also after other flags (as the e2e test runs the chart's arguments).
func TestHelp(t *testing.T) {
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		for _, args := range [][]string{{"-h"}, {"--help"}, {"-help"}, {"--interval=1s", "--help"}} {
			if args[0] == "--interval=1s" && !slices.Contains([]string{"agent", "local", "loadgen"}, name) {
				continue
			}
			t.Run(name+" "+strings.Join(args, " "), func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if code := pennyMain(append([]string{name}, args...), &stdout, &stderr); code != 0 {
					t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr.String())
				}
				if stderr.Len() > 0 {
					t.Errorf("help wrote to stderr:\n%s", stderr.String())
				}
				checkHelpLayout(t, name, stdout.String())
			})
		}
	}
}

// goStyle matches a flag as Go's flag package prints it: -name, or the
// usage on a line of its own after a tab.
var goStyle = regexp.MustCompile(`(?m)^\s*-[a-zA-Z][a-zA-Z-]|^\s*\t`)

// checkHelpLayout checks the help every subcommand prints: usage lines,
// one paragraph, then the flags.
func checkHelpLayout(t *testing.T, name, help string) {
	t.Helper()
	parts := strings.SplitN(help, "\n\n", 3)
	if len(parts) != 3 {
		t.Fatalf("help is not usage, paragraph, flags:\n%s", help)
	}
	for i, line := range strings.Split(parts[0], "\n") {
		prefix := "Usage: penny " + name
		if i > 0 {
			prefix = "       penny " + name
		}
		if !strings.HasPrefix(line, prefix) {
			t.Errorf("usage line %q does not start with %q", line, prefix)
		}
	}
	for line := range strings.SplitSeq(parts[1], "\n") {
		if line == "" || len(line) > 80 || strings.HasPrefix(line, " ") {
			t.Errorf("paragraph line %q: want a wrapped line of at most 80 characters", line)
		}
	}
	if !strings.HasSuffix(parts[1], ".") {
		t.Errorf("paragraph %q does not end a sentence", parts[1])
	}
	if !strings.HasPrefix(parts[2], "Flags:\n") || !strings.Contains(parts[2], "  -h, --help ") {
		t.Errorf("no Flags: section starting with the flags and listing -h, --help:\n%s", parts[2])
	}
	if goStyle.MatchString(parts[2]) {
		t.Errorf("flags printed in Go's flag style (-name, usage on its own line):\n%s", parts[2])
	}
}

// TestUsageErrors checks that a wrong command line of any subcommand
// prints the error and a hint to --help on stderr, nothing on stdout, and
// exits 2.
func TestUsageErrors(t *testing.T) {
	type tc struct {
		args []string
		want string
	}
	tests := []tc{
		{[]string{}, "Usage: penny <command>"},
		{[]string{"nope"}, `penny: unknown command "nope"`},
		{[]string{"top", "nodes"}, `penny top: unknown resource "nodes"`},
		{[]string{"top", "pods", "-n"}, "penny top: flag needs an argument: 'n' in -n"},
		{[]string{"local", "--interval", "fast"}, `penny local: invalid argument "fast" for "--interval"`},
		{[]string{"local", "-interval", "10ms"}, "penny local: interval 10ms is too short"},
		{[]string{"local", "extra"}, `penny local: unexpected argument "extra"`},
		{[]string{"loadgen"}, "penny loadgen: --aggregator is required"},
		{[]string{"agent"}, "penny agent: --aggregator is required"},
		{[]string{"agent", "--aggregator", "http://a:7379", "--interval", "10ms"}, "penny agent: interval 10ms is too short"},
		{[]string{"agent", "--aggregator", "ftp://a"}, `penny agent: shipper: aggregator URL "ftp://a" must be http(s)://host:port`},
		{[]string{"aggregator", "--id", "1"}, "penny aggregator: --data-dir is required"},
		{[]string{"webhook"}, "penny webhook: admission: a serving certificate and key are required"},
		{[]string{"webhook", "--tls-cert-file", "c", "--tls-private-key-file", "k", "--max-request-bytes", "1000"},
			"penny webhook: admission: max request bytes 1000: a pod's review needs at least 64 KiB"},
		{[]string{"webhook", "--tls-cert-file", "c", "--tls-private-key-file", "k", "--listen", ""},
			"penny webhook: admission: a listen address is required"},
		{[]string{"local", "--price-cpu-core-hour", "-0.5", "--price-memory-gib-hour=Inf"},
			"penny local: --price-cpu-core-hour -0.5: a price is zero or more\n--price-memory-gib-hour +Inf: a price is zero or more\n"},
		{[]string{"local", "--price-memory-gib-hour", "cheap"}, `penny local: invalid argument "cheap" for "--price-memory-gib-hour"`},
	}
	for name := range commands {
		tests = append(tests,
			tc{[]string{name, "--frobnicate"}, "penny " + name + ": unknown flag: --frobnicate\nRun 'penny " + name + " --help' for usage.\n"},
			tc{[]string{name, "-frobnicate"}, "penny " + name + ": unknown flag: -frobnicate\n"},
			tc{[]string{name, "-f=1"}, "penny " + name + ": unknown flag: -f\n"},
			tc{[]string{name, "-y"}, "penny " + name + ": unknown shorthand flag: 'y' in -y\n"})
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := pennyMain(tt.args, &stdout, &stderr); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
			if stdout.Len() > 0 {
				t.Errorf("wrote to stdout:\n%s", stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("stderr:\n%s\nwant %q", stderr.String(), tt.want)
			}
		})
	}
}

func TestMainHelp(t *testing.T) {
	for _, arg := range []string{"-h", "--help", "-help", "help"} {
		var stdout, stderr bytes.Buffer
		if code := pennyMain([]string{arg}, &stdout, &stderr); code != 0 || stderr.Len() > 0 ||
			!strings.HasPrefix(stdout.String(), "Usage: penny <command> [flags]\n\nCommands:\n") {
			t.Errorf("penny %s: exit %d, stdout:\n%s\nstderr:\n%s", arg, code, stdout.String(), stderr.String())
		}
	}
}

// TestConfigsValidateOnly checks that Validate fills in no defaults: that
// is Complete's job.
func TestConfigsValidateOnly(t *testing.T) {
	lc := local.Config{Interval: time.Second}
	if err := lc.Validate(); err != nil || lc != (local.Config{Interval: time.Second}) {
		t.Errorf("local: Validate: %v, changed the config to %+v", err, lc)
	}
	if lc.Complete(); lc.APIListen != local.DefaultAPIListen {
		t.Errorf("local: Complete left APIListen %q", lc.APIListen)
	}
	gc := loadgen.Config{URLs: []string{"http://a:1"}, Agents: 1, Containers: 1, Interval: time.Second, Duration: time.Second}
	if err := gc.Validate(); err != nil || gc.ProbesPerInterval != 0 || gc.Logger != nil {
		t.Errorf("loadgen: Validate: %v, changed the config to %+v", err, gc)
	}
	if gc.Complete(); gc.ProbesPerInterval != loadgen.DefaultProbesPerInterval || gc.Logger == nil {
		t.Errorf("loadgen: Complete left %+v", gc)
	}
	var tc top.Config
	_ = tc.Validate()
	if tc.URL != "" {
		t.Errorf("top: Validate set URL %q", tc.URL)
	}
	if tc.Complete(); tc.URL != top.DefaultURL {
		t.Errorf("top: Complete left URL %q", tc.URL)
	}
	ac := aggregatorConfig{Listen: "127.0.0.1:1"}
	_ = ac.Validate()
	if ac.APIURL != "" {
		t.Errorf("aggregator: Validate set APIURL %q", ac.APIURL)
	}
	for _, tt := range []struct {
		cert, want string
	}{{"", "http://127.0.0.1:1"}, {"c", "https://127.0.0.1:1"}} {
		ac := aggregatorConfig{Listen: "127.0.0.1:1"}
		ac.APITLS.CertFile = tt.cert
		if err := ac.Complete(); err != nil || ac.APIURL != tt.want {
			t.Errorf("aggregator: Complete: %v, APIURL %q, want %q", err, ac.APIURL, tt.want)
		}
	}
}

// TestPricingFlags checks the prices on the command line: a price flag
// sets its price only when given (zero included), and the pricing file
// goes to the aggregator's config.
func TestPricingFlags(t *testing.T) {
	zero, cpu := 0.0, 0.05
	tests := []struct {
		args     []string
		file     string
		cpu, mem *float64
	}{
		{nil, "", nil, nil},
		{[]string{"--pricing-file", "p.yaml"}, "p.yaml", nil, nil},
		{[]string{"--price-cpu-core-hour", "0.05"}, "", &cpu, nil},
		{[]string{"--price-memory-gib-hour=0", "--pricing-file=p.yaml"}, "p.yaml", nil, &zero},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			c, err := parseLocalFlags(tt.args, &bytes.Buffer{})
			if err != nil {
				t.Fatal(err)
			}
			if c.PricingFile != tt.file || !reflect.DeepEqual(c.PriceCPUCoreHour, tt.cpu) || !reflect.DeepEqual(c.PriceMemoryGiBHour, tt.mem) {
				t.Errorf("local: file %q, CPU %v, memory %v", c.PricingFile, c.PriceCPUCoreHour, c.PriceMemoryGiBHour)
			}
		})
	}
	c, err := parseAggregatorFlags([]string{"--id", "1", "--data-dir", "d", "--initial-cluster", "1=http://a:1", "--pricing-file", "p.yaml"}, &bytes.Buffer{})
	if err != nil || c.PricingFile != "p.yaml" {
		t.Errorf("aggregator: %+v, %v", c, err)
	}
}

// TestPricingFileRefused checks that a bad pricing file stops penny
// aggregator and penny local at start with exit status 1 (not a usage
// error: the command line is right) and the field and reason, before
// either starts its store.
func TestPricingFileRefused(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "pricing.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: penny.dev/v1\nkind: Pricing\nnodes:\n  - {instanceType: m5.large, capacityType: reserved, hourlyPrice: 0.096}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(dir, "data")
	for _, args := range [][]string{
		{"aggregator", "--id", "1", "--data-dir", data, "--initial-cluster", "1=http://127.0.0.1:1", "--listen", "127.0.0.1:0",
			"--peer-listen", "127.0.0.1:0", "--pricing-file", path},
		{"local", "--data-dir", data, "--api-listen", "127.0.0.1:0", "--pricing-file", path},
	} {
		var stdout, stderr bytes.Buffer
		if code := pennyMain(args, &stdout, &stderr); code != 1 {
			t.Errorf("%s: exit code %d, want 1; stderr:\n%s", args[0], code, stderr.String())
		}
		want := "pricing file " + path + `: nodes[0].capacityType: "reserved" is not on-demand or spot`
		if !strings.Contains(stderr.String(), want) || strings.Contains(stderr.String(), "--help") {
			t.Errorf("%s: stderr:\n%s\nwant %q and no hint to --help", args[0], stderr.String(), want)
		}
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("a store started in %s: %v", data, err)
	}
}

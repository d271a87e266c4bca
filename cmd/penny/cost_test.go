package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestCostFlags(t *testing.T) {
	t.Setenv("PENNY_AGGREGATOR", "")
	tests := []struct {
		name  string
		args  []string
		want  string // substring of the error; empty means valid
		check func(*costConfig) bool
	}{
		{"defaults", nil, "", func(c *costConfig) bool {
			return c.URL == "http://127.0.0.1:7379" && c.Window == "24h" && c.By == "namespace" && !c.JSON && !c.CSV &&
				c.Timeout == 30*time.Second
		}},
		{"everything", []string{"--aggregator=https://agg:7379", "--window", "7d", "--by", "label:team", "-n", "shop",
			"--filter", `pod~:"web"`, "--share-idle", "--csv", "--ca-file", "ca", "--timeout", "5s"}, "", func(c *costConfig) bool {
			return c.URL == "https://agg:7379" && c.Window == "7d" && c.By == "label:team" && c.Namespace == "shop" &&
				c.Filter == `pod~:"web"` && c.ShareIdle && c.CSV && c.TLS.CAFile == "ca" && c.Timeout == 5*time.Second
		}},
		{"go flag style", []string{"-window", "today", "--n", "batch", "-json"}, "", func(c *costConfig) bool {
			return c.Window == "today" && c.Namespace == "batch" && c.JSON
		}},
		{"json and csv", []string{"--json", "--csv"}, "--json and --csv exclude each other", nil},
		{"bad url", []string{"--aggregator", "agg:7379"}, "want http://HOST:PORT", nil},
		{"no timeout", []string{"--timeout", "0s"}, "--timeout 0s must be positive", nil},
		{"argument", []string{"namespaces"}, `unexpected argument "namespaces"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCostFlags(tt.args, &bytes.Buffer{})
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if !tt.check(c) {
					t.Errorf("parsed %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errUsage) {
				t.Fatalf("error = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
	t.Setenv("PENNY_AGGREGATOR", "http://from-env:7379")
	if c, err := parseCostFlags(nil, &bytes.Buffer{}); err != nil || c.URL != "http://from-env:7379" {
		t.Errorf("$PENNY_AGGREGATOR: %+v %v", c, err)
	}
	var out bytes.Buffer
	if _, err := parseCostFlags([]string{"--help"}, &out); !errors.Is(err, pflag.ErrHelp) ||
		!strings.HasPrefix(out.String(), "Usage: penny cost [--window 24h]") {
		t.Errorf("--help: %v\n%s", err, out.String())
	}
}

func TestScaleFlags(t *testing.T) {
	t.Setenv("PENNY_AGGREGATOR", "")
	tests := []struct {
		name  string
		args  []string
		want  string // substring of the error; empty means valid
		check func(*scaleConfig) bool
	}{
		{"defaults", []string{"recommend"}, "", func(c *scaleConfig) bool {
			return c.URL == "http://127.0.0.1:7379" && c.Window == "7d" && c.Namespace == "" && c.Output == "table" &&
				c.Timeout == 30*time.Second
		}},
		{"everything", []string{"recommend", "-n", "shop", "--window", "24h", "-o", "json", "--aggregator", "https://agg:7379",
			"--token-file", "tok"}, "", func(c *scaleConfig) bool {
			return c.Namespace == "shop" && c.Window == "24h" && c.Output == "json" && c.URL == "https://agg:7379" && c.TokenFile == "tok"
		}},
		{"no subcommand", nil, "a subcommand is needed: recommend", nil},
		{"unknown subcommand", []string{"apply"}, `unknown subcommand "apply"`, nil},
		{"bad output", []string{"recommend", "-o", "yaml"}, `-o "yaml": want table or json`, nil},
		{"argument", []string{"recommend", "web"}, `unexpected argument "web"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseScaleFlags(tt.args, &bytes.Buffer{})
			if tt.want == "" {
				if err != nil || !tt.check(c) {
					t.Fatalf("parsed %+v, %v", c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, errUsage) {
				t.Fatalf("error = %v, want a usage error containing %q", err, tt.want)
			}
		})
	}
}

package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/pennyhq/penny/agent/core"
	"github.com/pennyhq/penny/agent/kube"
	"github.com/pennyhq/penny/agent/shipper"
)

// TestCloseWithErrorsNobodyReads: the metrics server and the shipper both
// fail while nobody calls Next; Close must still return.
func TestCloseWithErrorsNobodyReads(t *testing.T) {
	a := newAgent(Config{Core: core.Config{Logger: slog.New(slog.DiscardHandler)}})
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.ticker = time.NewTicker(time.Hour)
	first := errors.New("metrics server: accept: too many open files")
	a.fail(first) // as the metrics server's callback does
	a.ship(ctx, func(context.Context) error { return errors.New("lost") })

	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Fatalf("Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs: the shipper's error has nowhere to go")
	}
	if _, err := a.Next(context.Background()); !errors.Is(err, first) {
		t.Errorf("Next: %v, want the first error", err)
	}
}

func TestConfigCompleteAndValidate(t *testing.T) {
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	var kc kube.Config
	cfg := Config{Core: core.Config{Interval: time.Second, Logger: log},
		Shipper: shipper.Config{URLs: []string{"http://agg:7379"}}, Kube: &kc}
	if err := cfg.Complete(); err != nil {
		t.Fatal(err)
	}
	if cfg.NodeName != NodeName(host) || cfg.Kube.NodeName != cfg.NodeName || cfg.Kube.Logger != log {
		t.Errorf("completed: node %q, kube node %q, kube logger %p", cfg.NodeName, cfg.Kube.NodeName, cfg.Kube.Logger)
	}
	if !reflect.DeepEqual(kc, kube.Config{}) {
		t.Errorf("Complete changed the caller's Kubernetes config: %+v", kc)
	}
	if cfg.Shipper.BufferBytes == 0 || cfg.Shipper.Logger == nil {
		t.Errorf("the shipper's config was not completed: %+v", cfg.Shipper)
	}
	before := cfg
	if err := cfg.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if !reflect.DeepEqual(before, cfg) {
		t.Error("Validate changed the config")
	}

	tests := []struct {
		name string
		edit func(*Config)
	}{
		{"no aggregator", func(c *Config) { c.Shipper.URLs = nil }},
		{"interval too short", func(c *Config) { c.Core.Interval = time.Millisecond }},
		{"node name Kubernetes refuses", func(c *Config) { c.Kube = &kube.Config{NodeName: "Node_A"} }},
		{"bad capacity type", func(c *Config) { c.Facts.CapacityType = "cheap" }},
		{"instance type with a space", func(c *Config) { c.Facts.InstanceType = "m5 large" }},
		{"bad spot label", func(c *Config) { c.Kube = &kube.Config{SpotLabels: []kube.Label{{Key: "pool", Value: "a b"}}} }},
	}
	for _, tt := range tests {
		c := Config{Core: core.Config{Interval: time.Second}, Shipper: shipper.Config{URLs: []string{"http://agg:7379"}},
			Kube: &kube.Config{}}
		tt.edit(&c)
		if err := c.Complete(); err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", tt.name)
		}
	}
}

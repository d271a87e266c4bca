//go:build !agentonly

package main

import (
	"fmt"
	"log/slog"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/pennyhq/penny/aggregator/cost"
	"github.com/pennyhq/penny/aggregator/costpolicy"
	"github.com/pennyhq/penny/aggregator/query"
	"github.com/pennyhq/penny/aggregator/recommend"
	"github.com/pennyhq/penny/aggregator/server"
	"github.com/pennyhq/penny/kvraft"
)

// newCostPolicyController builds the CostPolicy controller of a replica:
// Kubernetes clients from the custom metrics API's --lister-kubeconfig
// (or the in-cluster config), the pods read from the replica's store.
func newCostPolicyController(cfg *aggregatorConfig, srv *server.Server, memory cost.MemoryMeasure, log *slog.Logger) (*costpolicy.Controller, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.adapter.ListerKubeConfig())
	if err != nil {
		return nil, fmt.Errorf("cost policies: kubernetes client config: %w", err)
	}
	rc.UserAgent = "penny-cost-policies"
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cost policies: %w", err)
	}
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("cost policies: %w", err)
	}
	r, err := query.New(query.Config{Store: srv.Reads, Prices: srv.Pricing(), MemoryMeasure: memory})
	if err != nil {
		return nil, err
	}
	return costpolicy.New(costpolicy.Config{Store: srv.Node, Pods: r, Dynamic: dyn, Kube: kube,
		Read:   kvraft.ReadOptions{Consistency: kvraft.Bounded, MaxStaleness: cfg.CustomMetricsMaxStaleness},
		Logger: log.With("component", "cost-policies")})
}

// newPDBLister follows the cluster's PodDisruptionBudgets for the scaling
// recommendations, with the custom metrics API's client configuration
// (--lister-kubeconfig, or in-cluster): its errors are the custom metrics
// API's.
func newPDBLister(cfg *aggregatorConfig) (*recommend.PDBLister, error) {
	rc, err := clientcmd.BuildConfigFromFlags("", cfg.adapter.ListerKubeConfig())
	if err != nil {
		return nil, fmt.Errorf("custom metrics api: kubernetes client config for pod disruption budgets: %w", err)
	}
	rc.UserAgent = "penny-recommendations"
	kube, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, fmt.Errorf("custom metrics api: pod disruption budgets: %w", err)
	}
	return recommend.NewPDBLister(kube), nil
}

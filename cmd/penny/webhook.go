//go:build !agentonly

package main

import (
	"context"
	"io"
	"log/slog"

	"k8s.io/klog/v2"

	"github.com/pennyhq/penny/admission"
)

func init() {
	register("webhook", command{
		summary: "serve the admission webhook that stamps cost labels on new pods",
		run:     runWebhook,
	})
}

func parseWebhookFlags(args []string, stdout io.Writer) (*admission.Config, error) {
	fs := newCmdFlags("webhook", "Serves a mutating admission webhook (admission.k8s.io/v1) that stamps cost labels "+
		"(tenant, service tier, owner) on every new pod from its namespace, its owner or a default, by the rules of "+
		"--rules-file. A label a pod already has is never changed. Serves over HTTPS only: kube-apiserver calls webhooks so.",
		"--tls-cert-file FILE --tls-private-key-file FILE [flags]")
	var c admission.Config
	fs.StringVar(&c.Listen, "listen", ":9443", "serve "+admission.MutatePath+", "+admission.HealthzPath+" and "+
		admission.MetricsPath+" over HTTPS on this address")
	fs.StringVar(&c.TLS.CertFile, "tls-cert-file", "", "serving certificate (PEM), read again when it changes")
	fs.StringVar(&c.TLS.KeyFile, "tls-private-key-file", "", "key of the serving certificate")
	fs.StringVar(&c.TLS.CAFile, "client-ca-file", "", "require a client certificate signed by this CA on reviews "+
		"(for an API server configured to present one)")
	fs.StringVar(&c.RulesFile, "rules-file", "", "which labels to stamp and where their values come from (YAML, docs/admission.md), "+
		"reloaded when it changes (default: cost.tenant-id, cost.service-tier and cost.owner from the namespace, the owner from the pod's controller)")
	fs.StringVar(&c.KubeConfig, "kubeconfig", "", "read namespaces through the API server this kubeconfig `file` names "+
		"(default the in-cluster service account)")
	fs.Int64Var(&c.MaxRequestBytes, "max-request-bytes", admission.DefaultMaxRequestBytes, "largest admission review accepted")
	fs.IntVar(&c.MaxInFlight, "max-in-flight", admission.DefaultMaxInFlight, "reviews decoded at once, at most")
	fs.DurationVar(&c.NamespaceTimeout, "namespace-timeout", admission.DefaultNamespaceTimeout,
		"longest read of a namespace the cache does not have yet")
	if err := fs.parse(args, stdout); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, usageError{err}
	}
	return &c, nil
}

func runWebhook(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	c, err := parseWebhookFlags(args, stdout)
	if err != nil {
		return err
	}
	klog.SetSlogLogger(log.With("component", "client-go"))
	return admission.Run(ctx, *c, log)
}

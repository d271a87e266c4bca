//go:build !agentonly

package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"

	"github.com/pennyhq/penny/aggregator/access"
	"github.com/pennyhq/penny/aggregator/authn"
	"github.com/pennyhq/penny/aggregator/authz"
)

// Authorization modes of --authorization-mode.
const (
	modeAlwaysAllow = "AlwaysAllow"
	modeWebhook     = "Webhook"
	modePolicy      = "Policy"
)

// accessSettings are the flags of the request path's modules of
// `penny aggregator`: authentication, authorization, rate limits and the
// audit log (docs/security.md).
type accessSettings struct {
	TokenAuthFile        string
	TokenWebhook         bool
	Kubeconfig           string
	Audiences            []string
	AgentServiceAccounts []string
	AuthnCacheTTL        time.Duration
	AuthorizationMode    string
	PolicyFile           string
	AuthzCacheTTL        time.Duration
	RateLimitQPS         float64
	RateLimitBurst       int
	AuditLogPath         string
	InsecureAnonymous    bool
	AuthorizeMetrics     bool

	// rateSet says --rate-limit-qps or --rate-limit-burst was given.
	rateSet bool
	// metricsSet says --authorize-metrics was given: otherwise it follows
	// authentication.
	metricsSet bool
	// clientCerts says --api-client-ca-file turns certificates on.
	clientCerts bool
}

// Defaults of the rate limits: per identity, on with authentication.
const (
	defaultRateLimitQPS   = 100
	defaultRateLimitBurst = 200
)

func accessFlags(fs *cmdFlags, a *accessSettings) {
	fs.StringVar(&a.TokenAuthFile, "token-auth-file", "", "authenticate bearer tokens listed in this `file` (kube-apiserver's format: "+
		`token,user,uid,"group1,group2"), read again when it changes; group penny:agents makes the user the agent of the node it names`)
	fs.BoolVar(&a.TokenWebhook, "authentication-token-webhook", false, "authenticate bearer tokens with Kubernetes TokenReview "+
		"(the in-cluster config, or --auth-kubeconfig)")
	fs.StringVar(&a.Kubeconfig, "auth-kubeconfig", "", "kubeconfig `file` of the Kubernetes API that answers TokenReview and SubjectAccessReview "+
		"(default the in-cluster service account)")
	fs.StringSliceVar(&a.Audiences, "api-audiences", nil, "audiences bearer tokens must be meant for, with --authentication-token-webhook (default the API server's)")
	fs.StringSliceVar(&a.AgentServiceAccounts, "agent-service-account", nil, "`NAMESPACE/NAME` of the agents' ServiceAccount: its tokens "+
		"bound to a pod authenticate as the agent of the pod's node (repeatable)")
	fs.DurationVar(&a.AuthnCacheTTL, "authentication-cache-ttl", 10*time.Second, "how long TokenReview answers are reused (refusals half as long)")
	fs.StringVar(&a.AuthorizationMode, "authorization-mode", "", "who may read and write what, by `MODE`: AlwaysAllow, Webhook or Policy; Webhook asks SubjectAccessReview on "+
		"the penny.dev resources, so RBAC decides; Policy reads --authorization-policy-file; default Policy with authentication, none without. "+
		"Whatever the mode, penny:admins may do everything and agents only stream")
	fs.StringVar(&a.PolicyFile, "authorization-policy-file", "", "policy `file` of --authorization-mode Policy (YAML: users and groups to namespaces, "+
		"tenants, cluster reads or admin; docs/security.md), read again when it changes; without it only admins and agents are allowed")
	fs.DurationVar(&a.AuthzCacheTTL, "authorization-cache-ttl", 10*time.Second, "how long SubjectAccessReview answers are reused (refusals half as long)")
	fs.Float64Var(&a.RateLimitQPS, "rate-limit-qps", defaultRateLimitQPS, "requests per second each identity may make (a token bucket; 429 beyond it); "+
		"on with authentication, and per client address without it only when given; 0 turns it off")
	fs.IntVar(&a.RateLimitBurst, "rate-limit-burst", defaultRateLimitBurst, "the token bucket's size: requests an identity may make at once")
	fs.StringVar(&a.AuditLogPath, "api-audit-log-path", "", "append a JSON line for every write and every refused request to this `file`")
	fs.BoolVar(&a.AuthorizeMetrics, "authorize-metrics", true, "make GET /metrics need an identity allowed to list penny.dev/containers "+
		"(its penny_container_* series are every container's): Prometheus then scrapes with a bearer token; on with authentication, "+
		"=false leaves /metrics open to whoever reaches the API port")
	fs.BoolVar(&a.InsecureAnonymous, "insecure-allow-anonymous", false, "serve the API on a non-loopback --listen without authentication: "+
		"anyone who reaches it may write any node's data, the store and the membership")
}

// enabled reports whether any authenticator is on.
func (a *accessSettings) enabled() bool {
	return a.clientCerts || a.TokenAuthFile != "" || a.TokenWebhook
}

// mode is the authorization mode in force.
func (a *accessSettings) mode() string {
	if a.AuthorizationMode == "" && a.enabled() {
		return modePolicy
	}
	return a.AuthorizationMode
}

// validate checks the flags against each other and the listen address.
func (a *accessSettings) validate(listen string) []error {
	var errs []error
	switch a.AuthorizationMode {
	case "", modeAlwaysAllow, modePolicy, modeWebhook:
	default:
		errs = append(errs, fmt.Errorf("--authorization-mode %q: want %s, %s or %s", a.AuthorizationMode, modeAlwaysAllow, modeWebhook, modePolicy))
	}
	if a.AuthorizationMode != "" && !a.enabled() {
		errs = append(errs, errors.New("--authorization-mode needs authentication: --token-auth-file, --authentication-token-webhook or --api-client-ca-file"))
	}
	if a.PolicyFile != "" && a.mode() != modePolicy {
		errs = append(errs, fmt.Errorf("--authorization-policy-file needs --authorization-mode %s", modePolicy))
	}
	if a.PolicyFile != "" {
		if _, err := authz.LoadPolicy(a.PolicyFile, nil); err != nil {
			errs = append(errs, fmt.Errorf("--authorization-policy-file: %w", err))
		}
	}
	if !a.TokenWebhook && a.mode() != modeWebhook {
		switch {
		case a.Kubeconfig != "":
			errs = append(errs, errors.New("--auth-kubeconfig needs --authentication-token-webhook or --authorization-mode Webhook"))
		case len(a.AgentServiceAccounts) > 0 || len(a.Audiences) > 0:
			errs = append(errs, errors.New("--agent-service-account and --api-audiences need --authentication-token-webhook"))
		}
	}
	for _, sa := range a.AgentServiceAccounts {
		if ns, name, ok := strings.Cut(sa, "/"); !ok || ns == "" || name == "" || strings.Contains(name, "/") {
			errs = append(errs, fmt.Errorf("--agent-service-account %q: want NAMESPACE/NAME", sa))
		}
	}
	if a.AuthnCacheTTL < 0 || a.AuthzCacheTTL < 0 {
		errs = append(errs, errors.New("--authentication-cache-ttl and --authorization-cache-ttl must not be negative"))
	}
	if a.RateLimitQPS < 0 || a.RateLimitBurst < 0 || (a.RateLimitQPS > 0 && a.RateLimitBurst < 1) {
		errs = append(errs, errors.New("--rate-limit-qps must not be negative, --rate-limit-burst at least 1 when it is on"))
	}
	if a.AuthorizeMetrics && a.metricsSet && !a.enabled() {
		errs = append(errs, errors.New("--authorize-metrics needs authentication"))
	}
	if a.InsecureAnonymous && a.enabled() {
		errs = append(errs, errors.New("--insecure-allow-anonymous with authentication on: say one or the other"))
	}
	if !a.enabled() && !a.InsecureAnonymous && !loopback(listen) {
		errs = append(errs, fmt.Errorf("--listen %s is not a loopback address and authentication is off: anyone who reaches it could write "+
			"any node's data, the store and the membership; turn authentication on (--api-client-ca-file, --token-auth-file or "+
			"--authentication-token-webhook; docs/security.md) or accept the risk with --insecure-allow-anonymous", listen))
	}
	return errs
}

// loopback reports whether the HOST:PORT listen listens on loopback only.
func loopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// config builds the modules the flags turn on; log says what is on, and
// warns when nothing authenticates.
func (a *accessSettings) config(log *slog.Logger) (access.Config, error) {
	var c access.Config
	ac := authn.Config{ClientCertificates: a.clientCerts, TokenFile: a.TokenAuthFile, Logger: log}
	var kube kubernetes.Interface
	if a.TokenWebhook || a.mode() == modeWebhook {
		var err error
		if kube, err = authn.KubeClient(a.Kubeconfig); err != nil {
			return c, fmt.Errorf("--auth-kubeconfig: %w", err)
		}
	}
	if a.TokenWebhook {
		ac.TokenReview = &authn.TokenReviewConfig{Client: kube.AuthenticationV1().TokenReviews(), Audiences: a.Audiences,
			AgentServiceAccounts: a.AgentServiceAccounts, CacheTTL: a.AuthnCacheTTL}
	}
	au, err := authn.New(ac)
	if err != nil {
		return c, err
	}
	if au != nil {
		c.Authenticator = au
	}
	switch a.mode() {
	case modeAlwaysAllow:
		c.Authorizer = authz.AlwaysAllow{}
	case modePolicy:
		c.Authorizer = authz.Policy{File: &authz.PolicyFile{}}
		if a.PolicyFile != "" {
			p, err := authz.LoadPolicy(a.PolicyFile, log)
			if err != nil {
				return c, fmt.Errorf("--authorization-policy-file: %w", err)
			}
			c.Authorizer = p
		}
	case modeWebhook:
		wh, err := authz.NewWebhook(authz.WebhookConfig{Client: kube.AuthorizationV1().SubjectAccessReviews(),
			AllowTTL: a.AuthzCacheTTL, DenyTTL: a.AuthzCacheTTL / 2})
		if err != nil {
			return c, err
		}
		c.Authorizer = wh
	}
	if a.enabled() || a.rateSet {
		c.RateLimit = access.RateLimitConfig{QPS: a.RateLimitQPS, Burst: a.RateLimitBurst}
	}
	c.AuditLogPath = a.AuditLogPath
	c.ProtectMetrics = a.AuthorizeMetrics && a.enabled()
	return c, nil
}

// describe logs what guards the API.
func (a *accessSettings) describe(log *slog.Logger, listen string) {
	if a.enabled() {
		var by []string
		for _, x := range []struct {
			on   bool
			name string
		}{{a.clientCerts, "client certificates"}, {a.TokenAuthFile != "", "token file"}, {a.TokenWebhook, "TokenReview"}} {
			if x.on {
				by = append(by, x.name)
			}
		}
		log.Info("api authentication on", "by", by, "authorization", a.mode(), "agent_service_accounts", slices.Clip(a.AgentServiceAccounts))
		return
	}
	if a.InsecureAnonymous {
		log.Warn("api authentication off on a non-loopback address (--insecure-allow-anonymous): anyone who reaches it may do anything", "listen", listen)
		return
	}
	log.Warn("api authentication off: anyone who reaches the loopback address may do anything", "listen", listen)
}

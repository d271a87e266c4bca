# The Helm chart (charts/penny) and the image it runs.
# Included by the top-level Makefile.

# helm, built through the Go module proxy at a pinned version and cached.
HELM ?= hack/helm.sh
CHART ?= charts/penny
# Value files that exercise the chart's optional paths (helm's convention).
CHART_CI_VALUES := $(wildcard $(CHART)/ci/*.yaml)
CHART_OUT ?= _output/chart
CHART_NS ?= penny-system
IMAGE ?= penny:dev
DOCKER ?= docker

.PHONY: chart-lint image

# helm lint --strict and helm template with the default values and each
# ci/*.yaml, each rendering checked by hack/chartcheck (typed strict
# decoding, labels, resources, securityContext, references); then values
# that must be refused are, and every value is documented in values.yaml
# and the chart's README. hack/dashboards -check fails when the committed
# dashboards (charts/penny/dashboards) are not what internal/dashboards
# builds. Any error fails the target.
chart-lint: ## lint and render charts/penny (defaults and ci/*.yaml) and check every object; the dashboards' JSON is what internal/dashboards builds
	$(GO) run ./hack/dashboards -check
	$(GO) run ./hack/chartcheck -values $(CHART)/values.yaml -readme $(CHART)/README.md
	$(HELM) lint --strict $(CHART)
	@mkdir -p $(CHART_OUT)
	$(HELM) template penny $(CHART) -n $(CHART_NS) > $(CHART_OUT)/default.yaml
	$(GO) run ./hack/chartcheck -namespace $(CHART_NS) $(CHART_OUT)/default.yaml
	@set -e; f=$(CHART_OUT)/default.yaml; \
	if grep -q -- '--insecure-allow-anonymous' $$f; then \
		echo "chart-lint: the default values run the API with --insecure-allow-anonymous"; exit 1; fi; \
	for want in -- '- --cert-file=' '- --peer-cert-file=' '- --peer-client-cert-auth' '- --peer-trusted-ca-file=' \
			'- --authentication-token-webhook' '- --agent-service-account=$(CHART_NS)/' '- --authorization-mode=Webhook' \
			'- --ca-file=' '- --aggregator=https://' '- --advertise-api-url=https://' '- --initial-cluster=1=https://' \
			'kind: NetworkPolicy' 'rbac.authorization.k8s.io/aggregate-to-view: "true"' 'scheme: HTTPS' \
			'- --authorize-metrics' 'kind: MutatingWebhookConfiguration' 'failurePolicy: Ignore'; do \
		if ! grep -q -F -- "$$want" $$f; then \
			echo "chart-lint: the default values render no \"$$want\": TLS, authentication, authorization of /metrics, the NetworkPolicy and the cost-label webhook (failurePolicy Ignore) must be on by default"; exit 1; fi; \
	done; echo "chart-lint: the defaults turn TLS, authentication, authorization (/metrics included) and the NetworkPolicy on"
	@set -e; for f in $(CHART_CI_VALUES); do \
		out=$(CHART_OUT)/$$(basename $$f); \
		echo "$(HELM) lint --strict $(CHART) -f $$f"; \
		$(HELM) lint --strict $(CHART) -f $$f; \
		echo "$(HELM) template penny $(CHART) -n $(CHART_NS) -f $$f > $$out"; \
		$(HELM) template penny $(CHART) -n $(CHART_NS) -f $$f > $$out; \
		$(GO) run ./hack/chartcheck -namespace $(CHART_NS) $$out; \
	done
	@set -e; for bad in customMetrics.tls.existingSecret=x aggregator.podAntiAffinity=sometimes \
			aggregator.replicas=0 customMetrics.enabled=false tls.enabled=false tls.existingSecret=x \
			tls.certManager.enabled=true tls.caBundle=notpem tls.renewBefore=30d tls.renewBefore=9000h \
			tls.existingSecret=x,tls.certManager.enabled=true,tls.caBundle=x tls.extraIPAddresses[0]=penny.example auth.authorizationMode=Always \
			auth.policy.rules=x auth.enabled=false,tls.enabled=false,auth.authorizeMetrics=true \
			aggregator.quotaBytes=1073741824 aggregator.quotaBytes=0 tls.enabled=false,auth.enabled=false \
			webhook.failurePolicy=Sometimes webhook.timeoutSeconds=0 webhook.timeoutSeconds=31 \
			webhook.tls.certManager.enabled=true webhook.rules.labels[0].key=cost.tenant-id \
			alerts.configMap.enabled=true,alerts.tenantBudgets.acme=lots alerts.configMap.enabled=true,alerts.tenantBudgets.acme=0 \
			costPolicies.enabled=true,customMetrics.enabled=false,apiService.enabled=false; do \
		if $(HELM) template penny $(CHART) -n $(CHART_NS) --set $$bad > /dev/null 2>&1; then \
			echo "chart-lint: helm template accepted --set $$bad, which must fail"; exit 1; \
		fi; \
	done; echo "chart-lint: values that cannot work are refused"

# One image for every subcommand (see Dockerfile); needs a Docker engine,
# which CI does not have.
image: ## docker build the image (IMAGE=penny:dev); not run in CI, which has no Docker engine
	$(DOCKER) build -t $(IMAGE) .

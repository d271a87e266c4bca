{{/* Names, labels and the values derived from several others. */}}

{{/* The chart's name, or nameOverride. */}}
{{- define "penny.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else the release name
(with the chart's name appended unless the release name contains it).
Kept to 40 characters so that "<fullname>-aggregator-peers" and a pod's
"<fullname>-aggregator-<ordinal>" stay within DNS label limits.
*/}}
{{- define "penny.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* chart-version, for the helm.sh/chart label. */}}
{{- define "penny.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The labels every object carries. */}}
{{- define "penny.labels" -}}
helm.sh/chart: {{ include "penny.chart" . }}
app.kubernetes.io/name: {{ include "penny.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: penny
{{- end }}

{{/* Labels of a component's objects: penny.labels plus the component. Call with (dict "ctx" $ "component" "agent"). */}}
{{- define "penny.componentLabels" -}}
{{ include "penny.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* Selector labels of a component's pods. Call with (dict "ctx" $ "component" "agent"). */}}
{{- define "penny.selectorLabels" -}}
app.kubernetes.io/name: {{ include "penny.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The image, tag defaulting to the chart's appVersion. */}}
{{- define "penny.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "penny.agent.fullname" -}}
{{- printf "%s-agent" (include "penny.fullname" .) }}
{{- end }}

{{- define "penny.aggregator.fullname" -}}
{{- printf "%s-aggregator" (include "penny.fullname" .) }}
{{- end }}

{{/* The headless Service that gives each replica its DNS name. */}}
{{- define "penny.aggregator.peers" -}}
{{- printf "%s-aggregator-peers" (include "penny.fullname" .) }}
{{- end }}

{{/* The Service in front of the replicas' custom metrics API. */}}
{{- define "penny.customMetrics.service" -}}
{{- printf "%s-custom-metrics" (include "penny.fullname" .) }}
{{- end }}

{{- define "penny.agent.serviceAccountName" -}}
{{- if .Values.agent.serviceAccount.create }}
{{- default (include "penny.agent.fullname" .) .Values.agent.serviceAccount.name }}
{{- else }}
{{- required "agent.serviceAccount.name is required when agent.serviceAccount.create is false" .Values.agent.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "penny.aggregator.serviceAccountName" -}}
{{- if .Values.aggregator.serviceAccount.create }}
{{- default (include "penny.aggregator.fullname" .) .Values.aggregator.serviceAccount.name }}
{{- else }}
{{- required "aggregator.serviceAccount.name is required when aggregator.serviceAccount.create is false" .Values.aggregator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Host name of replica i ("<name>-<i>.<peers>.<namespace>.svc"). Call with (dict "ctx" $ "i" 0). */}}
{{- define "penny.aggregator.host" -}}
{{- printf "%s-%d.%s.%s.svc" (include "penny.aggregator.fullname" .ctx) (int .i) (include "penny.aggregator.peers" .ctx) .ctx.Release.Namespace }}
{{- end }}

{{/* "https" with tls.enabled (the API), else "http". */}}
{{- define "penny.scheme" -}}
{{- if .Values.tls.enabled }}https{{ else }}http{{ end }}
{{- end }}

{{/* "https" with tls.enabled and tls.peers (the Raft peers), else "http". */}}
{{- define "penny.peerScheme" -}}
{{- if and .Values.tls.enabled .Values.tls.peers }}https{{ else }}http{{ end }}
{{- end }}

{{/* --initial-cluster: member i+1 is replica i (--id-from-hostname). */}}
{{- define "penny.aggregator.initialCluster" -}}
{{- $members := list }}
{{- range $i := until (int .Values.aggregator.replicas) }}
{{- $members = append $members (printf "%d=%s://%s:%d" (add1 $i) (include "penny.peerScheme" $) (include "penny.aggregator.host" (dict "ctx" $ "i" $i)) (int $.Values.aggregator.peerPort)) }}
{{- end }}
{{- join "," $members }}
{{- end }}

{{/* The agents' --aggregator: every replica's API URL. */}}
{{- define "penny.aggregator.apiURLs" -}}
{{- $urls := list }}
{{- range $i := until (int .Values.aggregator.replicas) }}
{{- $urls = append $urls (printf "%s://%s:%d" (include "penny.scheme" $) (include "penny.aggregator.host" (dict "ctx" $ "i" $i)) (int $.Values.aggregator.apiPort)) }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{- define "penny.aggregator.clusterToken" -}}
{{- default (printf "%s/%s" .Release.Namespace (include "penny.fullname" .)) .Values.aggregator.clusterToken }}
{{- end }}

{{- define "penny.customMetrics.tlsSecretName" -}}
{{- default (printf "%s-custom-metrics-tls" (include "penny.fullname" .)) .Values.customMetrics.tls.existingSecret }}
{{- end }}

{{/*
The custom metrics API's CA and serving certificate, as a dict with the PEM
strings "ca", "crt" and "key" (ca only when the chart makes the certificate).
Computed once per render and kept in the root context, so that the Secret
and the APIService objects agree. An existing Secret of this release is
reused (lookup), so upgrades keep the certificate; `helm template` and
`helm lint` have no cluster and always make a new one.
*/}}
{{- define "penny.customMetrics.tls" -}}
{{- if not (hasKey $ "pennyCustomMetricsTLS") }}
{{- $tls := dict }}
{{- if .Values.customMetrics.tls.existingSecret }}
{{- $ca := .Values.apiService.caBundle }}
{{- if and $ca (not (hasPrefix "-----BEGIN" $ca)) }}
{{- $ca = b64dec $ca }}
{{- end }}
{{- $_ := set $tls "ca" $ca }}
{{- else }}
{{- $name := include "penny.customMetrics.tlsSecretName" . }}
{{- $old := lookup "v1" "Secret" .Release.Namespace $name }}
{{- $data := dict }}
{{- if $old }}{{ $data = default dict $old.data }}{{ end }}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") }}
{{- $_ := set $tls "ca" (index $data "ca.crt" | b64dec) }}
{{- $_ := set $tls "crt" (index $data "tls.crt" | b64dec) }}
{{- $_ := set $tls "key" (index $data "tls.key" | b64dec) }}
{{- else }}
{{- $svc := include "penny.customMetrics.service" . }}
{{- $ns := .Release.Namespace }}
{{- $days := int .Values.customMetrics.tls.validityDays }}
{{- $ca := genCA (printf "%s-ca" $svc) $days }}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns)) $days $ca }}
{{- $_ := set $tls "ca" $ca.Cert }}
{{- $_ := set $tls "crt" $cert.Cert }}
{{- $_ := set $tls "key" $cert.Key }}
{{- end }}
{{- end }}
{{- $_ := set $ "pennyCustomMetricsTLS" $tls }}
{{- end }}
{{- toJson (get $ "pennyCustomMetricsTLS") }}
{{- end }}

{{/* The pricing ConfigMap's name; the chart renders it when pricing sets anything. */}}
{{- define "penny.pricing.configMapName" -}}
{{- printf "%s-pricing" (include "penny.fullname" .) }}
{{- end }}

{{/* "true" when the pricing values set anything, else empty: OpenCost's defaults, no file. */}}
{{- define "penny.pricing.enabled" -}}
{{- if or .Values.pricing.currency .Values.pricing.defaults .Values.pricing.nodes }}true{{ end }}
{{- end }}

{{/*
The pricing file (docs/pricing.md) the pricing values describe. Prices
given with --set arrive as strings (helm parses only integers): a string
that is a number becomes one. Anything else goes through as it is, for the
aggregator to accept or refuse, naming the field.
*/}}
{{- define "penny.pricing.file" -}}
{{- $number := "^[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]+)?$" -}}
apiVersion: penny.dev/v1
kind: Pricing
{{- with .Values.pricing.currency }}
currency: {{ . | quote }}
{{- end }}
{{- with .Values.pricing.defaults }}
{{- $defaults := dict }}
{{- range $k, $v := . }}
{{- if and (kindIs "string" $v) (regexMatch $number $v) }}{{ $v = float64 $v }}{{ end }}
{{- $_ := set $defaults $k $v }}
{{- end }}
defaults:
  {{- toYaml $defaults | nindent 2 }}
{{- end }}
{{- with .Values.pricing.nodes }}
{{- $nodes := list }}
{{- range . }}
{{- $n := . }}
{{- if kindIs "map" . }}
{{- $n = deepCopy . }}
{{- $p := get $n "hourlyPrice" }}
{{- if and (kindIs "string" $p) (regexMatch $number $p) }}{{ $_ := set $n "hourlyPrice" (float64 $p) }}{{ end }}
{{- end }}
{{- $nodes = append $nodes $n }}
{{- end }}
nodes:
  {{- toYaml $nodes | nindent 2 }}
{{- end }}
{{- end }}

{{/* Fails the render on values that cannot work together. */}}
{{- define "penny.validate" -}}
{{- if lt (int .Values.aggregator.replicas) 1 }}
{{- fail "aggregator.replicas must be at least 1 (3 or 5 for a highly available cluster)" }}
{{- end }}
{{- if not (has .Values.aggregator.podAntiAffinity (list "preferred" "required")) }}
{{- fail (printf "aggregator.podAntiAffinity must be \"preferred\" or \"required\", not %q" .Values.aggregator.podAntiAffinity) }}
{{- end }}
{{- range .Values.agent.spotLabels }}
{{- if not (regexMatch "^[^=]+=[^=]*$" .) }}
{{- fail (printf "agent.spotLabels: %q is not KEY=VALUE" .) }}
{{- end }}
{{- end }}
{{- $kube := .Values.agent.kubernetes }}
{{- if and .Values.agent.spotLabels (or (eq (toString $kube) "off") (eq (toString $kube) "false")) }}
{{- fail "agent.spotLabels needs agent.kubernetes: spot labels are read from the Node object" }}
{{- end }}
{{- if and .Values.apiService.enabled (not .Values.customMetrics.enabled) }}
{{- fail "apiService.enabled needs customMetrics.enabled: the APIService would point at an API no replica serves" }}
{{- end }}
{{- if and .Values.apiService.enabled .Values.customMetrics.tls.existingSecret (not .Values.apiService.caBundle) (not .Values.apiService.insecureSkipTLSVerify) }}
{{- fail "customMetrics.tls.existingSecret needs apiService.caBundle: the CA that signed its certificate, for the APIService objects" }}
{{- end }}
{{- include "penny.validateTrust" . }}
{{- if .Values.webhook.enabled }}
{{- /* The webhook checks its rules in full (and keeps the last good ones); refuse here what it could never start with. */}}
{{- range $i, $l := (default dict .Values.webhook.rules).labels }}
{{- if not (regexMatch "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$" (toString $l.key)) }}
{{- fail (printf "webhook.rules.labels[%d].key %q: not a label key" $i (toString $l.key)) }}
{{- end }}
{{- if not $l.from }}
{{- fail (printf "webhook.rules.labels[%d].from: no source for %q" $i (toString $l.key)) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $k, $_ := .Values.pricing }}
{{- if not (has $k (list "currency" "defaults" "nodes")) }}
{{- fail (printf "pricing.%s: unknown field (pricing has currency, defaults and nodes; see docs/pricing.md)" $k) }}
{{- end }}
{{- end }}
{{- end }}

{{/* Fails the render on TLS, authentication and limit values that contradict each other. */}}
{{- define "penny.validateTrust" -}}
{{- $tls := .Values.tls }}
{{- $auth := .Values.auth }}
{{- if and $auth.enabled (not $tls.enabled) }}
{{- fail "auth.enabled needs tls.enabled: bearer tokens must not cross the network in clear (auth.enabled=false too, to run without either)" }}
{{- end }}
{{- if and $tls.peers (not $tls.enabled) }}
{{- fail "tls.peers needs tls.enabled (tls.peers=false too, to run the peers without TLS)" }}
{{- end }}
{{- /*
The peer URLs are in the replicated log from a member's first start on, so
an installed cluster keeps their scheme: refuse to change it.
*/}}
{{- $sts := lookup "apps/v1" "StatefulSet" .Release.Namespace (include "penny.aggregator.fullname" .) }}
{{- if $sts }}
{{- range (first $sts.spec.template.spec.containers).args }}
{{- if hasPrefix "--initial-cluster=" . }}
{{- $was := ternary "https" "http" (contains "=https://" .) }}
{{- if ne $was (include "penny.peerScheme" $) }}
{{- fail (printf "this release's Raft members were installed with %s peer URLs, which their log keeps: set tls.peers=%t (and tls.enabled=true for the API) to upgrade it; changing the peers' scheme needs a new cluster (README: Upgrades)" $was (eq $was "https")) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- if and $tls.existingSecret $tls.certManager.enabled }}
{{- fail "tls.existingSecret and tls.certManager.enabled contradict each other: the certificate comes from one or the other" }}
{{- end }}
{{- if and (not $tls.enabled) (or $tls.existingSecret $tls.certManager.enabled $tls.caBundle) }}
{{- fail "tls.existingSecret, tls.certManager and tls.caBundle need tls.enabled" }}
{{- end }}
{{- if and (or $tls.existingSecret $tls.certManager.enabled) (not $tls.caBundle) }}
{{- fail "tls.existingSecret and tls.certManager.enabled need tls.caBundle: the CA that signs the certificate, which agents and peers trust" }}
{{- end }}
{{- if $tls.caBundle }}
{{- $ca := $tls.caBundle }}
{{- if not (hasPrefix "-----BEGIN" $ca) }}{{ $ca = b64dec $ca }}{{ end }}
{{- if not (contains "-----BEGIN CERTIFICATE-----" $ca) }}
{{- fail "tls.caBundle is not a PEM certificate (or base64 of one)" }}
{{- end }}
{{- end }}
{{- if and $tls.certManager.enabled (not $tls.certManager.issuerRef.name) }}
{{- fail "tls.certManager.enabled needs tls.certManager.issuerRef.name" }}
{{- end }}
{{- if $tls.enabled }}
{{- if not (regexMatch "^([0-9]+(h|m|s))+$" (toString $tls.renewBefore)) }}
{{- fail (printf "tls.renewBefore must be a duration in hours, minutes or seconds such as 720h, not %q" (toString $tls.renewBefore)) }}
{{- end }}
{{- if or (lt (int $tls.validityDays) 1) (lt (int $tls.caValidityDays) (int $tls.validityDays)) }}
{{- fail "tls.validityDays must be at least 1 and at most tls.caValidityDays" }}
{{- end }}
{{- range $tls.extraIPAddresses }}
{{- if not (regexMatch "^([0-9]{1,3}(\\.[0-9]{1,3}){3}|[0-9a-fA-F:]*:[0-9a-fA-F:.]*)$" (toString .)) }}
{{- fail (printf "tls.extraIPAddresses holds %q, which is not an IPv4 or IPv6 address (names go in tls.extraDNSNames)" (toString .)) }}
{{- end }}
{{- end }}
{{- $renew := now | mustDateModify (printf "+%s" $tls.renewBefore) | unixEpoch | int64 }}
{{- $expiry := now | mustDateModify (printf "+%dh" (mul (int $tls.validityDays) 24)) | unixEpoch | int64 }}
{{- if ge $renew $expiry }}
{{- fail "tls.renewBefore must be shorter than tls.validityDays: every upgrade would make a new certificate" }}
{{- end }}
{{- end }}
{{- if not (has $auth.authorizationMode (list "Webhook" "Policy" "AlwaysAllow")) }}
{{- fail (printf "auth.authorizationMode must be Webhook, Policy or AlwaysAllow, not %q" (toString $auth.authorizationMode)) }}
{{- end }}
{{- if and $auth.policy (ne $auth.authorizationMode "Policy") }}
{{- fail "auth.policy needs auth.authorizationMode Policy" }}
{{- end }}
{{- if and $auth.authorizeMetrics (not $auth.enabled) }}
{{- fail "auth.authorizeMetrics needs auth.enabled: without authentication nobody could scrape /metrics" }}
{{- end }}
{{- if and (not $auth.enabled) $auth.auditLogPath }}
{{- fail "auth.auditLogPath needs auth.enabled: without identities the audit log would say nothing" }}
{{- end }}
{{- if or (lt (float64 $auth.rateLimit.qps) 0.0) (lt (int $auth.rateLimit.burst) 1) }}
{{- fail "auth.rateLimit.qps must be 0 (no limit) or more, and auth.rateLimit.burst at least 1" }}
{{- end }}
{{- $quota := int64 .Values.aggregator.quotaBytes }}
{{- if or (eq $quota 0) (lt $quota -1) }}
{{- fail "aggregator.quotaBytes must be positive, or -1 for no quota" }}
{{- end }}
{{- if lt (int64 .Values.aggregator.maxRequestBytes) 1 }}
{{- fail "aggregator.maxRequestBytes must be positive" }}
{{- end }}
{{- $limit := toString (dig "limits" "memory" "" .Values.aggregator.resources) }}
{{- $m := regexFindAll "^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$" $limit 1 }}
{{- if and $m (gt $quota 0) }}
{{- $n := regexReplaceAll "[^0-9]" $limit "" | int64 }}
{{- $unit := regexReplaceAll "^[0-9]+" $limit "" }}
{{- $mul := get (dict "" 1 "k" 1000 "M" 1000000 "G" 1000000000 "T" 1000000000000 "Ki" 1024 "Mi" 1048576 "Gi" 1073741824 "Ti" 1099511627776) $unit }}
{{- if lt (mul $n $mul) (mul $quota 3) }}
{{- fail (printf "aggregator.quotaBytes %d does not fit aggregator.resources.limits.memory %s: a replica at the quota holds about 2.8 times it in memory (docs/kvraft.md); raise the limit to 3 times the quota or lower the quota" $quota $limit) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The webhook's Deployment, Service and the objects around them. */}}
{{- define "penny.webhook.fullname" -}}
{{- printf "%s-webhook" (include "penny.fullname" .) }}
{{- end }}

{{- define "penny.webhook.serviceAccountName" -}}
{{- if .Values.webhook.serviceAccount.create }}
{{- default (include "penny.webhook.fullname" .) .Values.webhook.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.webhook.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret (tls.crt, tls.key, ca.crt) the webhook serves with. */}}
{{- define "penny.webhook.tlsSecretName" -}}
{{- printf "%s-tls" (include "penny.webhook.fullname" .) }}
{{- end }}

{{/*
The webhook's CA and serving certificate the chart makes, as a dict of PEM
strings: ca, crt, key, notAfter, bundle (the caBundle: this CA and, after a
rotation, the one it replaced). Computed once per render; reused from the
installed release's Secret unless it is within webhook.tls.renewBefore of
its penny.dev/not-after, or was made for another Service name.
*/}}
{{- define "penny.webhook.tls" -}}
{{- if not (hasKey $ "pennyWebhookTLS") }}
{{- $out := dict }}
{{- $svc := include "penny.webhook.fullname" . }}
{{- $ns := .Release.Namespace }}
{{- $names := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) }}
{{- $sans := toJson $names | sha256sum }}
{{- $old := lookup "v1" "Secret" $ns (include "penny.webhook.tlsSecretName" .) }}
{{- $data := dict }}
{{- if $old }}{{ $data = default dict $old.data }}{{ end }}
{{- $oldSans := "" }}
{{- if $old }}{{ $oldSans = index (default dict $old.metadata.annotations) "penny.dev/sans" | default "" }}{{ end }}
{{- if and (index $data "ca.crt") (index $data "tls.crt") (index $data "tls.key") (eq $oldSans $sans) (not (include "penny.tls.due" (dict "ctx" . "secret" $old "before" .Values.webhook.tls.renewBefore))) }}
{{- $_ := set $out "ca" (index $data "ca.crt" | b64dec) }}
{{- $_ := set $out "crt" (index $data "tls.crt" | b64dec) }}
{{- $_ := set $out "key" (index $data "tls.key" | b64dec) }}
{{- $_ := set $out "previous" (index $data "previous.crt" | default "" | b64dec) }}
{{- $_ := set $out "notAfter" (index $old.metadata.annotations "penny.dev/not-after") }}
{{- else }}
{{- $days := int .Values.webhook.tls.validityDays }}
{{- $ca := genCA (printf "%s-ca" $svc) $days }}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) nil $names $days $ca }}
{{- $_ := set $out "ca" $ca.Cert }}
{{- $_ := set $out "crt" $cert.Cert }}
{{- $_ := set $out "key" $cert.Key }}
{{- /* The CA it replaces stays in the caBundle until the next rotation. */}}
{{- $_ := set $out "previous" (index $data "ca.crt" | default "" | b64dec) }}
{{- $_ := set $out "notAfter" (include "penny.tls.notAfter" (dict "days" $days)) }}
{{- end }}
{{- $_ := set $out "sans" $sans }}
{{- $_ := set $out "bundle" (printf "%s%s" $out.ca $out.previous) }}
{{- $_ := set $ "pennyWebhookTLS" $out }}
{{- end }}
{{- toJson (get $ "pennyWebhookTLS") }}
{{- end }}

{{/* The alert rule groups: rules/penny-alerts.yaml, plus a group of one
recording rule per tenant budget (penny:tenant_budget_dollars_per_month,
which PennyTenantOverBudget compares against), as a rule file's YAML. */}}
{{- define "penny.alerts.groups" -}}
{{- $groups := (.Files.Get "rules/penny-alerts.yaml" | fromYaml).groups }}
{{- with .Values.alerts.tenantBudgets }}
{{- $rules := list }}
{{- range $tenant, $budget := . }}
{{- if not (or (kindIs "float64" $budget) (kindIs "int64" $budget) (kindIs "int" $budget)) }}
{{- fail (printf "alerts.tenantBudgets.%s: %v is not a number (a monthly budget in the pricing's currency)" $tenant $budget) }}
{{- end }}
{{- if le (float64 $budget) 0.0 }}
{{- fail (printf "alerts.tenantBudgets.%s: the budget must be above 0" $tenant) }}
{{- end }}
{{- $rules = append $rules (dict "record" "penny:tenant_budget_dollars_per_month" "expr" (printf "vector(%s)" (toString $budget)) "labels" (dict "tenant" $tenant)) }}
{{- end }}
{{- $groups = append $groups (dict "name" "penny-budgets" "rules" $rules) }}
{{- end }}
{{- toYaml (dict "groups" $groups) }}
{{- end }}

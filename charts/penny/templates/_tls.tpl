{{/*
TLS of the aggregators' API and Raft peer transport (values: tls). The
custom metrics API has a certificate of its own (_helpers.tpl).
*/}}

{{/* The Secret (tls.crt, tls.key) the aggregators serve and dial peers with. */}}
{{- define "penny.tls.secretName" -}}
{{- default (printf "%s-aggregator-tls" (include "penny.fullname" .)) .Values.tls.existingSecret }}
{{- end }}

{{/* The Secret that keeps the chart's CA (ca.crt, ca.key); mounted by no pod. */}}
{{- define "penny.tls.caSecretName" -}}
{{- printf "%s-ca" (include "penny.fullname" .) }}
{{- end }}

{{/* The ConfigMap with the CA bundle (ca.crt) that agents, replicas and readers trust. */}}
{{- define "penny.tls.caConfigMapName" -}}
{{- printf "%s-ca" (include "penny.fullname" .) }}
{{- end }}

{{/* "true" when the chart makes the CA and the certificate itself. */}}
{{- define "penny.tls.generated" -}}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) (not .Values.tls.certManager.enabled) }}true{{ end }}
{{- end }}

{{/* The DNS names of the aggregators' certificate, as a JSON list. */}}
{{- define "penny.tls.dnsNames" -}}
{{- $ns := .Release.Namespace }}
{{- $domain := .Values.clusterDomain }}
{{- $names := list }}
{{- range $svc := list (include "penny.aggregator.fullname" .) (include "penny.aggregator.peers" .) }}
{{- $names = concat $names (list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.%s" $svc $ns $domain)) }}
{{- end }}
{{- $peers := include "penny.aggregator.peers" . }}
{{- $names = concat $names (list (printf "*.%s.%s.svc" $peers $ns) (printf "*.%s.%s.svc.%s" $peers $ns $domain) "localhost") }}
{{- $names = concat $names (.Values.tls.extraDNSNames | default list) }}
{{- toJson $names }}
{{- end }}
{{/* The IP addresses of the aggregators' certificate, as a JSON list. */}}
{{- define "penny.tls.ipAddresses" -}}
{{- toJson (concat (list "127.0.0.1" "::1") (.Values.tls.extraIPAddresses | default list)) }}
{{- end }}

{{/* The RFC 3339 time, in UTC, days from now. Call with (dict "days" N). */}}
{{- define "penny.tls.notAfter" -}}
{{- dateInZone "2006-01-02T15:04:05Z07:00" (now | mustDateModify (printf "+%dh" (mul (int .days) 24))) "UTC" }}
{{- end }}

{{/*
"true" when a Secret the chart made must be made again: it is missing, has
no penny.dev/not-after annotation, or that time is within tls.renewBefore
of now (within "before" when given: "0s" asks whether it expired). Call
with (dict "ctx" $ "secret" $obj).
*/}}
{{- define "penny.tls.due" -}}
{{- $s := .secret }}
{{- $at := "" }}
{{- if $s }}{{ $at = index (default dict $s.metadata.annotations) "penny.dev/not-after" | default "" }}{{ end }}
{{- if not $at }}true
{{- else }}
{{- $renewAt := toDate "2006-01-02T15:04:05Z07:00" $at | mustDateModify (printf "-%s" (.before | default .ctx.Values.tls.renewBefore)) }}
{{- if le ($renewAt | unixEpoch | int64) (now | unixEpoch | int64) }}true{{ end }}
{{- end }}
{{- end }}

{{/*
The CA and the aggregators' certificate the chart makes, as a dict of PEM
strings: ca, caKey, caNotAfter, previous, bundle (the CAs to trust: this one
and, after a rotation, the one it replaced, until the next rotation), crt,
key, notAfter, sans (a hash of the names), leafCA (a hash of the CA that
signed crt).

Computed once per render and kept in the root context. Reused from the
Secrets of an installed release (lookup) unless due: the CA within
tls.renewBefore of its expiry, the certificate within tls.renewBefore of
its own, for other names, or signed by another CA. Expiry times are kept in
the penny.dev/not-after annotation of each Secret (Helm cannot parse a
certificate). `helm template` has no cluster and makes new ones every time.
*/}}
{{- define "penny.tls.generate" -}}
{{- if not (hasKey $ "pennyTLS") }}
{{- $out := dict }}
{{- $ns := .Release.Namespace }}
{{- $caSecret := lookup "v1" "Secret" $ns (include "penny.tls.caSecretName" .) }}
{{- $caData := dict }}
{{- if $caSecret }}{{ $caData = default dict $caSecret.data }}{{ end }}
{{- $ca := dict }}
{{- $previous := "" }}
{{- $rotated := false }}
{{- if and (index $caData "ca.crt") (index $caData "ca.key") (not (include "penny.tls.due" (dict "ctx" . "secret" $caSecret))) }}
{{- $ca = buildCustomCert (index $caData "ca.crt") (index $caData "ca.key") }}
{{- $_ := set $out "caNotAfter" (index $caSecret.metadata.annotations "penny.dev/not-after") }}
{{- $previous = index $caData "previous.crt" | default "" | b64dec }}
{{- else }}
{{- $ca = genCA (printf "%s-ca" (include "penny.fullname" .)) (int .Values.tls.caValidityDays) }}
{{- $_ := set $out "caNotAfter" (include "penny.tls.notAfter" (dict "days" .Values.tls.caValidityDays)) }}
{{- /* The CA it replaces stays trusted until the next rotation. */}}
{{- if index $caData "ca.crt" }}{{ $previous = index $caData "ca.crt" | b64dec }}{{ $rotated = true }}{{ end }}
{{- end }}
{{- $_ := set $out "ca" $ca.Cert }}
{{- $_ := set $out "caKey" $ca.Key }}
{{- $_ := set $out "previous" $previous }}
{{- $_ := set $out "bundle" (printf "%s%s" $ca.Cert $previous) }}
{{- $names := include "penny.tls.dnsNames" . | fromJsonArray }}
{{- $ips := include "penny.tls.ipAddresses" . | fromJsonArray }}
{{- /* Names only while no address is added: certificates made before the addresses could be keep their hash. */}}
{{- $sans := toJson $names | sha256sum }}
{{- if .Values.tls.extraIPAddresses }}{{ $sans = toJson (concat $names $ips) | sha256sum }}{{ end }}
{{- $old := lookup "v1" "Secret" $ns (include "penny.tls.secretName" .) }}
{{- $data := dict }}
{{- $ann := dict }}
{{- if $old }}{{ $data = default dict $old.data }}{{ $ann = default dict $old.metadata.annotations }}{{ end }}
{{- $reuse := and (index $data "tls.crt") (index $data "tls.key") (not (include "penny.tls.due" (dict "ctx" . "secret" $old))) }}
{{- $reuse = and $reuse (eq (index $ann "penny.dev/sans" | default "") $sans) (eq (index $ann "penny.dev/ca" | default "") ($ca.Cert | sha256sum)) }}
{{- $leafCA := $ca.Cert | sha256sum }}
{{- /*
A new CA: the replicas that still run read the old bundle only (CA files
are read at start), so this upgrade keeps a certificate of the old CA that
has not expired and only spreads the new bundle; the next upgrade signs one
with the new CA, which every replica then trusts.
*/}}
{{- $keep := and $rotated (index $data "tls.crt") (index $data "tls.key") (eq (index $ann "penny.dev/sans" | default "") $sans) (eq (index $ann "penny.dev/ca" | default "") ($previous | sha256sum)) (not (include "penny.tls.due" (dict "ctx" . "secret" $old "before" "0s"))) }}
{{- if or $reuse $keep }}
{{- $_ := set $out "crt" (index $data "tls.crt" | b64dec) }}
{{- $_ := set $out "key" (index $data "tls.key" | b64dec) }}
{{- $_ := set $out "notAfter" (index $ann "penny.dev/not-after") }}
{{- if $keep }}{{ $leafCA = index $ann "penny.dev/ca" }}{{ end }}
{{- else }}
{{- $cert := genSignedCert (include "penny.aggregator.fullname" .) $ips $names (int .Values.tls.validityDays) $ca }}
{{- $_ := set $out "crt" $cert.Cert }}
{{- $_ := set $out "key" $cert.Key }}
{{- $_ := set $out "notAfter" (include "penny.tls.notAfter" (dict "days" .Values.tls.validityDays)) }}
{{- end }}
{{- $_ := set $out "sans" $sans }}
{{- $_ := set $out "leafCA" $leafCA }}
{{- $_ := set $ "pennyTLS" $out }}
{{- end }}
{{- toJson (get $ "pennyTLS") }}
{{- end }}

{{/* The CA bundle (PEM) the agents and replicas trust, whoever made the certificate. */}}
{{- define "penny.tls.caBundle" -}}
{{- if include "penny.tls.generated" . }}
{{- (include "penny.tls.generate" . | fromJson).bundle }}
{{- else }}
{{- $ca := .Values.tls.caBundle }}
{{- if and $ca (not (hasPrefix "-----BEGIN" $ca)) }}{{ $ca = b64dec $ca }}{{ end }}
{{- $ca }}
{{- end }}
{{- end }}

{{/* Names, labels and small pieces shared by the templates. */}}

{{- define "reef-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the release name if it holds the chart name, else both. */}}
{{- define "reef-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "reef-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reef-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "reef-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "reef-operator.labels" -}}
helm.sh/chart: {{ include "reef-operator.chart" . }}
{{ include "reef-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: reef-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "reef-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "reef-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "reef-operator.configMapName" -}}
{{- printf "%s-config" (include "reef-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reef-operator.peeringName" -}}
{{- default (include "reef-operator.fullname" .) .Values.operator.peeringName }}
{{- end }}

{{- define "reef-operator.webhookServiceName" -}}
{{- printf "%s-webhook" (include "reef-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "reef-operator.webhookSecretName" -}}
{{- default (printf "%s-webhook-tls" (include "reef-operator.fullname" .)) .Values.webhook.certificate.secretName }}
{{- end }}

{{/* The name the apiserver calls, which the serving certificate must carry. */}}
{{- define "reef-operator.webhookHost" -}}
{{- printf "%s.%s.svc" (include "reef-operator.webhookServiceName" .) .Release.Namespace }}
{{- end }}

{{/* A webhook's clientConfig; context: (dict "root" $ "caBundle" <b64 or ""> "path" "/id"). */}}
{{- define "reef-operator.webhookClientConfig" -}}
service:
  name: {{ include "reef-operator.webhookServiceName" .root }}
  namespace: {{ .root.Release.Namespace }}
  path: {{ .path }}
  port: 443
{{- with .caBundle }}
caBundle: {{ . }}
{{- end }}
{{- end }}

{{- define "reef-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The ConfigMap's data: only the keys the operator knows, never the API key. */}}
{{- define "reef-operator.configData" -}}
{{- $known := splitList " " (include "reef-operator.generated.configKeys" .) }}
{{- $secret := splitList " " (include "reef-operator.generated.secretKeys" .) }}
{{- range $key, $value := .Values.config }}
{{- if has $key $secret }}
{{- fail (printf "config.%s: the API key belongs in a Secret; set versCredentials.apiKey or create the Secret versCredentials.secretName" $key) }}
{{- end }}
{{- if not (has $key $known) }}
{{- fail (printf "config.%s: not a setting of the operator; known: %s" $key (join ", " $known)) }}
{{- end }}
{{- if not (kindIs "invalid" $value) }}
{{- if ne (toString $value) "" }}
{{ $key }}: {{ toString $value | quote }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

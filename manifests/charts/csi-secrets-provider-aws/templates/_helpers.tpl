{{/*
Names and labels, as ASCP's chart computes them (names truncated to 63 characters: DNS label limit).
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "provider.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name: fullnameOverride, else the release name when it already contains the
chart name, else "<release>-<name>".
*/}}
{{- define "provider.fullname" -}}
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

{{/* Chart name and version for the helm.sh/chart label. */}}
{{- define "provider.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "provider.labels" -}}
helm.sh/chart: {{ include "provider.chart" . }}
{{ include "provider.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app: {{ include "provider.name" . }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels. */}}
{{- define "provider.selectorLabels" -}}
app.kubernetes.io/name: {{ include "provider.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The ServiceAccount's name: rbac.serviceAccountName, else the full name. */}}
{{- define "provider.serviceAccountName" -}}
{{- default (include "provider.fullname" .) .Values.rbac.serviceAccountName }}
{{- end }}

{{/* The image: repository:tag, the tag defaulting to the chart's appVersion. */}}
{{- define "provider.image" -}}
{{- $repo := required "image.repository is required" .Values.image.repository }}
{{- printf "%s:%s" $repo (toString (default .Chart.AppVersion .Values.image.tag)) }}
{{- end }}

{{/*
Refuse a socket directory the driver does not search (the classic "provider not found" on a first
install): when the chart installs the driver, providerVolume must be its linux.providersDir or one
of its linux.additionalProvidersDirs.
*/}}
{{- define "provider.checkProvidersDir" -}}
{{- $driver := index .Values "secrets-store-csi-driver" }}
{{- if and $driver $driver.install $driver.linux }}
{{- $dirs := default (list) $driver.linux.additionalProvidersDirs }}
{{- if and $driver.linux.providersDir (ne $driver.linux.providersDir .Values.providerVolume) (not (has .Values.providerVolume $dirs)) }}
{{- fail (printf "providerVolume %q is not a directory the driver searches (secrets-store-csi-driver.linux.providersDir is %q): set both to the same path" .Values.providerVolume $driver.linux.providersDir) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
"true" when /metrics listens on the pod IP (metrics.expose, or a ServiceMonitor that must reach it);
otherwise it listens on 127.0.0.1 only, inside the pod.
*/}}
{{- define "provider.metricsExposed" -}}
{{- if and .Values.metrics .Values.metrics.enabled (or .Values.metrics.expose (and .Values.metrics.serviceMonitor .Values.metrics.serviceMonitor.enabled)) }}true{{ end }}
{{- end }}

{{/* The chart name, or nameOverride. */}}
{{- define "strata.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's resource name: fullnameOverride, else RELEASE-strata (or RELEASE if it already contains the chart name). */}}
{{- define "strata.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "strata.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "strata.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Labels the Service and the ServiceMonitor select the pod / Service by. */}}
{{- define "strata.selectorLabels" -}}
app.kubernetes.io/name: {{ include "strata.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The Secret mounted at /etc/strata/secrets. */}}
{{- define "strata.secretName" -}}
{{- default (include "strata.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{/*
Refuses values the controller cannot run with in this chart: more than one replica (the
state is file-backed), a config.listen the probes and the Service cannot reach, and a
config.stateDir other than where the state volume is mounted. Renders nothing.
*/}}
{{- define "strata.checkValues" -}}
{{- if gt (int .Values.replicaCount) 1 -}}
{{- fail "replicaCount must be 0 or 1: the controller's state is file-backed on one ReadWriteOnce volume and two controllers would corrupt it" -}}
{{- end -}}
{{- $listen := toString (required "config.listen is required, e.g. 0.0.0.0:8080 (the controller's own default, 127.0.0.1:8080, is unreachable from the Service)" .Values.config.listen) -}}
{{- if regexMatch "^(127\\.|localhost:|\\[::1\\]:)" $listen -}}
{{- fail (printf "config.listen %q is a loopback address: the probes and the Service cannot reach it; use 0.0.0.0:%v" $listen .Values.service.port) -}}
{{- end -}}
{{- if ne (regexFind "[0-9]+$" $listen) (toString .Values.service.port) -}}
{{- fail (printf "config.listen %q must use service.port (%v): the probes and the Service reach the controller on that port" $listen .Values.service.port) -}}
{{- end -}}
{{- with .Values.config.stateDir -}}
{{- if ne (toString .) "/var/lib/strata-controller" -}}
{{- fail "config.stateDir must be /var/lib/strata-controller (or unset), where the chart mounts the state volume" -}}
{{- end -}}
{{- end -}}
{{- end -}}

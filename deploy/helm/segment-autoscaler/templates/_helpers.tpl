{{/* The objects' name: the release's, prefixed to the chart's name unless it holds it. */}}
{{- define "segment-autoscaler.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "segment-autoscaler.serviceAccountName" -}}
{{- default (include "segment-autoscaler.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "segment-autoscaler.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "segment-autoscaler.labels" -}}
{{ include "segment-autoscaler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The namespaces whose SegmentScalers are watched: none listed means the release's. */}}
{{- define "segment-autoscaler.watchedNamespaces" -}}
{{- .Values.segmentScalers.namespaces | default (list .Release.Namespace) | toJson -}}
{{- end -}}

{{/* The configuration file: `config`, with the listener, leader election and the watch. */}}
{{- define "segment-autoscaler.config" -}}
{{- $config := deepCopy .Values.config -}}
{{- $_ := set $config "telemetry" (dict "listen" (printf "0.0.0.0:%v" .Values.service.port)) -}}
{{- if .Values.leaderElection.enabled -}}
{{- $_ := set $config "leader_election" (dict "namespace" .Release.Namespace "lease_name" .Values.leaderElection.leaseName "lease_duration" .Values.leaderElection.leaseDuration) -}}
{{- end -}}
{{- $watch := dict "namespaces" (ternary (list) (include "segment-autoscaler.watchedNamespaces" . | fromJsonArray) .Values.rbac.clusterWide) -}}
{{- with .Values.segmentScalers.flink -}}
{{- $_ := set $watch "flink" . -}}
{{- end -}}
{{- $_ := set $config "segment_scalers" $watch -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The rules of each watched namespace (or of the cluster). */}}
{{- define "segment-autoscaler.targetRules" -}}
# SegmentScalers: watched, and their status written (server-side apply).
- apiGroups: [segment-autoscaler.io]
  resources: [segmentscalers]
  verbs: [get, list, watch]
- apiGroups: [segment-autoscaler.io]
  resources: [segmentscalers/status]
  verbs: [patch]
{{- range .Values.rbac.scaleTargets }}
# The scale subresource of {{ .resource }}{{ with .resourceNames }} {{ join ", " . }}{{ end }}.
- apiGroups: [{{ .apiGroup | quote }}]
  resources: [{{ printf "%s/scale" .resource }}]
  {{- with .resourceNames }}
  resourceNames: {{ toJson . }}
  {{- end }}
  verbs: [get, patch, update]
{{- end }}
{{- end -}}

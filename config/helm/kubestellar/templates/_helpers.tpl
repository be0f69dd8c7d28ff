{{/* The objects' name: <release>-controllers unless fullnameOverride says otherwise. */}}
{{- define "kubestellar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-controllers" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kubestellar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "kubestellar.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The labels of every object (those of config/deploy/base plus Helm's). */}}
{{- define "kubestellar.labels" -}}
app.kubernetes.io/name: kubestellar-py
app.kubernetes.io/part-of: kubestellar
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* What selects the controllers' pods. */}}
{{- define "kubestellar.selectorLabels" -}}
app.kubernetes.io/name: kubestellar-py
app.kubernetes.io/component: controllers
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kubestellar.prometheusAnnotations" -}}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: /metrics
{{- end -}}

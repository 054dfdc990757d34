{{/* Labels of every object the chart installs. */}}
{{- define "astroflow.labels" -}}
app.kubernetes.io/name: astroflow
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/* Site defaults of the compiled templates' parameters (astroflow.argo.PARAMETERS). */}}
{{- define "astroflow.parameterDefaults" -}}
registry: {{ .Values.image.registry | quote }}
tag: {{ .Values.image.tag | toString | quote }}
run-claim: {{ .Values.storage.run.claimName | quote }}
data-claim: {{ .Values.storage.rawData.claimName | quote }}
{{- end }}

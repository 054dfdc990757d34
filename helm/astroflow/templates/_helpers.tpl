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
db-secret: {{ .Values.calibrations.dbSecret.name | quote }}
db-secret-key: {{ .Values.calibrations.dbSecret.key | quote }}
timezone: {{ .Values.site.timezone | quote }}
restart-hour: {{ .Values.site.restartHour | toString | quote }}
{{- end }}

{{/* The Argo mutex of a run folder (astroflow.argo.run_mutex): the workflows of one run queue on it. */}}
{{- define "astroflow.runMutex" -}}
astroflow-run-{{ . }}
{{- end }}

{{/* The account Sensors submit workflows as. */}}
{{- define "astroflow.sensorAccount" -}}
{{ .Values.serviceAccount.name }}-sensor
{{- end }}

{{/* Pod and container security of the Argo Events pods: as the workflow pods' (astroflow.argo.UID). */}}
{{- define "astroflow.podSecurity" -}}
runAsNonRoot: true
runAsUser: 1000
runAsGroup: 1000
seccompProfile:
  type: RuntimeDefault
{{- end }}
{{- define "astroflow.containerSecurity" -}}
runAsNonRoot: true
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
{{- end }}

{{/*
The last observing night that has ended, as a Sensor's go template (sprig; evaluated when the
event fires): astroflow.arrivals.last_night(now, timezone, restartHour), in text.  The local date
is parsed back as a UTC midnight, so stepping back whole days never meets a DST change.
*/}}
{{- define "astroflow.lastNightTemplate" -}}
{{- $tz := toJson .timezone -}}
{{- $day := printf "(toDate \"2006-01-02 MST\" (printf \"%%s UTC\" (dateInZone \"2006-01-02\" now %s)))" $tz -}}
{{- printf "{{ if ge (atoi (dateInZone \"15\" now %s)) %d }}{{ dateInZone \"20060102\" (%s | dateModify \"-24h\") \"UTC\" }}{{ else }}{{ dateInZone \"20060102\" (%s | dateModify \"-48h\") \"UTC\" }}{{ end }}" $tz (int .restartHour) $day $day -}}
{{- end }}

{{/* Whether any `events` entry is for an installed pipeline ("true" or ""). */}}
{{- define "astroflow.hasEvents" -}}
{{- range .Values.events }}{{ if has .pipeline $.Values.pipelines }}true{{ end }}{{ end }}
{{- end }}

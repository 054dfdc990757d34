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

{{/* tonight for a Sensor: the calendar date now in the time zone (astroflow.arrivals.tonight). */}}
{{- define "astroflow.tonightTemplate" -}}
{{- printf "{{ dateInZone \"20060102\" now %s }}" (toJson .timezone) -}}
{{- end }}

{{/* Whether any `events` entry is for an installed pipeline ("true" or ""). */}}
{{- define "astroflow.hasEvents" -}}
{{- range .Values.events }}{{ if has .pipeline $.Values.pipelines }}true{{ end }}{{ end }}
{{- end }}

{{/*
A memory quantity (4Gi, 500M) in MiB, as a float: astroflow.argo.mebibytes, with the same exact
binary factors, so that both compute the same attempts.
*/}}
{{- define "astroflow.mebibytes" -}}
{{- $q := toString . -}}
{{- $number := regexFind "^[0-9]+(\\.[0-9]+)?" $q -}}
{{- $unit := trimPrefix $number $q -}}
{{- $mib := dict "" 9.5367431640625e-07 "Ki" 0.0009765625 "Mi" 1.0 "Gi" 1024.0 "Ti" 1048576.0 "Pi" 1073741824.0 "k" 0.00095367431640625 "M" 0.95367431640625 "G" 953.67431640625 "T" 953674.31640625 "P" 953674316.40625 -}}
{{- if or (not $number) (not (hasKey $mib $unit)) }}{{ fail (printf "memory %q is not a Kubernetes quantity (such as 512Mi or 4Gi)" $q) }}{{ end -}}
{{- mulf (float64 $number) (get $mib $unit) -}}
{{- end }}

{{/*
The podSpecPatch giving a step's main container the memory of its attempt (astroflow.argo.memory_patch):
the first attempt as declared, each retry `factor` times the one before, the limit capped at `cap`
and the request at the limit, in MiB rounded up, picked by Argo's {{retries}}.
Argument: dict where (steps.<pipeline>.<step>, for errors), request, limit, factor, cap (MiB, float), retries.
*/}}
{{- define "astroflow.memoryPatch" -}}
{{- $req := include "astroflow.mebibytes" .request | float64 -}}
{{- $lim := include "astroflow.mebibytes" .limit | float64 -}}
{{- $factor := float64 .factor -}}
{{- if gt $req $lim }}{{ fail (printf "%s: memory request %s is above the limit %s" .where .request .limit) }}{{ end -}}
{{- if lt .cap $lim }}{{ fail (printf "%s: the most memory a retry may have (%gMi, oomRetry.maxMemory) is below the memory limit %s" .where .cap .limit) }}{{ end -}}
{{- $requests := list (printf "'%s'" .request) -}}
{{- $limits := list (printf "'%s'" .limit) -}}
{{- range until (int .retries) -}}
{{- $req = mulf $req $factor -}}
{{- $lim = mulf $lim $factor -}}
{{- $capped := minf $lim $.cap -}}
{{- $requests = append $requests (printf "'%dMi'" (ceil (minf $req $capped) | int64)) -}}
{{- $limits = append $limits (printf "'%dMi'" (ceil $capped | int64)) -}}
{{- end -}}
{{- $pick := printf "][sprig.min(asInt(retries), %d)]}}" (int .retries) -}}
{{- printf "{\"containers\":[{\"name\":\"main\",\"resources\":{\"requests\":{\"memory\":\"{{=[%s%s\"},\"limits\":{\"memory\":\"{{=[%s%s\"}}}]}" (join "," $requests) $pick (join "," $limits) $pick -}}
{{- end }}

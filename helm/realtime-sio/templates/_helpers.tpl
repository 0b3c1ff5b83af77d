{{/* Names, labels and checks shared by every template of the realtime-sio chart. */}}

{{- define "realtime-sio.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "realtime-sio.fullname" -}}
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

{{- define "realtime-sio.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "realtime-sio.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "realtime-sio.selectorLabels" -}}
app.kubernetes.io/name: {{ include "realtime-sio.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{- define "realtime-sio.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "realtime-sio.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Name of the Secret the pods read: the operator's existing one, or the chart's. */}}
{{- define "realtime-sio.secretName" -}}
{{- default (include "realtime-sio.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/* True ("true") when the chart creates its own Secret with at least one key. */}}
{{- define "realtime-sio.createSecret" -}}
{{- if and (not .Values.secrets.existingSecret) (or .Values.secrets.jwtSecret .Values.secrets.apiKey .Values.secrets.dashboardToken .Values.secrets.pusherApps .Values.redis.external.url) -}}
true
{{- end }}
{{- end }}

{{/* Path of the channel-rules file inside the container. */}}
{{- define "realtime-sio.rulesPath" -}}
/etc/realtime-sio/channels.toml
{{- end }}

{{/* Where the tls.servedSecretName Secret is mounted: its own directory, not under the read-only /etc/realtime-sio
mount of the channel rules (a mount point inside a read-only volume cannot be created). */}}
{{- define "realtime-sio.tlsDir" -}}
/etc/realtime-sio-tls
{{- end }}

{{/* Name of the server's port: "https" when it serves TLS itself, so meshes and readers do not take it for HTTP. */}}
{{- define "realtime-sio.portName" -}}
{{- if .Values.tls.servedSecretName }}https{{ else }}http{{ end }}
{{- end }}

{{- define "realtime-sio.hasRules" -}}
{{- if or .Values.channelRulesConfigMap .Values.channelRules -}}
true
{{- end }}
{{- end }}

{{/* terminationGracePeriodSeconds: explicit, or preStop sleep + shutdown timeout + 5 s of slack. */}}
{{- define "realtime-sio.gracePeriod" -}}
{{- $d := .Values.drain }}
{{- $needed := add (int $d.preStopSleepSeconds) (int (ceil $d.shutdownTimeoutSeconds)) }}
{{- if $d.terminationGracePeriodSeconds }}
{{- if lt (int $d.terminationGracePeriodSeconds) (int $needed) }}
{{- fail (printf "drain.terminationGracePeriodSeconds=%v is shorter than preStopSleepSeconds + shutdownTimeoutSeconds = %v: Kubernetes would kill pods mid-drain" $d.terminationGracePeriodSeconds $needed) }}
{{- end }}
{{- int $d.terminationGracePeriodSeconds }}
{{- else }}
{{- add $needed 5 }}
{{- end }}
{{- end }}

{{/* Render-time checks of values that would otherwise fail only in the cluster. */}}
{{- define "realtime-sio.validate" -}}
{{- $d := .Values.drain }}
{{- if not (lt (float64 $d.drainSeconds) (float64 $d.shutdownTimeoutSeconds)) }}
{{- fail (printf "drain.drainSeconds=%v must be less than drain.shutdownTimeoutSeconds=%v" $d.drainSeconds $d.shutdownTimeoutSeconds) }}
{{- end }}
{{- $w := int .Values.migration.weight }}
{{- if or (lt $w 0) (gt $w 100) }}
{{- fail (printf "migration.weight=%v: expected an integer from 0 to 100" .Values.migration.weight) }}
{{- end }}
{{- if and .Values.migration.enabled (not .Values.ingress.enabled) }}
{{- fail "migration.enabled needs ingress.enabled: the canary Ingress shares ingress.host and ingress.paths" }}
{{- end }}
{{- if and .Values.tls.servedSecretName .Values.migration.enabled }}
{{- fail "tls.servedSecretName cannot be combined with migration.enabled: the realtime_sio canary Ingress inherits the main Ingress's backend protocol, which is Reverb's plain HTTP" }}
{{- end }}
{{- $managed := list "HOST" "PORT" "DRAIN_SECONDS" "SHUTDOWN_TIMEOUT" "CONFIG_FILE" "REDIS_URL" "JWT_SECRET" "API_KEY" "DASHBOARD_TOKEN" "PUSHER_APPS" "TLS_CERT_FILE" "TLS_KEY_FILE" }}
{{- range $key, $_ := .Values.settings }}
{{- if hasPrefix "REALTIME_SIO_" $key }}
{{- fail (printf "settings.%s: leave off the REALTIME_SIO_ prefix" $key) }}
{{- end }}
{{- if has $key $managed }}
{{- fail (printf "settings.%s is set by the chart (see service, drain, channelRules, redis and secrets in values.yaml)" $key) }}
{{- end }}
{{- end }}
{{- if and .Values.networkPolicy.server.enabled (not .Values.networkPolicy.server.from) }}
{{- fail "networkPolicy.server.enabled needs networkPolicy.server.from: at least the ingress controller's pods (Kubernetes reads an empty list as 'every source', which would defeat the policy)" }}
{{- end }}
{{- if and .Values.redis.internal.enabled .Values.redis.external.url }}
{{- fail "redis.internal.enabled and redis.external.url are exclusive: choose one Redis" }}
{{- end }}
{{- end }}

{{/* ingress-nginx annotations every realtime Ingress needs: long timeouts for sockets, cookie affinity for polling. */}}
{{- define "realtime-sio.ingressAnnotations" -}}
nginx.ingress.kubernetes.io/proxy-read-timeout: {{ .Values.ingress.proxyTimeoutSeconds | quote }}
nginx.ingress.kubernetes.io/proxy-send-timeout: {{ .Values.ingress.proxyTimeoutSeconds | quote }}
nginx.ingress.kubernetes.io/proxy-buffering: "off"
nginx.ingress.kubernetes.io/affinity: cookie
nginx.ingress.kubernetes.io/affinity-mode: persistent
nginx.ingress.kubernetes.io/session-cookie-name: {{ .Values.ingress.affinityCookieName | quote }}
{{- with .Values.ingress.affinityCookieMaxAge }}
nginx.ingress.kubernetes.io/session-cookie-max-age: {{ . | quote }}
{{- end }}
{{- if .Values.tls.servedSecretName }}
nginx.ingress.kubernetes.io/backend-protocol: "HTTPS"
{{- end }}
{{- if .Values.ingress.tls.enabled }}
nginx.ingress.kubernetes.io/session-cookie-secure: "true"
nginx.ingress.kubernetes.io/session-cookie-samesite: "None"
nginx.ingress.kubernetes.io/session-cookie-conditional-samesite-none: "true"
{{- else }}
nginx.ingress.kubernetes.io/session-cookie-samesite: "Lax"
{{- end }}
{{- end }}

{{/* Name and port of the Service behind Reverb during the migration. */}}
{{- define "realtime-sio.reverbService" -}}
{{- if .Values.migration.reverb.externalName -}}
{{ include "realtime-sio.fullname" . }}-reverb
{{- else -}}
{{ required "migration.reverb.serviceName is required while migration.enabled" .Values.migration.reverb.serviceName }}
{{- end }}
{{- end }}

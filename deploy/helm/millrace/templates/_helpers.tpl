{{/* The five services, in the order they are rendered. */}}
{{- define "millrace.serviceNames" -}}
gateway trigger orchestrator node-runner approval
{{- end -}}

{{- define "millrace.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "millrace.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "millrace.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "millrace.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "millrace.tag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: millrace
{{- end -}}

{{/* Selector labels of one service: (dict "root" $ "name" "gateway") */}}
{{- define "millrace.selectorLabels" -}}
app.kubernetes.io/name: {{ include "millrace.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* The image tag: given, or the chart's appVersion; never "latest" and never empty. */}}
{{- define "millrace.tag" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion | toString -}}
{{- if or (eq $tag "") (eq $tag "latest") -}}
{{- fail "image.tag must name a version (not empty, not \"latest\")" -}}
{{- end -}}
{{- $tag -}}
{{- end -}}

{{- define "millrace.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "millrace.tag" .) -}}
{{- end -}}

{{- define "millrace.secretName" -}}
{{- printf "%s-secrets" (include "millrace.fullname" .) -}}
{{- end -}}

{{/* The Secret and key holding the database URL. */}}
{{- define "millrace.databaseSecretRef" -}}
{{- if .Values.postgresql.existingSecret.name -}}
name: {{ .Values.postgresql.existingSecret.name }}
key: {{ .Values.postgresql.existingSecret.key }}
{{- else -}}
name: {{ include "millrace.secretName" . }}
key: database-url
{{- end -}}
{{- end -}}

{{- define "millrace.appSecretName" -}}
{{- .Values.secrets.existingSecret | default (include "millrace.secretName" .) -}}
{{- end -}}

{{/* "true" when the protocol authenticates with SASL, "" otherwise. */}}
{{- define "millrace.kafkaSasl" -}}
{{- if has .Values.kafka.securityProtocol (list "SASL_PLAINTEXT" "SASL_SSL") -}}true{{- end -}}
{{- end -}}

{{/* "true" when the protocol uses TLS, "" otherwise. */}}
{{- define "millrace.kafkaTls" -}}
{{- if has .Values.kafka.securityProtocol (list "SSL" "SASL_SSL") -}}true{{- end -}}
{{- end -}}

{{/* The environment every container gets: connections, security, namespace. */}}
{{- define "millrace.commonEnv" -}}
- name: MILLRACE_KAFKA_BOOTSTRAP
  value: {{ required "kafka.bootstrap is required" .Values.kafka.bootstrap | quote }}
- name: MILLRACE_KAFKA_SECURITY_PROTOCOL
  value: {{ .Values.kafka.securityProtocol | quote }}
{{- if include "millrace.kafkaSasl" . }}
- name: MILLRACE_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: MILLRACE_KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is required with SASL" .Values.kafka.sasl.username | quote }}
- name: MILLRACE_KAFKA_SASL_PASSWORD_FILE
  value: /etc/millrace/kafka/sasl/password
{{- end }}
{{- if include "millrace.kafkaTls" . }}
{{- if or .Values.kafka.tls.caSecret.name .Values.kafka.tls.caConfigMap.name }}
- name: MILLRACE_KAFKA_SSL_CA_FILE
  value: /etc/millrace/kafka/ca/ca.crt
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret.name }}
- name: MILLRACE_KAFKA_SSL_CERT_FILE
  value: /etc/millrace/kafka/client/tls.crt
- name: MILLRACE_KAFKA_SSL_KEY_FILE
  value: /etc/millrace/kafka/client/tls.key
{{- end }}
{{- end }}
- name: MILLRACE_KAFKA_REPLICATION_FACTOR
  value: {{ .Values.kafka.replicationFactor | toString | quote }}
- name: MILLRACE_KAFKA_MIN_INSYNC_REPLICAS
  value: {{ .Values.kafka.minInsyncReplicas | toString | quote }}
- name: MILLRACE_DATABASE_URL
  valueFrom:
    secretKeyRef:
      {{- include "millrace.databaseSecretRef" . | nindent 6 }}
{{- if .Values.postgresql.poolSize }}
- name: MILLRACE_DB_POOL_SIZE
  value: {{ .Values.postgresql.poolSize | toString | quote }}
{{- end }}
- name: MILLRACE_ENCRYPTION_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "millrace.appSecretName" . }}
      key: encryption-key
{{- with .Values.millraceNamespace }}
- name: MILLRACE_NAMESPACE
  value: {{ . | quote }}
{{- end }}
- name: MILLRACE_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- range $name, $value := .Values.settings }}
- name: {{ $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}

{{/* Volumes for the Kafka credentials and CA, and their mounts. */}}
{{- define "millrace.kafkaVolumes" -}}
{{- if include "millrace.kafkaSasl" . }}
- name: kafka-sasl
  secret:
    secretName: {{ .Values.kafka.sasl.passwordSecret.name | default (include "millrace.secretName" .) }}
    items:
      - key: {{ ternary .Values.kafka.sasl.passwordSecret.key "kafka-sasl-password" (ne .Values.kafka.sasl.passwordSecret.name "") }}
        path: password
{{- end }}
{{- if include "millrace.kafkaTls" . }}
{{- if .Values.kafka.tls.caSecret.name }}
- name: kafka-ca
  secret:
    secretName: {{ .Values.kafka.tls.caSecret.name }}
    items:
      - key: {{ .Values.kafka.tls.caSecret.key }}
        path: ca.crt
{{- else if .Values.kafka.tls.caConfigMap.name }}
- name: kafka-ca
  configMap:
    name: {{ .Values.kafka.tls.caConfigMap.name }}
    items:
      - key: {{ .Values.kafka.tls.caConfigMap.key }}
        path: ca.crt
{{- end }}
{{- with .Values.kafka.tls.clientCertSecret }}
{{- if .name }}
- name: kafka-client
  secret:
    secretName: {{ .name }}
    items:
      - key: {{ .certKey }}
        path: tls.crt
      - key: {{ .keyKey }}
        path: tls.key
{{- end }}
{{- end }}
{{- end }}
- name: tmp
  emptyDir: {}
{{- end -}}

{{- define "millrace.kafkaVolumeMounts" -}}
{{- if include "millrace.kafkaSasl" . }}
- name: kafka-sasl
  mountPath: /etc/millrace/kafka/sasl
  readOnly: true
{{- end }}
{{- if include "millrace.kafkaTls" . }}
{{- if or .Values.kafka.tls.caSecret.name .Values.kafka.tls.caConfigMap.name }}
- name: kafka-ca
  mountPath: /etc/millrace/kafka/ca
  readOnly: true
{{- end }}
{{- if .Values.kafka.tls.clientCertSecret.name }}
- name: kafka-client
  mountPath: /etc/millrace/kafka/client
  readOnly: true
{{- end }}
{{- end }}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{- define "millrace.podSecurity" -}}
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: false
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

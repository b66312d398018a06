variable "name" {
  description = "Service name (one of libs/events.Services): the Cloud Run service is named after it, its runtime service account is <name_prefix>-<name>."
  type        = string
}

# platform is what every service shares, passed as one object (the root's
# local.platform) rather than repeated in each module call:
#
#   name_prefix          Prefix of the runtime service account id (6-30 characters in total with the name).
#   project_id           Project the service runs in.
#   project_number       Number of the project: Cloud Run's deterministic URL is https://<name>-<project_number>.<region>.run.app.
#   region               Cloud Run region.
#   bucket               The run bucket.
#   database_name        PostgreSQL database name (DATABASE_URL is built here).
#   source_schema        SOURCE_SCHEMA: the schema the CMMS relations are read from (cmms: cmmsflow's own tables).
#   cloudsql_instance    Cloud SQL instance connection name (project:region:instance), served as a unix socket under /cloudsql.
#   proxy_image          The Cloud SQL Auth Proxy (v2) sidecar, which logs in as the service account (--auto-iam-authn).
#   push_service_account Email of the Pub/Sub push identity: the service is told to accept push requests only with an OIDC token from it for its own URL (audience). Empty: push authentication off.
#   log_level            LOG_LEVEL: debug, info, warn or error.
#   prometheus_sidecar_image The Managed Service for Prometheus sidecar, which writes /metrics to Cloud Monitoring (roles/monitoring.metricWriter). Empty: none.
#   labels               Labels on the Cloud Run service.
variable "platform" {
  description = "Settings every service shares: name_prefix, project_id, project_number, region, bucket, database_name, source_schema, cloudsql_instance, proxy_image, push_service_account (empty: push authentication off), log_level, prometheus_sidecar_image (empty: none), labels (see the comment above)."
  type = object({
    name_prefix              = string
    project_id               = string
    project_number           = string
    region                   = string
    bucket                   = string
    database_name            = string
    source_schema            = string
    cloudsql_instance        = string
    proxy_image              = string
    push_service_account     = string
    log_level                = string
    prometheus_sidecar_image = string
    labels                   = map(string)
  })
}

variable "image" {
  description = "Container image (Artifact Registry URI with tag or digest), built by deploy/cloudbuild.yaml from deploy/Dockerfile."
  type        = string
}

variable "env" {
  description = "Plain environment variables (name => value), in addition to the ones every service gets (GOOGLE_CLOUD_PROJECT, BUCKET, DATABASE_URL, HANDLER_TIMEOUT, LOG_FORMAT, LOG_LEVEL)."
  type        = map(string)
  default     = {}
}

variable "secret_env" {
  description = "Environment variables read from Secret Manager (name => secret id); the runtime account gets secretAccessor on exactly these secrets. The latest version is mounted."
  type        = map(string)
  default     = {}
}

variable "publish_topics" {
  description = "Topic ids the service publishes to (the event types it emits through its outbox); it gets roles/pubsub.publisher on exactly these."
  type        = list(string)
  default     = []
}

variable "bucket_prefixes" {
  description = "Object prefixes in the run bucket the service uses (prefix => role, roles/storage.objectViewer to read or roles/storage.objectUser to read and write), granted with an IAM condition on the object name."
  type        = map(string)
  default     = {}
}

variable "project_roles" {
  description = "Project roles the service needs for a managed API (e.g. roles/dataproc.editor for featurejob's Dataproc engine)."
  type        = list(string)
  default     = []
}

variable "act_as" {
  description = "Service account emails the service may act as (roles/iam.serviceAccountUser), e.g. the Dataproc or Vertex AI runtime accounts it hands to those services."
  type        = list(string)
  default     = []
}

variable "invoker_members" {
  description = "Members allowed to invoke the service (roles/run.invoker): the Pub/Sub push identity for consumers; for control also the IAP service agent and its machine callers (allUsers only with control_public)."
  type        = list(string)
  default     = []
}

variable "ingress" {
  description = "Cloud Run ingress: INGRESS_TRAFFIC_INTERNAL_ONLY is enough for Pub/Sub push in the same project; control uses INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER behind its HTTPS load balancer (INGRESS_TRAFFIC_ALL only with control_public)."
  type        = string
  default     = "INGRESS_TRAFFIC_INTERNAL_ONLY"
}

variable "timeout_seconds" {
  description = "Cloud Run request timeout; must exceed handler_timeout_seconds so the handler, not Cloud Run, ends a slow request."
  type        = number
}

variable "handler_timeout_seconds" {
  description = "HANDLER_TIMEOUT of the event handlers; at most the subscriptions' ack deadline so a push is not redelivered while it is still being handled."
  type        = number
}

variable "concurrency" {
  description = "Requests one instance handles at once (max_instance_request_concurrency)."
  type        = number
}

variable "max_instances" {
  description = "Upper bound on instances (min is always 0: scale to zero)."
  type        = number
  default     = 3
}

variable "cpu" {
  description = "CPU limit per instance."
  type        = string
  default     = "1"
}

variable "memory" {
  description = "Memory limit per instance."
  type        = string
  default     = "512Mi"
}

variable "deletion_protection" {
  description = "Refuse to destroy the Cloud Run service."
  type        = bool
  default     = false
}

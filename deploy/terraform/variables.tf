# ---- project ---------------------------------------------------------------

variable "project_id" {
  description = "The Google Cloud project cmmsflow runs in."
  type        = string
}

variable "region" {
  description = "Region of Cloud Run, Cloud Scheduler, Artifact Registry and the bucket (pick the Cloud SQL instance's region)."
  type        = string
  default     = "us-central1"
}

variable "name_prefix" {
  description = "Prefix of service account ids, secret ids and the Artifact Registry repository."
  type        = string
  default     = "cmmsflow"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{2,9}$", var.name_prefix))
    error_message = "name_prefix: 3-10 lower-case letters, digits or hyphens (service account ids are <prefix>-<service>, at most 30 characters)."
  }
}

variable "labels" {
  description = "Labels added to the Cloud Run services and the bucket."
  type        = map(string)
  default     = {}
}

# ---- images ----------------------------------------------------------------

variable "image_repository" {
  description = "Artifact Registry repository id (created here) that deploy/cloudbuild.yaml pushes to."
  type        = string
  default     = "cmmsflow"
}

variable "image_tag" {
  description = "Tag of the service images to deploy (the _TAG given to Cloud Build, e.g. the git commit). Changing it and applying is a deploy; setting the previous tag back is a rollback."
  type        = string
}

# ---- storage -----------------------------------------------------------------

variable "bucket_name" {
  description = "Name of the run bucket (globally unique): runs/<run_id>/ artefacts, models/, reports/, code/ (the PySpark script)."
  type        = string
}

variable "bucket_location" {
  description = "Bucket location; empty means the region."
  type        = string
  default     = ""
}

variable "run_artifact_retention_days" {
  description = "Objects under runs/ (raw extracts, features, per-run model copies) are deleted after this many days; models/ and reports/ are kept."
  type        = number
  default     = 90
}

variable "report_nearline_after_days" {
  description = "Reports under reports/ move to the Nearline storage class after this many days."
  type        = number
  default     = 60
}

# ---- database ----------------------------------------------------------------

variable "cloudsql_instance" {
  description = "Connection name (project:region:instance) of the existing Cloud SQL for PostgreSQL instance (the CMMS database). It must have the database flag cloudsql.iam_authentication=on (a precondition checks): every service logs in as its own IAM user through a Cloud SQL Auth Proxy sidecar; the migrate job connects through Cloud Run's Cloud SQL volume as database_user."
  type        = string

  validation {
    condition     = length(split(":", var.cloudsql_instance)) == 3
    error_message = "cloudsql_instance: want project:region:instance."
  }
}

variable "database_name" {
  description = "PostgreSQL database name."
  type        = string
  default     = "cmmsflow"
}

variable "database_user" {
  description = "The owner login: the PostgreSQL user that applies the migrations (the migrate job, migrate.tf) and owns the schema; no service connects as it. Its password goes into the <prefix>-db-password secret (never into Terraform)."
  type        = string
  default     = "cmmsflow"
}

# ---- CMMS source ----------------------------------------------------------------

variable "source_schema" {
  description = "SOURCE_SCHEMA of every service: the schema the CMMS relations (assets, work orders, maintenance plans, technicians, inventory items) are read from. cmms is cmmsflow's own tables; any other name is a mapped source, views over an operator's CMMS in the same database created by `cmmsflow source apply FILE` (cmms_mapped by default); each service's role needs SELECT on it (docs/database-roles.md)."
  type        = string
  default     = "cmms"

  validation {
    # libs/db.SearchPath accepts exactly these names.
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.source_schema)) && var.source_schema != "cmmsflow"
    error_message = "source_schema: a lower-case identifier (letters, digits, _; at most 63 characters) other than cmmsflow, which holds cmmsflow's automation tables."
  }
}

variable "cloudsql_proxy_image" {
  description = "The Cloud SQL Auth Proxy (v2) image run as a sidecar of every service; it serves the instance's unix socket under /cloudsql and logs in as the service's account, its Cloud SQL IAM user (--auto-iam-authn)."
  type        = string
  default     = "gcr.io/cloud-sql-connectors/cloud-sql-proxy:2.14.3"
}

# ---- scheduling ----------------------------------------------------------------

variable "scheduler_region" {
  description = "Cloud Scheduler location; empty means the region."
  type        = string
  default     = ""
}

variable "scheduler_paused" {
  description = "Create the Cloud Scheduler jobs paused (e.g. while the Composer environment still runs the DAGs during a migration)."
  type        = bool
  default     = false
}

# ---- control ----------------------------------------------------------------

variable "control_public" {
  description = "Expose control to the internet directly: ingress all and roles/run.invoker for allUsers, its own bearer tokens the only gate for the API, the admin page, /metrics and /openapi.json (deploy/README.md, Public control). Default false: control takes internal and load-balancer traffic only, behind the HTTPS load balancer (control.tf) with IAP for people and Google ID tokens for machines."
  type        = bool
  default     = false
}

variable "control_domain" {
  description = "With control private (control_public = false): the DNS name of the HTTPS load balancer in front of control (e.g. cmmsflow.acme.example), for its Google-managed certificate. Point an A record at the control_lb_address output."
  type        = string
  default     = ""
}

variable "control_iap_members" {
  description = "With control private: who may pass IAP to control (roles/iap.httpsResourceAccessor on its backend service), e.g. [\"group:fleet-ops@acme.example\", \"user:ana@acme.example\"]. The admin page then still asks for a control API token."
  type        = list(string)
  default     = []
}

variable "control_machine_callers" {
  description = "Service accounts that call control's API with their own Google ID token (email => role, admin or viewer): each gets roles/run.invoker on control and becomes an API_ID_TOKEN_ACCOUNTS entry; API_ID_TOKEN_AUDIENCE is control's run.app URL (the control_id_token_audience output). Through the load balancer they send the token in X-Serverless-Authorization (and Authorization), which routes them past IAP to Cloud Run's own IAM check."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for e, r in var.control_machine_callers : can(regex("^[^@:,\\s]+@[^@:,\\s]+$", e)) && contains(["admin", "viewer"], r)])
    error_message = "control_machine_callers: service account email => admin or viewer."
  }
}

variable "trigger_rate_limit" {
  description = "TRIGGER_RATE_LIMIT: triggers per second per token."
  type        = number
  default     = 1
}

# ---- featurejob / Dataproc ---------------------------------------------------------

variable "feature_engine" {
  description = "FEATURE_ENGINE: local (in the featurejob container), dataproc, or auto (local up to feature_auto_max_work_orders work orders, dataproc above; docs/dataproc-crossover.md)."
  type        = string
  default     = "dataproc"

  validation {
    condition     = contains(["local", "dataproc", "auto"], var.feature_engine)
    error_message = "feature_engine: local, dataproc or auto."
  }
}

variable "feature_auto_max_work_orders" {
  description = "FEATURE_AUTO_MAX_WORK_ORDERS (feature_engine auto): the most work orders a run may have to be built in the container; null keeps the service's default (10,000,000, sized for the container's 2 GiB)."
  type        = number
  default     = null

  validation {
    condition     = coalesce(var.feature_auto_max_work_orders, 0) >= 0
    error_message = "feature_auto_max_work_orders: a number of work orders, at least 0."
  }
}

variable "dataproc" {
  description = "Dataproc settings (featurejob's DATAPROC_* variables): mode serverless or cluster, region, subnetwork (empty: default network; it needs Private Google Access), runtime/image versions and the ephemeral cluster's shape."
  type = object({
    mode                = optional(string, "serverless")
    region              = optional(string, "")
    subnetwork          = optional(string, "")
    runtime_version     = optional(string, "2.2")
    image_version       = optional(string, "2.2-debian12")
    master_machine_type = optional(string, "n2-standard-4")
    worker_machine_type = optional(string, "n2-standard-4")
    workers             = optional(number, 2)
    disk_size_gb        = optional(number, 100)
    wait                = optional(string, "8m")
    timeout             = optional(string, "75m")
  })
  default = {}
}

# ---- deployer / Vertex AI ----------------------------------------------------------

variable "deploy_engine" {
  description = "DEPLOY_ENGINE: local (the deployer scores in-process) or vertex (a Vertex AI endpoint serves the predictor image)."
  type        = string
  default     = "vertex"

  validation {
    condition     = contains(["local", "vertex"], var.deploy_engine)
    error_message = "deploy_engine: local or vertex."
  }
}

variable "vertex" {
  description = "Vertex AI settings (deployer's VERTEX_* variables): location (empty: the region), endpoint id (numeric, created here), serving machine type and replicas."
  type = object({
    location      = optional(string, "")
    endpoint_id   = optional(string, "1900")
    machine_type  = optional(string, "n1-standard-2")
    min_replicas  = optional(number, 1)
    max_replicas  = optional(number, 1)
    display_name  = optional(string, "cmmsflow-failure-risk")
    predict_batch = optional(number, 200)
  })
  default = {}
}

# ---- notifier / pmgen / reporter -----------------------------------------------------

variable "email_from" {
  description = "EMAIL_FROM: the SendGrid-verified sender."
  type        = string
}

variable "admin_emails" {
  description = "ADMIN_EMAILS: comma-separated recipients of success and failure emails."
  type        = string
}

variable "report_recipients" {
  description = "REPORT_RECIPIENTS: comma-separated recipients of the weekly KPI report; empty means admin_emails."
  type        = string
  default     = ""
}

variable "report_public_base_url" {
  description = "REPORT_PUBLIC_BASE_URL: base URL report links in emails point at (e.g. https://storage.cloud.google.com/<bucket>); empty: no links."
  type        = string
  default     = ""
}

variable "notify_webhooks" {
  description = "Create the <prefix>-notify-webhook-urls secret, mounted as notifier's NOTIFY_WEBHOOK_URLS (slack=…,teams=…,json=…; webhook URLs carry credentials)."
  type        = bool
  default     = false
}

variable "pagerduty" {
  description = "Create the <prefix>-pagerduty-routing-key secret, mounted as notifier's PAGERDUTY_ROUTING_KEY: alerts (failed runs, drift, alert rules with the pagerduty channel) then trigger and resolve PagerDuty incidents through the Events API v2."
  type        = bool
  default     = false
}

variable "pm_backend_url" {
  description = "PM_BACKEND_URL: create work orders through the existing CMMS backend instead of the database; its token goes into the <prefix>-pm-backend-token secret. Empty: pmgen writes to the database."
  type        = string
  default     = ""
}

variable "time_zone" {
  description = "PM_TIME_ZONE and REPORT_TIME_ZONE (IANA name). The cron time zone is scheduler/crontab.yaml's time_zone."
  type        = string
  default     = "UTC"
}

variable "log_level" {
  description = "LOG_LEVEL of every service."
  type        = string
  default     = "info"
}

# ---- monitoring ------------------------------------------------------------------

variable "alert_emails" {
  description = "Email addresses notified of every alert policy (monitoring.tf): one Cloud Monitoring email notification channel each. Empty: the policies still open incidents, shown in the console."
  type        = list(string)
  default     = []
}

variable "alert_outbox_max_age_seconds" {
  description = "Outbox backlog alert: fires when the oldest unpublished outbox row is older than this."
  type        = number
  default     = 600
}

variable "alert_server_errors_per_10m" {
  description = "5xx alert: fires when a service answers more 5xx than this in 10 minutes (0: any)."
  type        = number
  default     = 0
}

variable "managed_prometheus" {
  description = "Run Google's Managed Service for Prometheus sidecar in every service: it scrapes /metrics on port 8080 every 60 s and writes the samples to Cloud Monitoring, where the alert policies and the dashboard read them. false: no metric from /metrics reaches Cloud Monitoring (the 5xx alert, on Cloud Run's own request_count, still works)."
  type        = bool
  default     = true
}

variable "prometheus_sidecar_image" {
  description = "The Managed Service for Prometheus sidecar image for Cloud Run (run-gmp-sidecar)."
  type        = string
  default     = "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:1.2.0"
}

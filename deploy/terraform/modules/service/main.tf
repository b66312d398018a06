# One cmmsflow service: a Cloud Run v2 service scaled to zero, its own runtime
# service account, and IAM on exactly the topics, bucket prefixes, secrets,
# Cloud SQL instance and managed APIs it uses; its own Cloud SQL IAM database
# user and the Cloud SQL Auth Proxy sidecar that logs in as it; with
# managed_prometheus, the sidecar that writes its /metrics to Cloud Monitoring.

locals {
  # Cloud Run's deterministic URL, known before the service exists, so the
  # service can be told its own push audience without a dependency cycle.
  url = "https://${var.name}-${var.platform.project_number}.${var.platform.region}.run.app"

  # Every service's common configuration (libs/config.Common); PORT is set by
  # Cloud Run.
  env = merge({
    GOOGLE_CLOUD_PROJECT = var.platform.project_id
    BUCKET               = var.platform.bucket
    DATABASE_URL         = local.database_url
    SOURCE_SCHEMA        = var.platform.source_schema
    HANDLER_TIMEOUT      = "${var.handler_timeout_seconds}s"
    LOG_FORMAT           = "json"
    LOG_LEVEL            = var.platform.log_level
  }, local.push_auth_env, var.env)

  # Push authentication (the receiver verifies Google-signed OIDC tokens).
  push_auth_env = var.platform.push_service_account == "" ? {} : {
    PUSH_AUTH             = "on"
    PUSH_AUDIENCE         = local.url
    PUSH_SERVICE_ACCOUNTS = var.platform.push_service_account
  }

  secret_env = var.secret_env

  # The service's own database login: its runtime service account as a Cloud
  # SQL IAM user (the account's email without .gserviceaccount.com, known at
  # plan time unlike the email), a member of its group role cmmsflow_<name>
  # once `cmmsflow migrate --login` ran (the root's migrate job). The Auth
  # Proxy sidecar serves the instance's socket where Cloud Run's Cloud SQL
  # volume would and logs in as the account (--auto-iam-authn): DATABASE_URL
  # carries no password and there is no PGPASSWORD.
  iam_user     = "${var.platform.name_prefix}-${var.name}@${var.platform.project_id}.iam"
  database_url = "postgres://${replace(local.iam_user, "@", "%40")}@/${var.platform.database_name}?host=/cloudsql/${var.platform.cloudsql_instance}"

  # project:region:instance
  cloudsql_parts = split(":", var.platform.cloudsql_instance)
  member         = "serviceAccount:${google_service_account.this.email}"
}

resource "google_service_account" "this" {
  project      = var.platform.project_id
  account_id   = "${var.platform.name_prefix}-${var.name}"
  display_name = "cmmsflow ${var.name} (Cloud Run runtime)"
}

resource "google_cloud_run_v2_service" "this" {
  project             = var.platform.project_id
  name                = var.name
  location            = var.platform.region
  ingress             = var.ingress
  labels              = merge(var.platform.labels, { "cmmsflow-service" = var.name })
  deletion_protection = var.deletion_protection

  template {
    service_account                  = google_service_account.this.email
    timeout                          = "${var.timeout_seconds}s"
    max_instance_request_concurrency = var.concurrency

    scaling {
      min_instance_count = 0
      max_instance_count = var.max_instances
    }

    # /cloudsql: the directory the Auth Proxy sidecar puts the instance's
    # socket in.
    volumes {
      name = "cloudsql"
      empty_dir {
        medium     = "MEMORY"
        size_limit = "1Mi"
      }
    }

    containers {
      name       = var.name
      image      = var.image
      depends_on = ["cloud-sql-proxy"]

      ports {
        container_port = 8080
      }

      resources {
        limits = {
          cpu    = var.cpu
          memory = var.memory
        }
        cpu_idle          = true
        startup_cpu_boost = true
      }

      dynamic "env" {
        for_each = local.env
        content {
          name  = env.key
          value = env.value
        }
      }

      dynamic "env" {
        for_each = local.secret_env
        content {
          name = env.key
          value_source {
            secret_key_ref {
              secret  = env.value
              version = "latest"
            }
          }
        }
      }

      volume_mounts {
        name       = "cloudsql"
        mount_path = "/cloudsql"
      }

      startup_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds    = 2
        failure_threshold = 15
      }

      liveness_probe {
        http_get {
          path = "/healthz"
        }
        period_seconds = 30
      }
    }

    # The Cloud SQL Auth Proxy logs in as the runtime service account
    # (--auto-iam-authn) and serves /cloudsql/<connection name>/.s.PGSQL.5432,
    # the socket DATABASE_URL names; the service starts once the proxy is up.
    # (Cloud Run's own Cloud SQL volume has no automatic IAM authentication,
    # and pgx would need a fresh token as the password every hour.)
    dynamic "containers" {
      for_each = [var.platform.proxy_image]
      content {
        name  = "cloud-sql-proxy"
        image = containers.value
        args = [
          "--auto-iam-authn",
          "--unix-socket=/cloudsql",
          "--health-check",
          "--http-address=0.0.0.0",
          "--http-port=9090",
          "--structured-logs",
          "--exit-zero-on-sigterm",
          var.platform.cloudsql_instance,
        ]

        resources {
          limits = {
            cpu    = "1"
            memory = "256Mi"
          }
          cpu_idle = true
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }

        startup_probe {
          http_get {
            path = "/startup"
            port = 9090
          }
          period_seconds    = 1
          failure_threshold = 30
        }
      }
    }

    # Managed Service for Prometheus: Google's collector for Cloud Run scrapes
    # the service's /metrics on port 8080 every 60 s (its default
    # configuration), once 10 s after the instance starts and once as it
    # shuts down, and writes the samples to Cloud Monitoring as
    # prometheus.googleapis.com metrics, labelled with the service and
    # revision; the alert policies and the dashboard (monitoring.tf) query
    # them with PromQL.
    dynamic "containers" {
      for_each = var.platform.prometheus_sidecar_image == "" ? [] : [var.platform.prometheus_sidecar_image]
      content {
        name       = "prometheus"
        image      = containers.value
        depends_on = [var.name]

        resources {
          limits = {
            cpu    = "1"
            memory = "256Mi"
          }
          cpu_idle = true
        }
      }
    }
  }

  lifecycle {
    precondition {
      condition     = var.timeout_seconds > var.handler_timeout_seconds
      error_message = "timeout_seconds must exceed handler_timeout_seconds: the handler, not Cloud Run, must end a slow request."
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.secret,
    google_project_iam_member.metric_writer,
    google_project_iam_member.cloudsql,
    google_project_iam_member.cloudsql_login,
    google_sql_user.iam,
  ]
}

# Pub/Sub: publish to exactly the topics of the events it emits.
resource "google_pubsub_topic_iam_member" "publish" {
  for_each = toset(var.publish_topics)
  project  = var.platform.project_id
  topic    = each.value
  role     = "roles/pubsub.publisher"
  member   = local.member
}

# Cloud Storage: each prefix with its role, conditioned on the object name.
# Listing is checked on the bucket itself, so the condition also admits the
# bucket (object names only; reading an object still needs its prefix).
resource "google_storage_bucket_iam_member" "prefix" {
  for_each = var.bucket_prefixes
  bucket   = var.platform.bucket
  role     = each.value
  member   = local.member

  condition {
    title       = "${var.name} ${trimsuffix(each.key, "/")}"
    description = "cmmsflow ${var.name}: objects under ${each.key}"
    expression  = "resource.name == \"projects/_/buckets/${var.platform.bucket}\" || resource.name.startsWith(\"projects/_/buckets/${var.platform.bucket}/objects/${each.key}\")"
  }
}

# Secret Manager: exactly the secrets it mounts.
resource "google_secret_manager_secret_iam_member" "secret" {
  for_each  = toset(values(local.secret_env))
  project   = var.platform.project_id
  secret_id = each.value
  role      = "roles/secretmanager.secretAccessor"
  member    = local.member
}

# Cloud SQL: connect to the one instance.
resource "google_project_iam_member" "cloudsql" {
  project = var.platform.project_id
  role    = "roles/cloudsql.client"
  member  = local.member

  condition {
    title      = "${var.name} cloudsql"
    expression = "resource.name == \"projects/${local.cloudsql_parts[0]}/instances/${local.cloudsql_parts[2]}\""
  }
}

# Log in to the instance as the service account (what it may do there is its
# group role's grants, given by the migrations; docs/database-roles.md).
resource "google_project_iam_member" "cloudsql_login" {
  project = var.platform.project_id
  role    = "roles/cloudsql.instanceUser"
  member  = local.member

  condition {
    title      = "${var.name} cloudsql login"
    expression = "resource.name == \"projects/${local.cloudsql_parts[0]}/instances/${local.cloudsql_parts[2]}\""
  }
}

resource "google_sql_user" "iam" {
  project  = local.cloudsql_parts[0]
  instance = local.cloudsql_parts[2]
  # PostgreSQL IAM users of service accounts are the email without
  # .gserviceaccount.com: the user DATABASE_URL names.
  name = local.iam_user
  type = "CLOUD_IAM_SERVICE_ACCOUNT"

  depends_on = [google_service_account.this]
}

# Managed Service for Prometheus: the sidecar writes the service's metrics.
resource "google_project_iam_member" "metric_writer" {
  count   = var.platform.prometheus_sidecar_image == "" ? 0 : 1
  project = var.platform.project_id
  role    = "roles/monitoring.metricWriter"
  member  = local.member
}

# Managed APIs the service drives (Dataproc, Vertex AI).
resource "google_project_iam_member" "role" {
  for_each = toset(var.project_roles)
  project  = var.platform.project_id
  role     = each.value
  member   = local.member
}

# Runtime accounts the service hands to Dataproc or Vertex AI.
resource "google_service_account_iam_member" "act_as" {
  for_each           = toset(var.act_as)
  service_account_id = "projects/${var.platform.project_id}/serviceAccounts/${each.value}"
  role               = "roles/iam.serviceAccountUser"
  member             = local.member
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(var.invoker_members)
  project  = var.platform.project_id
  location = var.platform.region
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

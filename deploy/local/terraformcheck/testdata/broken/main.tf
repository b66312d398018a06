# A deliberately inconsistent configuration for TestCheckBrokenFixture.

variable "name_prefix" {
  type    = string
  default = "acme"
}

# Public by default, and the service sets no ingress (Cloud Run's default:
# all traffic).
variable "worker_public" {
  type    = bool
  default = true
}

locals {
  crontab = { time_zone = "UTC", pipelines = { p1 = { schedule = "0 7 * * *" } } }
}

module "worker" {
  source          = "./svc"
  name            = "worker"
  invoker_members = ["serviceAccount:push@p.iam.gserviceaccount.com"]
}

resource "google_service_account" "push" {
  account_id = "push"
}

resource "google_pubsub_topic" "jobs" {
  name = "jobs"
}

resource "google_pubsub_subscription" "jobs" {
  name                 = "jobs--worker"
  topic                = google_pubsub_topic.jobs.id
  ack_deadline_seconds = 600

  push_config {
    push_endpoint = "https://elsewhere.example/events"
    oidc_token {
      service_account_email = "push@p.iam.gserviceaccount.com"
      audience              = module.worker.url
    }
  }

  retry_policy {
    minimum_backoff = "1s"
    maximum_backoff = "60s"
  }
}

resource "google_cloud_scheduler_job" "kick" {
  for_each  = local.crontab.pipelines
  name      = "${var.name_prefix}-${each.key}-job"
  schedule  = each.value.schedule
  time_zone = local.crontab.time_zone

  pubsub_target {
    topic_name = google_pubsub_topic.jobs.id
    attributes = { pipeline = each.key, "ce-type" = "x.jobs.v1" }
    data       = base64encode("{\"source\":\"scheduled\"}")
  }
}

# On the metric without its _total suffix; and no dashboard at all.
resource "google_monitoring_alert_policy" "dead_letter" {
  display_name = "dead letter"
  combiner     = "OR"
  conditions {
    display_name = "dead letter"
    condition_prometheus_query_language {
      query = "sum(increase(cmmsflow_events_dead_letters[10m])) > 0"
    }
  }
}

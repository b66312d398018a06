variable "name" {
  type = string
}

variable "invoker_members" {
  type = list(string)
}

locals {
  env = { HANDLER_TIMEOUT = "60s" }
}

resource "google_service_account" "this" {
  account_id = "svc-${var.name}"
}

resource "google_cloud_run_v2_service" "this" {
  name = var.name
  template {
    service_account = google_service_account.this.email
    timeout         = "120s"
    scaling {
      min_instance_count = 0
    }
  }
}

resource "google_pubsub_topic_iam_member" "publish" {
  topic  = "jobs"
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.this.email}"
}

resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(var.invoker_members)
  name     = google_cloud_run_v2_service.this.name
  role     = "roles/run.invoker"
  member   = each.value
}

output "url" {
  value = "https://${var.name}-123.r.run.app"
}

# Cloud Scheduler jobs from the one cron table, scheduler/crontab.yaml: each
# publishes the pipeline's kick (scheduler.KickMessage, in registry.tf) to the
# pipeline-triggered topic, exactly what the local cron publisher sends.
# Terraform is the jobs' only owner (deploy/README.md); a job's id is
# scheduler.JobID: <name_prefix>-<pipeline id with - for _>.

locals {
  crontab = yamldecode(file("${path.module}/../../scheduler/crontab.yaml"))
}

resource "google_cloud_scheduler_job" "kick" {
  for_each    = local.crontab.pipelines
  project     = var.project_id
  region      = var.scheduler_region != "" ? var.scheduler_region : var.region
  name        = "${var.name_prefix}-${replace(each.key, "_", "-")}"
  description = each.value.description
  schedule    = each.value.schedule
  time_zone   = local.crontab.time_zone
  paused      = var.scheduler_paused

  pubsub_target {
    topic_name = google_pubsub_topic.event[local.kick_topic].id
    attributes = local.kicks[each.key].attributes
    data       = base64encode(local.kicks[each.key].data)
  }

  depends_on = [google_project_service.api]
}

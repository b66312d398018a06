# Alerting and the dashboard, in Cloud Monitoring.
#
# The services export their OpenTelemetry metrics in the Prometheus format at
# /metrics (libs/telemetry); the Managed Service for Prometheus sidecar of
# each service (modules/service, managed_prometheus) writes them to Cloud
# Monitoring, where PromQL reads them under their Prometheus names: the OTel
# name with dots as underscores, the unit as a suffix (s: _seconds; {…}
# annotations: none) and _total on counters
# (deploy/local/terraformcheck proves each name against the exporter):
#
#   cmmsflow.runs.finished            cmmsflow_runs_finished_total{pipeline,state}
#   cmmsflow.runs.duration            cmmsflow_runs_duration_seconds_bucket{pipeline,le}
#   cmmsflow.steps.duration           cmmsflow_steps_duration_seconds_bucket{pipeline,step,state,le}
#   cmmsflow.schedule.lag             cmmsflow_schedule_lag_seconds_bucket{pipeline,le}
#   cmmsflow.schedule.missed          cmmsflow_schedule_missed_total{pipeline}
#   cmmsflow.runs.queued              cmmsflow_runs_queued{pipeline}
#   cmmsflow.events.dead_letters      cmmsflow_events_dead_letters_total{service,event_type}
#   cmmsflow.outbox.pending           cmmsflow_outbox_pending
#   cmmsflow.outbox.oldest_pending.age cmmsflow_outbox_oldest_pending_age_seconds
#
# Cloud Run's own run.googleapis.com/request_count is
# run_googleapis_com:request_count in PromQL.
#
# Every instance is a series of its own and scales to zero, so a counter
# usually starts and ends within one instance: the counting alerts add to
# increase() the whole value of series that did not exist a window ago
# (`or (x unless x offset 10m)`), which increase() alone never counts.

locals {
  # A count over the last 10 minutes, by labels, of a counter: its increase
  # in the series that already existed, its whole value in new ones.
  recent = "sum by (%[1]s) (increase(%[2]s[10m]) or (%[2]s unless %[2]s offset 10m))"

  alerts = {
    failed_run = {
      name  = "cmmsflow: a run failed"
      query = "${format(local.recent, "pipeline", "cmmsflow_runs_finished_total{state=\"failed\"}")} > 0"
      doc   = "A pipeline run ended failed (label pipeline). Open the run on control's admin page (/admin) for the failed step and its log; the notifier also sent the failure email."
    }
    missed_schedule = {
      name  = "cmmsflow: a scheduled run was missed"
      query = "${format(local.recent, "pipeline", "cmmsflow_schedule_missed_total")} > 0"
      doc   = "control saw a cron tick of the pipeline pass without its kick (label pipeline): check the Cloud Scheduler job (paused? failing to publish?) and the pipeline-triggered subscription to control."
    }
    dead_letter = {
      name  = "cmmsflow: an event was dead-lettered"
      query = "${format(local.recent, "service, event_type", "cmmsflow_events_dead_letters_total")} > 0"
      doc   = "A service recorded an event in dead_letters and acked it (labels service, event_type): see the dead_letters table on the admin page and the <topic>--<service>--dead-letter--inspect subscriptions (terraform output dead_letter_subscriptions)."
    }
    outbox_backlog = {
      name  = "cmmsflow: outbox backlog"
      query = "max(cmmsflow_outbox_oldest_pending_age_seconds) > ${var.alert_outbox_max_age_seconds}"
      doc   = "The oldest unpublished outbox row is older than ${var.alert_outbox_max_age_seconds} s: the relays cannot publish to Pub/Sub (permissions, quota, an outage). cmmsflow_outbox_pending says how many rows wait; the services log each failed flush."
    }
    server_errors = {
      name = "cmmsflow: 5xx answers"
      # request_count counts every route of a service, not /events alone;
      # the workers serve nothing else (and /healthz), and a 5xx on /events
      # is a push the handler failed, which Pub/Sub retries.
      query = "sum by (service_name) (increase(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",response_code_class=\"5xx\"}[10m])) > ${var.alert_server_errors_per_10m}"
      doc   = "A service answered more than ${var.alert_server_errors_per_10m} requests with 5xx in 10 minutes (label service_name). On /events that is a handler error Pub/Sub will redeliver, up to the dead-letter policy; the service's error logs say why."
    }
  }
}

resource "google_monitoring_notification_channel" "email" {
  for_each     = toset(var.alert_emails)
  project      = var.project_id
  display_name = "cmmsflow alerts: ${each.value}"
  type         = "email"
  labels = {
    email_address = each.value
  }

  depends_on = [google_project_service.api]
}

resource "google_monitoring_alert_policy" "alert" {
  for_each              = local.alerts
  project               = var.project_id
  display_name          = each.value.name
  combiner              = "OR"
  enabled               = true
  notification_channels = [for c in google_monitoring_notification_channel.email : c.id]

  conditions {
    display_name = each.value.name
    condition_prometheus_query_language {
      query               = each.value.query
      duration            = "0s"
      evaluation_interval = "60s"
      # The cmmsflow metrics exist in Cloud Monitoring only once a service
      # has exported them; the policy must not wait for that.
      disable_metric_validation = true
    }
  }

  alert_strategy {
    auto_close = "1800s"
  }

  documentation {
    content   = each.value.doc
    mime_type = "text/markdown"
  }

  user_labels = { cmmsflow = "alert" }

  depends_on = [google_project_service.api]
}

locals {
  # One chart per tile: title and PromQL queries.
  dashboard_charts = [
    ["Runs finished, by pipeline and state (1 h)", ["sum by (pipeline, state) (increase(cmmsflow_runs_finished_total[1h]))"]],
    ["Run duration p95, by pipeline (s)", ["histogram_quantile(0.95, sum by (pipeline, le) (rate(cmmsflow_runs_duration_seconds_bucket[1h])))"]],
    ["Step duration p95, by pipeline and step (s)", ["histogram_quantile(0.95, sum by (pipeline, step, le) (rate(cmmsflow_steps_duration_seconds_bucket[1h])))"]],
    ["Queued runs, by pipeline", ["max by (pipeline) (cmmsflow_runs_queued)"]],
    ["Schedule lag p95, by pipeline (s)", ["histogram_quantile(0.95, sum by (pipeline, le) (rate(cmmsflow_schedule_lag_seconds_bucket[1h])))"]],
    ["Missed schedule ticks, by pipeline (1 h)", ["sum by (pipeline) (increase(cmmsflow_schedule_missed_total[1h]))"]],
    ["Dead letters, by service and event type (1 h)", ["sum by (service, event_type) (increase(cmmsflow_events_dead_letters_total[1h]))"]],
    ["Outbox: pending rows, oldest row's age (s)", ["max(cmmsflow_outbox_pending)", "max(cmmsflow_outbox_oldest_pending_age_seconds)"]],
    ["5xx answers, by service (5 min)", ["sum by (service_name) (increase(run_googleapis_com:request_count{monitored_resource=\"cloud_run_revision\",response_code_class=\"5xx\"}[5m]))"]],
  ]
}

resource "google_monitoring_dashboard" "cmmsflow" {
  project = var.project_id
  dashboard_json = jsonencode({
    displayName = "cmmsflow"
    mosaicLayout = {
      columns = 48
      tiles = [for i, c in local.dashboard_charts : {
        xPos   = (i % 2) * 24
        yPos   = floor(i / 2) * 16
        width  = 24
        height = 16
        widget = {
          title = c[0]
          xyChart = {
            dataSets = [for q in c[1] : {
              plotType        = "LINE"
              targetAxis      = "Y1"
              timeSeriesQuery = { prometheusQuery = q }
            }]
          }
        }
      }]
    }
  })

  depends_on = [google_project_service.api]
}

# One module instance per service of libs/events.Services. Each gets its own
# runtime service account and IAM on exactly what it uses:
#
#   service     publishes (its outbox)                     bucket prefixes        secrets
#   control     pipeline-triggered, run-started,           -                      API_TOKENS
#               step-failed (stale-run sweeper), schedule-missed
#               (and roles/logging.viewer: it reads the steps' log lines)
#   extractor   raw-extracted, step-*                      runs/ rw               -
#   featurejob  features-built, step-*                     runs/ rw, code/ rw     -
#   trainer     model-trained, step-*                      runs/ rw, models/ rw   -
#   deployer    model-deployed, model-monitored,           runs/ r, models/ r     -
#               drift-detected, pipeline-triggered (retraining), step-*
#   pmgen       workorders-generated, step-*               -                      PM_BACKEND_TOKEN (optional)
#   reporter    report-generated, step-*                   reports/ rw            -
#   notifier    step-*                                     reports/ r             SENDGRID_API_KEY, NOTIFY_WEBHOOK_URLS (optional),
#                                                                                 PAGERDUTY_ROUTING_KEY (optional)
#
# Every service also gets the Cloud SQL instance, SOURCE_SCHEMA and a login of
# its own: its runtime service account as a Cloud SQL IAM user, through a Cloud
# SQL Auth Proxy sidecar (modules/service), made a member of its group role
# cmmsflow_<service> by the migrate job (migrate.tf). No service gets a
# password or the owner login; control runs with MIGRATE_ON_START=false. The
# modules do not wait for control: the migrate job, not control, prepares the
# database before they start (deploy/README.md, Apply). Timeouts:
# HANDLER_TIMEOUT (handler_timeout_seconds) is at most the
# subscriptions' ack deadline (600 s) and Cloud Run's timeout exceeds it; the
# long steps (extractor, featurejob, trainer, deployer) get 9 minutes.

locals {
  # What every service shares (modules/service's variable "platform").
  platform = {
    name_prefix          = var.name_prefix
    project_id           = var.project_id
    project_number       = local.project_number
    region               = var.region
    bucket               = google_storage_bucket.runs.name
    database_name        = var.database_name
    source_schema        = var.source_schema
    cloudsql_instance    = var.cloudsql_instance
    proxy_image          = var.cloudsql_proxy_image
    push_service_account = local.push_service_account
    log_level            = var.log_level
    labels               = var.labels
    # Managed Service for Prometheus sidecar (modules/service), or none.
    prometheus_sidecar_image = var.managed_prometheus ? var.prometheus_sidecar_image : ""
  }

  step_topics = ["step-started", "step-succeeded", "step-failed"]
  push_member = "serviceAccount:${local.push_service_account}"
  rw          = "roles/storage.objectUser"
  ro          = "roles/storage.objectViewer"

  service_urls = {
    control    = module.control.url
    extractor  = module.extractor.url
    featurejob = module.featurejob.url
    trainer    = module.trainer.url
    deployer   = module.deployer.url
    pmgen      = module.pmgen.url
    notifier   = module.notifier.url
    reporter   = module.reporter.url
  }
}

module "control" {
  source                  = "./modules/service"
  name                    = "control"
  platform                = local.platform
  image                   = local.images["control"]
  timeout_seconds         = 300
  handler_timeout_seconds = 240
  concurrency             = 80
  max_instances           = 5
  ingress                 = local.control_ingress  # control.tf: private unless control_public
  invoker_members         = local.control_invokers # push identity, IAP agent, machine callers

  publish_topics = ["pipeline-triggered", "run-started", "step-failed", "schedule-missed"]
  # Steps' own log lines (the Airflow task log route, the admin run view).
  project_roles = ["roles/logging.viewer"]
  env = merge({
    MIGRATE_ON_START   = "false" # the migrate job applies them, as the owner; control's login may not
    CRON_TIME_ZONE     = local.crontab.time_zone
    TRIGGER_RATE_LIMIT = tostring(var.trigger_rate_limit)
    LOGS_BACKEND       = "cloudlogging"
  }, local.control_id_token_env)
  secret_env = { API_TOKENS = local.secret_ids.api_tokens }

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push,
  google_project_service_identity.iap]
}

module "extractor" {
  source                  = "./modules/service"
  name                    = "extractor"
  platform                = local.platform
  image                   = local.images["extractor"]
  timeout_seconds         = 600
  handler_timeout_seconds = 540
  concurrency             = 2
  memory                  = "1Gi"
  invoker_members         = [local.push_member]

  publish_topics  = concat(["raw-extracted"], local.step_topics)
  bucket_prefixes = { "runs/" = local.rw }

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push]
}

module "featurejob" {
  source                  = "./modules/service"
  name                    = "featurejob"
  platform                = local.platform
  image                   = local.images["featurejob"]
  timeout_seconds         = 600
  handler_timeout_seconds = 540 # DATAPROC_WAIT (8m) fits; a longer job is picked up again on redelivery
  concurrency             = 1
  cpu                     = "2"
  memory                  = "2Gi"
  invoker_members         = [local.push_member]

  publish_topics  = concat(["features-built"], local.step_topics)
  bucket_prefixes = { "runs/" = local.rw, "code/" = local.rw }
  project_roles   = var.feature_engine != "local" ? ["roles/dataproc.editor"] : [] # auto may use Dataproc too
  act_as          = var.feature_engine != "local" ? [local.dataproc_service_account] : []
  env = merge(
    {
      FEATURE_ENGINE               = var.feature_engine
      DATAPROC_MODE                = var.dataproc.mode
      DATAPROC_PROJECT             = var.project_id
      DATAPROC_REGION              = local.dataproc_region
      DATAPROC_SERVICE_ACCOUNT     = local.dataproc_service_account
      DATAPROC_SUBNETWORK          = var.dataproc.subnetwork
      DATAPROC_RUNTIME_VERSION     = var.dataproc.runtime_version
      DATAPROC_IMAGE_VERSION       = var.dataproc.image_version
      DATAPROC_MASTER_MACHINE_TYPE = var.dataproc.master_machine_type
      DATAPROC_WORKER_MACHINE_TYPE = var.dataproc.worker_machine_type
      DATAPROC_WORKERS             = tostring(var.dataproc.workers)
      DATAPROC_DISK_SIZE_GB        = tostring(var.dataproc.disk_size_gb)
      DATAPROC_WAIT                = var.dataproc.wait
      DATAPROC_TIMEOUT             = var.dataproc.timeout
    },
    var.feature_auto_max_work_orders != null ? { FEATURE_AUTO_MAX_WORK_ORDERS = tostring(var.feature_auto_max_work_orders) } : {},
  )

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push,
  google_service_account.dataproc]
}

module "trainer" {
  source                  = "./modules/service"
  name                    = "trainer"
  platform                = local.platform
  image                   = local.images["trainer"]
  timeout_seconds         = 600
  handler_timeout_seconds = 540
  concurrency             = 1
  cpu                     = "2"
  memory                  = "2Gi"
  invoker_members         = [local.push_member]

  publish_topics  = concat(["model-trained"], local.step_topics)
  bucket_prefixes = { "runs/" = local.rw, "models/" = local.rw }

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push]
}

module "deployer" {
  source                  = "./modules/service"
  name                    = "deployer"
  platform                = local.platform
  image                   = local.images["deployer"]
  timeout_seconds         = 600
  handler_timeout_seconds = 540 # a Vertex deployment takes minutes; the engine resumes on redelivery
  concurrency             = 1
  memory                  = "1Gi"
  invoker_members         = [local.push_member]

  publish_topics  = concat(["model-deployed", "model-monitored", "drift-detected", "pipeline-triggered"], local.step_topics)
  bucket_prefixes = { "runs/" = local.ro, "models/" = local.ro }
  project_roles   = var.deploy_engine == "vertex" ? ["roles/aiplatform.user"] : []
  act_as          = var.deploy_engine == "vertex" ? [local.vertex_service_account] : []
  env = {
    DEPLOY_ENGINE             = var.deploy_engine
    VERTEX_PROJECT            = var.project_id
    VERTEX_LOCATION           = local.vertex_location
    VERTEX_ENDPOINT           = var.vertex.endpoint_id
    VERTEX_PREDICTOR_IMAGE    = local.images["predictor"]
    VERTEX_MACHINE_TYPE       = var.vertex.machine_type
    VERTEX_MIN_REPLICAS       = tostring(var.vertex.min_replicas)
    VERTEX_MAX_REPLICAS       = tostring(var.vertex.max_replicas)
    VERTEX_SERVICE_ACCOUNT    = local.vertex_service_account
    VERTEX_MODEL_DISPLAY_NAME = var.vertex.display_name
    VERTEX_PREDICT_BATCH      = tostring(var.vertex.predict_batch)
  }

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push,
  google_vertex_ai_endpoint.champion, google_service_account.vertex]
}

module "pmgen" {
  source                  = "./modules/service"
  name                    = "pmgen"
  platform                = local.platform
  image                   = local.images["pmgen"]
  timeout_seconds         = 300
  handler_timeout_seconds = 240
  concurrency             = 10
  invoker_members         = [local.push_member]

  publish_topics = concat(["workorders-generated"], local.step_topics)
  env = merge(
    { PM_TIME_ZONE = var.time_zone },
    var.pm_backend_url != "" ? { PM_BACKEND_URL = var.pm_backend_url } : {},
  )
  secret_env = var.pm_backend_url != "" ? { PM_BACKEND_TOKEN = local.secret_ids.pm_backend_token } : {}

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push]
}

module "notifier" {
  source                  = "./modules/service"
  name                    = "notifier"
  platform                = local.platform
  image                   = local.images["notifier"]
  timeout_seconds         = 300
  handler_timeout_seconds = 240
  concurrency             = 20
  invoker_members         = [local.push_member]

  publish_topics  = local.step_topics
  bucket_prefixes = { "reports/" = local.ro }
  env = merge(
    {
      EMAIL_MODE             = "sendgrid"
      EMAIL_FROM             = var.email_from
      ADMIN_EMAILS           = var.admin_emails
      REPORT_PUBLIC_BASE_URL = var.report_public_base_url
    },
    var.report_recipients != "" ? { REPORT_RECIPIENTS = var.report_recipients } : {},
  )
  secret_env = merge(
    { SENDGRID_API_KEY = local.secret_ids.sendgrid },
    var.notify_webhooks ? { NOTIFY_WEBHOOK_URLS = local.secret_ids.webhooks } : {},
    var.pagerduty ? { PAGERDUTY_ROUTING_KEY = local.secret_ids.pagerduty } : {},
  )

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push]
}

module "reporter" {
  source                  = "./modules/service"
  name                    = "reporter"
  platform                = local.platform
  image                   = local.images["reporter"]
  timeout_seconds         = 300
  handler_timeout_seconds = 240
  concurrency             = 2
  memory                  = "1Gi"
  invoker_members         = [local.push_member]

  publish_topics  = concat(["report-generated"], local.step_topics)
  bucket_prefixes = { "reports/" = local.rw }
  env             = { REPORT_TIME_ZONE = var.time_zone }

  depends_on = [google_pubsub_topic.event, google_secret_manager_secret.secret, google_service_account.push]
}

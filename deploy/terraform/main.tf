# cmmsflow on Google Cloud. The event registry (registry.tf, generated from
# libs/events and scheduler) is the data; pubsub.tf, services.tf and
# scheduler.tf turn it into resources; deploy/local/terraformcheck proves
# they agree with the Go code.

data "google_project" "this" {
  project_id = var.project_id
}

locals {
  project_number = data.google_project.this.number

  apis = toset([
    "aiplatform.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudscheduler.googleapis.com",
    "compute.googleapis.com",
    "dataproc.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "iap.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "sqladmin.googleapis.com",
    "storage.googleapis.com",
  ])

  image_base = "${var.region}-docker.pkg.dev/${var.project_id}/${var.image_repository}"
  # The services', the Vertex AI predictor's and the cmmsflow CLI's (the
  # migrate job, migrate.tf).
  images = { for s in concat(local.services, ["predictor", "cmmsflow"]) : s => "${local.image_base}/${s}:${var.image_tag}" }

  # The owner login (database_user), which applies the migrations: only the
  # migrate job (migrate.tf) connects as it, through Cloud Run's Cloud SQL
  # volume. The password is not in the URL: Cloud Run mounts it from Secret
  # Manager as PGPASSWORD, which pgx merges into the connection settings.
  # Every service connects as its own Cloud SQL IAM user instead
  # (modules/service).
  owner_database_url = "postgres://${var.database_user}@/${var.database_name}?host=/cloudsql/${var.cloudsql_instance}"

  # project:region:instance
  cloudsql_parts = split(":", var.cloudsql_instance)

  # Known at plan time (IAM for_each keys must be).
  push_service_account = "${google_service_account.push.account_id}@${var.project_id}.iam.gserviceaccount.com"
  pubsub_agent         = "serviceAccount:service-${local.project_number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}

resource "google_project_service" "api" {
  for_each           = local.apis
  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

resource "google_artifact_registry_repository" "images" {
  project       = var.project_id
  location      = var.region
  repository_id = var.image_repository
  format        = "DOCKER"
  description   = "cmmsflow service images and the Vertex AI predictor image (deploy/cloudbuild.yaml)."

  depends_on = [google_project_service.api]
}

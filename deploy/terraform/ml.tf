# Dataproc (featurejob) and Vertex AI (deployer): the runtime identities those
# managed services run cmmsflow's code as, and the Vertex endpoint the
# deployer deploys the champion model to.

resource "google_service_account" "dataproc" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-dataproc"
  display_name = "cmmsflow Dataproc runtime (featurejob's Spark batches and clusters)"
}

resource "google_project_iam_member" "dataproc_worker" {
  project = var.project_id
  role    = "roles/dataproc.worker"
  member  = "serviceAccount:${google_service_account.dataproc.email}"
}

# Spark reads runs/<run_id>/raw/ and the script under code/, writes
# runs/<run_id>/features/.
resource "google_storage_bucket_iam_member" "dataproc" {
  for_each = { "runs/" = "roles/storage.objectUser", "code/" = "roles/storage.objectViewer" }
  bucket   = google_storage_bucket.runs.name
  role     = each.value
  member   = "serviceAccount:${google_service_account.dataproc.email}"

  condition {
    title      = "dataproc ${trimsuffix(each.key, "/")}"
    expression = "resource.name == \"projects/_/buckets/${google_storage_bucket.runs.name}\" || resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.runs.name}/objects/${each.key}\")"
  }
}

resource "google_service_account" "vertex" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-vertex"
  display_name = "cmmsflow Vertex AI serving (the predictor container)"
}

# The predictor loads model.json from models/<version>/ (AIP_STORAGE_URI).
resource "google_storage_bucket_iam_member" "vertex" {
  bucket = google_storage_bucket.runs.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.vertex.email}"

  condition {
    title      = "vertex models"
    expression = "resource.name == \"projects/_/buckets/${google_storage_bucket.runs.name}\" || resource.name.startsWith(\"projects/_/buckets/${google_storage_bucket.runs.name}/objects/models/\")"
  }
}

resource "google_vertex_ai_endpoint" "champion" {
  count        = var.deploy_engine == "vertex" ? 1 : 0
  project      = var.project_id
  location     = local.vertex_location
  name         = var.vertex.endpoint_id
  display_name = var.vertex.display_name
  description  = "cmmsflow failure-risk model (the deployer deploys each new champion here)."

  depends_on = [google_project_service.api]
}

locals {
  dataproc_region = var.dataproc.region != "" ? var.dataproc.region : var.region
  vertex_location = var.vertex.location != "" ? var.vertex.location : var.region

  # Known at plan time (IAM for_each keys must be).
  dataproc_service_account = "${google_service_account.dataproc.account_id}@${var.project_id}.iam.gserviceaccount.com"
  vertex_service_account   = "${google_service_account.vertex.account_id}@${var.project_id}.iam.gserviceaccount.com"
}

# The run bucket. Prefixes (each service is granted only its own, see
# services.tf): runs/<run_id>/{raw,features,model}/ run artefacts, models/
# the registered models, reports/ the KPI reports, code/ the PySpark script.

resource "google_storage_bucket" "runs" {
  project                     = var.project_id
  name                        = var.bucket_name
  location                    = var.bucket_location != "" ? var.bucket_location : var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true # required by the prefix IAM conditions
  public_access_prevention    = "enforced"
  labels                      = var.labels

  # Run artefacts are reproducible from the database: delete them.
  lifecycle_rule {
    condition {
      age            = var.run_artifact_retention_days
      matches_prefix = ["runs/"]
    }
    action {
      type = "Delete"
    }
  }

  # Old reports are rarely read.
  lifecycle_rule {
    condition {
      age                   = var.report_nearline_after_days
      matches_prefix        = ["reports/"]
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }

  depends_on = [google_project_service.api]
}

output "service_urls" {
  description = "Each service's URL (control serves the API, the admin page at /admin and the Airflow-compatible API at /api/v1)."
  value       = local.service_urls
}

output "control_url" {
  description = "control's URL: point the old backend's Airflow client at <control_url>/api/v1."
  value       = local.service_urls["control"]
}

output "image_repository" {
  description = "Where deploy/cloudbuild.yaml pushes the images (its _REPOSITORY and _REGION substitutions)."
  value       = local.image_base
}

output "bucket" {
  description = "The run bucket."
  value       = google_storage_bucket.runs.name
}

output "secrets" {
  description = "Secret ids to add versions to (gcloud secrets versions add <id> --data-file=-)."
  value       = local.secrets
}

output "push_service_account" {
  description = "The identity in push requests' OIDC tokens."
  value       = local.push_service_account
}

output "dead_letter_subscriptions" {
  description = "Pull subscriptions on the dead-letter topics (gcloud pubsub subscriptions pull <id> --limit 10)."
  value       = sort([for s in google_pubsub_subscription.dead_letter : s.name])
}

output "vertex_endpoint" {
  description = "The Vertex AI endpoint the deployer deploys to, when deploy_engine is vertex."
  value       = one(google_vertex_ai_endpoint.champion[*].id)
}

output "source" {
  description = "The CMMS source: its schema, the login of the services but control (owner, password or iam) and the database users to grant (deploy/README.md, Mapped CMMS source): the read-only login's, or each service account's IAM user."
  value = {
    schema = var.source_schema
    login  = local.reader_login
    users = local.reader_login == "password" ? [var.source_database_user] : local.reader_login == "iam" ? sort([
      for s in local.services : "${var.name_prefix}-${s}@${var.project_id}.iam" if s != "control"
    ]) : [var.database_user]
  }
}

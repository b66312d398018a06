output "service_urls" {
  description = "Each service's URL (control serves the API, the admin page at /admin and the Airflow-compatible API at /api/v1)."
  value       = local.service_urls
}

output "control_url" {
  description = "Where people and machines reach control: https://<control_domain> (the IAP load balancer) when private, its run.app URL with control_public. Point the old backend's Airflow client at <control_url>/api/v1."
  value       = local.control_private ? "https://${var.control_domain}" : local.service_urls["control"]
}

output "control_lb_address" {
  description = "With control private: the load balancer's IP address; point control_domain's A record at it (the managed certificate is issued once DNS resolves)."
  value       = local.control_private ? google_compute_global_address.control[0].address : null
}

output "control_id_token_audience" {
  description = "The audience of the Google ID tokens control_machine_callers send (gcloud auth print-identity-token --audiences=<this>, or the metadata server's identity endpoint): control's run.app URL."
  value       = local.control_run_url
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

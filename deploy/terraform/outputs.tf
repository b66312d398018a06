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

output "source_schema" {
  description = "The CMMS source schema every service reads (SOURCE_SCHEMA); a mapped one needs SELECT granted to the services' roles (docs/database-roles.md)."
  value       = var.source_schema
}

output "database_logins" {
  description = "Each service's Cloud SQL IAM user (its DATABASE_URL user), which the migrate job makes a member of cmmsflow_<service>."
  value       = local.iam_users
}

output "migrate_job" {
  description = "The Cloud Run job that applies the migrations as the owner and grants each service's role to its IAM user: gcloud run jobs execute <this> --region <region> --wait, before the services roll."
  value       = google_cloud_run_v2_job.migrate.name
}

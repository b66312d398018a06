output "name" {
  description = "The Cloud Run service name."
  value       = google_cloud_run_v2_service.this.name
}

output "url" {
  description = "The service's deterministic URL (https://<name>-<project_number>.<region>.run.app): push endpoints and OIDC audiences use it."
  value       = local.url
  depends_on  = [google_cloud_run_v2_service.this]
}

output "service_account_email" {
  description = "The service's own runtime service account."
  value       = google_service_account.this.email
}

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

output "iam_user" {
  description = "The service's Cloud SQL IAM database user (<name_prefix>-<name>@<project>.iam), its DATABASE_URL user; the migrate job makes it a member of cmmsflow_<name>. Depends on the user only, not the Cloud Run service, so the job can be applied and run before the services roll."
  value       = google_sql_user.iam.name
}

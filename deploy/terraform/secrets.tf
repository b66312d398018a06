# Secret Manager secrets. Terraform creates the secrets and grants access;
# the values are added with `gcloud secrets versions add` (deploy/README.md),
# so they never enter the Terraform state. Each service mounts the latest
# version as an environment variable.

locals {
  secret_ids = {
    db_password      = "${var.name_prefix}-db-password"           # PGPASSWORD of the owner login, the migrate job only
    sendgrid         = "${var.name_prefix}-sendgrid-api-key"      # SENDGRID_API_KEY, notifier
    api_tokens       = "${var.name_prefix}-api-tokens"            # API_TOKENS, control
    webhooks         = "${var.name_prefix}-notify-webhook-urls"   # NOTIFY_WEBHOOK_URLS, notifier (optional)
    pm_backend_token = "${var.name_prefix}-pm-backend-token"      # PM_BACKEND_TOKEN, pmgen (optional)
    pagerduty        = "${var.name_prefix}-pagerduty-routing-key" # PAGERDUTY_ROUTING_KEY, notifier (optional)
  }

  # The secrets this configuration uses.
  secrets = {
    for k, id in local.secret_ids : k => id
    if !(k == "webhooks" && !var.notify_webhooks) && !(k == "pm_backend_token" && var.pm_backend_url == "") && !(k == "pagerduty" && !var.pagerduty)
  }
}

resource "google_secret_manager_secret" "secret" {
  for_each  = local.secrets
  project   = var.project_id
  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [google_project_service.api]
}

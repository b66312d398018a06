# control's front door. By default (control_public = false) control takes
# only internal and load-balancer traffic (ingress
# INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER, services.tf) and nobody but named
# principals may invoke it:
#
#   people    https://<control_domain> → global external HTTPS load balancer
#             (Google-managed certificate) → backend service with IAP → the
#             serverless NEG of control. IAP admits control_iap_members
#             (roles/iap.httpsResourceAccessor) and calls Cloud Run as the IAP
#             service agent (roles/run.invoker), its token in
#             X-Serverless-Authorization; the person's own Authorization
#             header (the admin page's control API token) passes through.
#   machines  control_machine_callers, each with roles/run.invoker and an
#             API_ID_TOKEN_ACCOUNTS entry, send a Google ID token for
#             control's run.app URL in X-Serverless-Authorization and
#             Authorization. The URL map routes requests carrying
#             X-Serverless-Authorization to a backend service without IAP:
#             Cloud Run's IAM check (the token's account must hold
#             run.invoker) stands in for IAP, and control verifies the token
#             again (API_ID_TOKEN_AUDIENCE/ACCOUNTS) for the role. Anyone else
#             sending the header is refused by Cloud Run (403).
#   Pub/Sub   push subscriptions still call the run.app URL with the push
#             identity's OIDC token: push from Pub/Sub in the same project
#             counts as internal traffic.
#
# control_public = true instead opens control to the internet (ingress all,
# allUsers invoker) and creates none of this: deploy/README.md says what that
# exposes.

locals {
  control_private = !var.control_public
  # Load balancers and internal traffic (Pub/Sub push) only, or everything.
  control_ingress = var.control_public ? "INGRESS_TRAFFIC_ALL" : "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER"
  # Cloud Run's deterministic URL of control (modules/service local.url): the
  # audience of the machine callers' ID tokens.
  control_run_url = "https://control-${local.project_number}.${var.region}.run.app"
  # Known at plan time (the invoker for_each keys must be); the agent itself
  # is created by google_project_service_identity.iap.
  iap_agent = "serviceAccount:service-${local.project_number}@gcp-sa-iap.iam.gserviceaccount.com"

  control_invokers = concat(
    [local.push_member],
    var.control_public ? ["allUsers"] : [local.iap_agent],
    [for email in sort(keys(var.control_machine_callers)) : "serviceAccount:${email}"],
  )
  control_id_token_env = length(var.control_machine_callers) == 0 ? {} : {
    API_ID_TOKEN_AUDIENCE = local.control_run_url
    API_ID_TOKEN_ACCOUNTS = join(",", [for email in sort(keys(var.control_machine_callers)) : "${email}:${var.control_machine_callers[email]}"])
  }
}

# The IAP service agent (service-<number>@gcp-sa-iap): it exists only once
# asked for, and must before it can be granted run.invoker.
resource "google_project_service_identity" "iap" {
  count    = local.control_private ? 1 : 0
  provider = google-beta
  project  = var.project_id
  service  = "iap.googleapis.com"

  depends_on = [google_project_service.api]
}

resource "google_compute_region_network_endpoint_group" "control" {
  count                 = local.control_private ? 1 : 0
  project               = var.project_id
  name                  = "${var.name_prefix}-control"
  region                = var.region
  network_endpoint_type = "SERVERLESS"

  cloud_run {
    service = module.control.name
  }

  lifecycle {
    precondition {
      condition     = var.control_domain != ""
      error_message = "control is private (control_public = false): set control_domain, the DNS name of its HTTPS load balancer (or set control_public = true, see deploy/README.md)."
    }
  }
}

# People: IAP in front of control. Without an OAuth client IAP uses a
# Google-managed one, which admits accounts of the project's organization.
resource "google_compute_backend_service" "control_iap" {
  count                 = local.control_private ? 1 : 0
  project               = var.project_id
  name                  = "${var.name_prefix}-control-iap"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"

  backend {
    group = google_compute_region_network_endpoint_group.control[0].id
  }

  iap {
    enabled = true
  }

  log_config {
    enable = true
  }
}

# Machines: no IAP; Cloud Run's IAM check on X-Serverless-Authorization
# (control_machine_callers hold run.invoker), then control's own.
resource "google_compute_backend_service" "control_machines" {
  count                 = local.control_private && length(var.control_machine_callers) > 0 ? 1 : 0
  project               = var.project_id
  name                  = "${var.name_prefix}-control-machines"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  protocol              = "HTTPS"

  backend {
    group = google_compute_region_network_endpoint_group.control[0].id
  }

  log_config {
    enable = true
  }
}

resource "google_iap_web_backend_service_iam_member" "control" {
  for_each            = toset(local.control_private ? var.control_iap_members : [])
  project             = var.project_id
  web_backend_service = google_compute_backend_service.control_iap[0].name
  role                = "roles/iap.httpsResourceAccessor"
  member              = each.value
}

resource "google_compute_url_map" "control" {
  count           = local.control_private ? 1 : 0
  project         = var.project_id
  name            = "${var.name_prefix}-control"
  default_service = google_compute_backend_service.control_iap[0].id

  host_rule {
    hosts        = [var.control_domain]
    path_matcher = "control"
  }

  path_matcher {
    name            = "control"
    default_service = google_compute_backend_service.control_iap[0].id

    dynamic "route_rules" {
      for_each = google_compute_backend_service.control_machines
      content {
        priority = 1
        service  = route_rules.value.id
        match_rules {
          prefix_match = "/"
          header_matches {
            header_name   = "X-Serverless-Authorization"
            present_match = true
          }
        }
      }
    }
  }
}

resource "google_compute_managed_ssl_certificate" "control" {
  count   = local.control_private ? 1 : 0
  project = var.project_id
  name    = "${var.name_prefix}-control"

  managed {
    domains = [var.control_domain]
  }
}

resource "google_compute_target_https_proxy" "control" {
  count            = local.control_private ? 1 : 0
  project          = var.project_id
  name             = "${var.name_prefix}-control"
  url_map          = google_compute_url_map.control[0].id
  ssl_certificates = [google_compute_managed_ssl_certificate.control[0].id]
}

resource "google_compute_global_address" "control" {
  count   = local.control_private ? 1 : 0
  project = var.project_id
  name    = "${var.name_prefix}-control"
}

resource "google_compute_global_forwarding_rule" "control" {
  count                 = local.control_private ? 1 : 0
  project               = var.project_id
  name                  = "${var.name_prefix}-control"
  load_balancing_scheme = "EXTERNAL_MANAGED"
  ip_protocol           = "TCP"
  port_range            = "443"
  ip_address            = google_compute_global_address.control[0].id
  target                = google_compute_target_https_proxy.control[0].id
}

# Pub/Sub from the registry data in registry.tf: one topic per event type, one
# push subscription per consumer (OIDC-authenticated, to the consuming
# service's /events), one dead-letter topic per subscription and a pull
# subscription on each dead-letter topic to inspect what landed there.

resource "google_pubsub_topic" "event" {
  for_each = toset(local.event_topics)
  project  = var.project_id
  name     = each.value

  depends_on = [google_project_service.api]
}

resource "google_pubsub_topic" "dead_letter" {
  for_each = { for id, s in local.subscriptions : s.dead_letter_topic => id }
  project  = var.project_id
  name     = each.key

  depends_on = [google_project_service.api]
}

# The identity Pub/Sub signs push requests as; every consuming service lets it
# invoke (services.tf) and checks the token's audience and email.
resource "google_service_account" "push" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-push"
  display_name = "cmmsflow Pub/Sub push (OIDC tokens on push requests)"
}

resource "google_pubsub_subscription" "push" {
  for_each = local.subscriptions
  project  = var.project_id
  name     = each.key
  topic    = google_pubsub_topic.event[each.value.topic].id
  filter   = each.value.filter == "" ? null : each.value.filter

  ack_deadline_seconds       = local.delivery.ack_deadline_seconds
  message_retention_duration = "604800s"

  push_config {
    push_endpoint = "${local.service_urls[each.value.service]}/events"
    oidc_token {
      service_account_email = local.push_service_account
      audience              = local.service_urls[each.value.service]
    }
  }

  retry_policy {
    minimum_backoff = "${local.delivery.min_backoff_seconds}s"
    maximum_backoff = "${local.delivery.max_backoff_seconds}s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.dead_letter[each.value.dead_letter_topic].id
    max_delivery_attempts = local.delivery.max_delivery_attempts
  }

  expiration_policy {
    ttl = "" # never expire, however quiet the topic
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_service_account_iam_member.push_token_creator,
  ]
}

resource "google_pubsub_subscription" "dead_letter" {
  for_each = google_pubsub_topic.dead_letter
  project  = var.project_id
  name     = "${each.key}--inspect"
  topic    = each.value.id

  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"

  expiration_policy {
    ttl = ""
  }
}

# Dead-lettering is done by the Pub/Sub service agent: it publishes to the
# dead-letter topic and acks on the source subscription.
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  for_each = google_pubsub_topic.dead_letter
  project  = var.project_id
  topic    = each.value.name
  role     = "roles/pubsub.publisher"
  member   = local.pubsub_agent
}

resource "google_pubsub_subscription_iam_member" "dead_letter_subscriber" {
  for_each     = google_pubsub_subscription.push
  project      = var.project_id
  subscription = each.value.name
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# The Pub/Sub service agent mints the push OIDC tokens (needed explicitly in
# projects created before April 2021).
resource "google_service_account_iam_member" "push_token_creator" {
  service_account_id = google_service_account.push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

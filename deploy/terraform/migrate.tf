# The schema migrations, as a Cloud Run job: `cmmsflow migrate` connects as
# the owner login (database_user, its password from <prefix>-db-password),
# applies the migrations (which create the group roles cmmsflow_<service>
# and their grants, docs/database-roles.md) and makes each service's Cloud
# SQL IAM user a member of its role (--login <service>=<IAM user>). It is
# the only workload with the owner's password; no service migrates (control
# runs with MIGRATE_ON_START=false). Run it before the services roll
# (deploy/README.md, Apply):
#
#   terraform apply -var image_tag=$TAG -target=google_cloud_run_v2_job.migrate
#   gcloud run jobs execute <prefix>-migrate --region <region> --wait
#   terraform apply -var image_tag=$TAG
#
# Targeting the job also creates what it needs (its account and secret access,
# each service's account and IAM user, through the modules' iam_user outputs)
# and no Cloud Run service.

locals {
  # --login control=<prefix>-control@<project>.iam … one per service.
  migrate_args = concat(["migrate"], flatten([
    for s in local.services : ["--login", "${s}=${local.iam_users[s]}"]
  ]))

  # Each service's Cloud SQL IAM user (modules/service output iam_user).
  iam_users = {
    control    = module.control.iam_user
    extractor  = module.extractor.iam_user
    featurejob = module.featurejob.iam_user
    trainer    = module.trainer.iam_user
    deployer   = module.deployer.iam_user
    pmgen      = module.pmgen.iam_user
    notifier   = module.notifier.iam_user
    reporter   = module.reporter.iam_user
  }
}

resource "google_service_account" "migrate" {
  project      = var.project_id
  account_id   = "${var.name_prefix}-migrate"
  display_name = "cmmsflow migrate (Cloud Run job, the owner login)"
}

# Connect to the one instance (Cloud Run's Cloud SQL volume).
resource "google_project_iam_member" "migrate_cloudsql" {
  project = var.project_id
  role    = "roles/cloudsql.client"
  member  = "serviceAccount:${google_service_account.migrate.email}"

  condition {
    title      = "migrate cloudsql"
    expression = "resource.name == \"projects/${local.cloudsql_parts[0]}/instances/${local.cloudsql_parts[2]}\""
  }
}

# The owner's password, and no other secret.
resource "google_secret_manager_secret_iam_member" "migrate" {
  project   = var.project_id
  secret_id = local.secret_ids.db_password
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.migrate.email}"

  depends_on = [google_secret_manager_secret.secret]
}

resource "google_cloud_run_v2_job" "migrate" {
  project  = var.project_id
  name     = "${var.name_prefix}-migrate"
  location = var.region
  labels   = merge(var.labels, { "cmmsflow-job" = "migrate" })

  template {
    task_count = 1

    template {
      service_account = google_service_account.migrate.email
      timeout         = "900s"
      max_retries     = 0 # a failed migration is looked at, not retried

      volumes {
        name = "cloudsql"
        cloud_sql_instance {
          instances = [var.cloudsql_instance]
        }
      }

      containers {
        image = local.images["cmmsflow"]
        args  = local.migrate_args

        env {
          name  = "DATABASE_URL"
          value = local.owner_database_url
        }

        env {
          name = "PGPASSWORD"
          value_source {
            secret_key_ref {
              secret  = local.secret_ids.db_password
              version = "latest"
            }
          }
        }

        volume_mounts {
          name       = "cloudsql"
          mount_path = "/cloudsql"
        }

        resources {
          limits = {
            cpu    = "1"
            memory = "512Mi"
          }
        }
      }
    }
  }

  lifecycle {
    precondition {
      # The services log in as IAM users: the instance must accept them.
      condition = anytrue([
        for f in data.google_sql_database_instance.this.settings[0].database_flags :
        f.name == "cloudsql.iam_authentication" && f.value == "on"
      ])
      error_message = "The Cloud SQL instance ${var.cloudsql_instance} lacks the database flag cloudsql.iam_authentication=on, which the services' IAM logins need: gcloud sql instances patch ${local.cloudsql_parts[2]} --database-flags=cloudsql.iam_authentication=on,<the flags it already has> (deploy/README.md, Prerequisites)."
    }
  }

  depends_on = [
    google_project_iam_member.migrate_cloudsql,
    google_secret_manager_secret_iam_member.migrate,
    google_project_service.api,
  ]
}

# The existing instance (Terraform does not manage it): read to check its
# IAM authentication flag.
data "google_sql_database_instance" "this" {
  project = local.cloudsql_parts[0]
  name    = local.cloudsql_parts[2]
}

# The CMMS source (deploy/README.md, "Mapped CMMS source"). Every service
# reads the CMMS relations from var.source_schema (SOURCE_SCHEMA). cmms, the
# default, is cmmsflow's own tables and every service connects as
# database_user. Any other schema is a mapping (`cmmsflow source apply FILE`:
# views over the operator's CMMS in the same database) read through a login
# that may only SELECT from it; control keeps database_user, because it
# applies the migrations, and the other services connect as that read-only
# login (local.reader_login in main.tf, the module's owner_login):
#
#   source_login = "password"  DATABASE_URL names source_database_user and
#                              PGPASSWORD comes from <prefix>-source-db-password.
#   source_login = "iam"       each service's runtime service account is a
#                              Cloud SQL IAM user; a Cloud SQL Auth Proxy
#                              sidecar (--auto-iam-authn) serves the socket
#                              DATABASE_URL names, so the Go code connects as
#                              it always does (pgx over a unix socket).
#
# The grants are given in the database, not here: SELECT on source_schema,
# read-write on schema cmmsflow (deploy/README.md).

resource "terraform_data" "source" {
  input = {
    schema = var.source_schema
    login  = local.reader_login
  }

  lifecycle {
    precondition {
      # pmgen writes work orders into the source (work_orders,
      # maintenance_plans) unless PM_BACKEND_URL sends them to the CMMS
      # backend; the read-only login cannot write to a mapped source.
      condition     = !local.source_mapped || var.pm_backend_url != ""
      error_message = "source_schema ${var.source_schema} is a mapped source, read through a read-only login: set pm_backend_url so pmgen creates work orders through the CMMS backend."
    }
  }
}

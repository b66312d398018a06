# The CMMS source (deploy/README.md, "Mapped CMMS source"). Every service
# reads the CMMS relations from var.source_schema (SOURCE_SCHEMA). cmms, the
# default, is cmmsflow's own tables. Any other schema is a mapping
# (`cmmsflow source apply FILE`: views over the operator's CMMS in the same
# database). Either way each service connects as its own Cloud SQL IAM user,
# a member of its group role cmmsflow_<service> (modules/service,
# migrate.tf); a mapped schema's SELECT grants to those roles are given in
# the database, not here (docs/database-roles.md).

locals {
  source_mapped = var.source_schema != "cmms"
}

resource "terraform_data" "source" {
  input = {
    schema = var.source_schema
  }

  lifecycle {
    precondition {
      # pmgen writes work orders into the source (work_orders,
      # maintenance_plans) unless PM_BACKEND_URL sends them to the CMMS
      # backend; the mapped views are read-only.
      condition     = !local.source_mapped || var.pm_backend_url != ""
      error_message = "source_schema ${var.source_schema} is a mapped source, whose views are read-only: set pm_backend_url so pmgen creates work orders through the CMMS backend."
    }
  }
}

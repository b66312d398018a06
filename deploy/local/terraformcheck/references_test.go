package terraformcheck

import "testing"

// TestCheckCatchesUndefinedReferences: a reference to something the module
// does not define fails the check even where the evaluation never looks (a
// precondition, an output), as `terraform validate` would.
func TestCheckCatchesUndefinedReferences(t *testing.T) {
	tests := []struct {
		name, file, old, new, want string
	}{
		{"local used only by a precondition", "source.tf",
			"locals {\n  source_mapped = var.source_schema != \"cmms\"\n}\n", "",
			"source.tf:21,24-43: undefined local.source_mapped"},
		{"variable removed from a module", "modules/service/variables.tf",
			"variable \"deletion_protection\" {", "variable \"deletion_protected\" {",
			"undefined var.deletion_protection"},
		{"module output missing", "modules/service/outputs.tf",
			"output \"iam_user\" {", "output \"sql_user\" {",
			"module.control has no output \"iam_user\""},
		{"data source missing", "migrate.tf",
			"data \"google_sql_database_instance\" \"this\" {", "data \"google_sql_database_instance\" \"instance\" {",
			"undefined data.google_sql_database_instance.this"},
		{"resource missing", "migrate.tf",
			"resource \"google_service_account\" \"migrate\" {", "resource \"google_service_account\" \"migrator\" {",
			"undefined resource google_service_account.migrate"},
	}
	exp := expect(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := mutate(t, tt.file, tt.old, tt.new)
			problems, err := Check(dir, exp)
			wantProblem(t, problems, err, tt.want)
		})
	}
}

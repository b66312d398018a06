package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
)

func newTokenCommand(_ *App) *cobra.Command {
	var role, name string
	cmd := &cobra.Command{
		Use:     "token",
		GroupID: groupAPI,
		Short:   "Make a new API token and its API_TOKENS entry",
		Long: "token prints a new random API bearer token and the line to add to control's API_TOKENS\n" +
			"(comma-separated): the token's SHA-256, its role and name. control keeps only the hash;\n" +
			"the token is shown once, here. The API commands read it from $" + EnvToken + ", or from\n" +
			"standard input with --token-stdin; never from the command line.",
		Example: "  cmmsflow token --role admin --name ops\n  CMMSFLOW_TOKEN=$TOKEN cmmsflow pipelines\n  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/v1/pipelines",
		Args:    usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return &usageError{err}
			}
			token, entry, err := auth.NewToken(r, name)
			if err != nil {
				return &usageError{err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token:      %s\nAPI_TOKENS: %s\n", token, entry)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "admin", "the token's role: admin or viewer")
	cmd.Flags().StringVar(&name, "name", "", "a name for logs, 1-64 characters of [A-Za-z0-9._@-] (default: token-<hash prefix>)")
	return cmd
}

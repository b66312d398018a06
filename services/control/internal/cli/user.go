package cli

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cmmsflow/cmmsflow/services/control/internal/auth"
)

func newUserCommand(a *App) *cobra.Command {
	var role string
	cmd := &cobra.Command{
		Use:     "user NAME",
		GroupID: groupAPI,
		Short:   "Make an API_USERS entry: a user of the Airflow-compatible API (HTTP Basic)",
		Long: "user prints the line to add to control's API_USERS (comma-separated) for a user who logs in\n" +
			"with HTTP Basic on the Airflow-compatible routes (/api/v1/dags…, /api/v1/core/composer/…), as\n" +
			"Airflow's clients do: the name, an argon2id hash of the password and the role. The rest of the\n" +
			"API takes bearer tokens only (see token).\n\n" +
			"The password is the first line of standard input when that is not a terminal; on a terminal\n" +
			"a random one is made and shown once, here. control keeps only the hash.",
		Example: "  cmmsflow user airflow --role viewer\n" +
			"  printf '%s\\n' \"$AIRFLOW_PASSWORD\" | cmmsflow user airflow --role admin",
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := auth.ParseRole(role)
			if err != nil {
				return &usageError{err}
			}
			pw, generated, err := a.password()
			if err != nil {
				return err
			}
			entry, err := auth.NewUser(args[0], r, pw)
			if err != nil {
				return &usageError{err} // the name: the role and password are checked
			}
			if generated {
				fmt.Fprintf(cmd.OutOrStdout(), "password:  %s\n", pw)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "API_USERS: %s\n", entry)
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", "admin", "the user's role: admin or viewer")
	return cmd
}

// password reads the password from the first line of standard input, or
// makes a random one (24 characters, 144 bits) when the input is a terminal,
// where a typed password would echo, or absent.
func (a *App) password() (pw string, generated bool, err error) {
	if a.Stdin == nil || terminal(a.Stdin) {
		b := make([]byte, 18)
		if _, err := rand.Read(b); err != nil {
			return "", false, err
		}
		return base64.RawURLEncoding.EncodeToString(b), true, nil
	}
	line, err := bufio.NewReader(a.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read the password from standard input: %w", err)
	}
	if pw = strings.TrimRight(line, "\r\n"); pw == "" {
		return "", false, errors.New("the first line of standard input is empty: pipe the password in, " +
			"or run on a terminal to get a random one")
	}
	return pw, false, nil
}

// terminal reports whether r is a character device: a terminal (or
// /dev/null, which has no password to give either).
func terminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

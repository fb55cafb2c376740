package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/geolab/geolab/gateway/auth"
)

func newTokenCmd() *cobra.Command {
	var (
		sub, secretFile string
		read, publish   []string
		ttl             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "token --sub NAME --read PATTERN --publish PATTERN --ttl DURATION",
		Short: "Print a signed client token (HS256) valid in every region",
		Long: `Print a JWT signed with the secret from GEOLAB_JWT_SECRET (or --jwt-secret-file),
the same secret every gateway verifies with. --read and --publish take room patterns
where * matches any run of characters (tenant:*, presence:eu-*, *); repeat them for
several patterns. A token with no --read can read nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			secret, err := loadSecret(secretFile)
			if err != nil {
				return err
			}
			a, err := auth.NewAuthority(secret)
			if err != nil {
				return err
			}
			tok, err := a.Issue(sub, read, publish, ttl, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&sub, "sub", "", "the user the token names (required); it becomes the sender of its publishes")
	f.StringArrayVar(&read, "read", nil, "room pattern the token may subscribe to (repeatable)")
	f.StringArrayVar(&publish, "publish", nil, "room pattern the token may publish to (repeatable)")
	f.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	f.StringVar(&secretFile, "jwt-secret-file", "", "file holding the JWT secret (default: the GEOLAB_JWT_SECRET environment variable)")
	_ = cmd.MarkFlagRequired("sub")
	return cmd
}

// loadSecret is auth.LoadSecret, naming the flag that gives a secret file
// when neither way gave a secret.
func loadSecret(file string) ([]byte, error) {
	secret, err := auth.LoadSecret(file)
	if errors.Is(err, auth.ErrNoSecret) {
		return nil, fmt.Errorf("%w (--jwt-secret-file)", err)
	}
	return secret, err
}

package main

import (
	"bytes"
	"io"
	"os"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/jose"
)

// `step crypto jwe decrypt`: reads a JWE from standard input and prints its
// plaintext. The test client implements the password (PBES2) case only, which
// is how `step ca init` encrypts a JWK provisioner's key.

func cryptoCommand() cli.Command {
	return cli.Command{
		Name:      "crypto",
		Usage:     "useful cryptographic plumbing",
		UsageText: "**step crypto** <subcommand> [arguments] [global-flags] [subcommand-flags]",
		Action:    groupAction,
		Subcommands: cli.Commands{
			{
				Name:        "jwe",
				Usage:       "encrypt and decrypt data and keys using JSON Web Encryption (JWE)",
				UsageText:   "**step crypto jwe** <subcommand> [arguments] [global-flags] [subcommand-flags]",
				Action:      groupAction,
				Subcommands: cli.Commands{cryptoJWEDecryptCommand()},
			},
		},
	}
}

func cryptoJWEDecryptCommand() cli.Command {
	return cli.Command{
		Name:      "decrypt",
		Action:    command.ActionFunc(cryptoJWEDecryptAction),
		Usage:     "verify a JWE and decrypt ciphertext",
		UsageText: "**step crypto jwe decrypt** [**--key**=<file>] [**--jwks**=<jwks>] [**--kid**=<kid>] [**--password-file**=<file>]",
		Flags: []cli.Flag{
			cli.StringFlag{Name: "key", Usage: "The <file> of the JWK used to decrypt (not supported by the test client)."},
			cli.StringFlag{Name: "jwks", Usage: "The JWK Set containing the key (not supported by the test client)."},
			cli.StringFlag{Name: "kid", Usage: "The ID of the recipient key (not supported by the test client)."},
			passwordFileFlag,
		},
	}
}

func cryptoJWEDecryptAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "key", "jwks", "kid"); err != nil {
		return err
	}
	data, err := io.ReadAll(os.Stdin)
	if err != nil {
		return errors.Wrap(err, "error reading input")
	}
	data = bytes.TrimSpace(data)
	if _, err := jose.ParseEncrypted(string(data)); err != nil {
		return errors.Wrap(err, "error parsing the JWE from standard input")
	}
	opts := []jose.Option{jose.WithPasswordPrompter("Please enter the password to decrypt the content encryption key",
		func(s string) ([]byte, error) { return ui.PromptPassword(s) })}
	if pf := ctx.String("password-file"); pf != "" {
		opts = append(opts, jose.WithPasswordFile(pf))
	}
	plain, err := jose.Decrypt(data, opts...)
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(plain)
	return err
}

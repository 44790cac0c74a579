package main

import (
	"fmt"

	"github.com/urfave/cli"

	"github.com/smallstep/certificates/api"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/fileutil"
)

// `step ca token SUBJECT`: prints (or writes) a one-time token.
//
// As upstream, --not-before/--not-after bound the token itself, while
// --cert-not-before/--cert-not-after are parsed and validated but only end
// up in SSH tokens: an X.509 certificate's validity is asked for by the
// client at `step ca certificate --not-after`.

func caTokenCommand() cli.Command {
	return cli.Command{
		Name:   "token",
		Action: command.ActionFunc(caTokenAction),
		Usage:  "generate an OTT granting access to the CA",
		UsageText: `**step ca token** <subject> [**--kid**=<kid>] [**--issuer**=<name>]
[**--cert-not-before**=<time|duration>] [**--cert-not-after**=<time|duration>]
[**--not-before**=<time|duration>] [**--not-after**=<time|duration>]
[**--password-file**=<file>] [**--provisioner-password-file**=<file>]
[**--output-file**=<file>] [**--key**=<file>] [**--san**=<SAN>] [**--revoke**]
[**--ca-url**=<uri>] [**--root**=<file>] [**--context**=<name>]`,
		Flags: []cli.Flag{
			cli.StringFlag{Name: "kid", Usage: "The provisioner <kid> to use."},
			cli.StringSliceFlag{Name: "san", Usage: "Add <dns|ip|email|uri> Subject Alternative Name(s) (SANs) that should be authorized. Use the '--san' flag multiple times to configure multiple SANs."},
			caConfigFlag,
			forceFlag,
			cli.StringFlag{Name: "not-before", Usage: "The <time|duration> when the token's validity period starts."},
			cli.StringFlag{Name: "not-after", Usage: "The <time|duration> when the token's validity period ends."},
			cli.StringFlag{Name: "cert-not-after", Usage: "The <time|duration> when the certificate validity period ends (used in SSH tokens only, as upstream)."},
			cli.StringFlag{Name: "cert-not-before", Usage: "The <time|duration> when the certificate validity period starts (used in SSH tokens only, as upstream)."},
			provisionerFlag,
			passwordFileFlag,
			provisionerPasswordFileFlag,
			kmsFlag,
			cli.StringFlag{Name: "key", Usage: "The private key <file> used to sign the JWT: a JWK, encrypted or not (the provisioner's key, decrypted once, saves a key derivation per token)."},
			cli.StringFlag{Name: "output-file", Usage: "The destination <file> of the generated one-time token."},
			cli.BoolFlag{Name: "revoke", Usage: "Create a token for authorizing 'Revoke' requests."},
			cli.BoolFlag{Name: "renew", Usage: "Create a token for authorizing 'renew' requests (not supported by the test client)."},
			cli.BoolFlag{Name: "rekey", Usage: "Create a token for authorizing 'rekey' requests (not supported by the test client)."},
			cli.BoolFlag{Name: "ssh", Usage: "Create a token for authorizing an SSH certificate signing request (not supported by the test client)."},
			cli.BoolFlag{Name: "host", Usage: "Create a token for authorizing an SSH host certificate (not supported by the test client)."},
			cli.StringFlag{Name: "x5c-cert", Usage: "Certificate (chain) <file> for an X5C token (not supported by the test client)."},
			cli.StringFlag{Name: "x5c-key", Usage: "Private key <file> for an X5C token (not supported by the test client)."},
			offlineFlag,
			caURLFlag,
			rootFlag,
			contextFlag,
			templateSetFlag,
			templateSetFileFlag,
		},
	}
}

func caTokenAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "kms", "renew", "rekey", "ssh", "host", "x5c-cert", "x5c-key", "offline", "set", "set-file"); err != nil {
		return err
	}
	if err := errs.NumberOfArguments(ctx, 1); err != nil {
		return err
	}
	req := tokenRequest{kind: signToken, subject: ctx.Args().Get(0), sans: ctx.StringSlice("san")}
	if ctx.Bool("revoke") {
		if len(req.sans) > 0 {
			return errs.IncompatibleFlagWithFlag(ctx, "san", "revoke")
		}
		req.kind = revokeToken
	}

	var err error
	if req.caURL, err = parseCaURL(ctx, true); err != nil {
		return err
	}
	if req.root, err = rootFile(ctx); err != nil {
		return err
	}

	var ok bool
	if req.notBefore, ok = parseTimeOrDuration(ctx.String("not-before")); !ok {
		return errs.InvalidFlagValue(ctx, "not-before", ctx.String("not-before"), "")
	}
	if req.notAfter, ok = parseTimeOrDuration(ctx.String("not-after")); !ok {
		return errs.InvalidFlagValue(ctx, "not-after", ctx.String("not-after"), "")
	}
	for _, f := range []string{"cert-not-before", "cert-not-after"} {
		if _, err := api.ParseTimeDuration(ctx.String(f)); err != nil {
			return errs.InvalidFlagValue(ctx, f, ctx.String(f), "")
		}
	}

	tok, err := newJWKToken(ctx, req)
	if err != nil {
		return err
	}
	if out := ctx.String("output-file"); out != "" {
		return fileutil.WriteFile(out, []byte(tok), 0o600)
	}
	fmt.Println(tok)
	return nil
}

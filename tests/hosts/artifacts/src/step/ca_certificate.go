package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"strings"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/certificates/api"
	"github.com/smallstep/certificates/ca"
	"github.com/smallstep/certificates/pki"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/fileutil"
	"github.com/smallstep/cli-utils/token"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"
)

// `step ca certificate SUBJECT CRT KEY`: the key is generated here and
// never leaves the host; the CSR is signed by the CA with a one-time token
// (--token / STEP_TOKEN, or minted on the spot from a JWK provisioner).
// As upstream, the key is written unencrypted with mode 0600 and the
// certificate file holds the chain (leaf, then intermediate).

func caCertificateCommand() cli.Command {
	return cli.Command{
		Name:   "certificate",
		Action: command.ActionFunc(caCertificateAction),
		Usage:  "generate a new private key and certificate signed by the root certificate",
		UsageText: `**step ca certificate** <subject> <crt-file> <key-file>
[**--token**=<token>] [**--issuer**=<name>] [**--provisioner-password-file**=<file>]
[**--not-before**=<time|duration>] [**--not-after**=<time|duration>]
[**--san**=<SAN>] [**--kty**=<type>] [**--curve**=<curve>] [**--size**=<size>]
[**--force**] [**--password-file**=<file>] [**--ca-url**=<uri>] [**--root**=<file>] [**--context**=<name>]`,
		Flags: []cli.Flag{
			cli.StringSliceFlag{Name: "san", Usage: "Add <dns|ip|email|uri> Subject Alternative Name(s) (SANs) that should be authorized. The '--san' flag and the '--token' flag are mutually exclusive."},
			templateSetFlag,
			templateSetFileFlag,
			caConfigFlag,
			caURLFlag,
			rootFlag,
			cli.StringFlag{Name: "token", Usage: "The one-time <token> used to authenticate with the CA in order to create the certificate."},
			contextFlag,
			provisionerFlag,
			provisionerPasswordFileFlag,
			cli.StringFlag{Name: "kty", Value: "EC", Usage: "The <kty> to build the certificate upon: EC (default), OKP or RSA."},
			cli.StringFlag{Name: "crv, curve", Usage: "The elliptic <curve> to use for EC and OKP key types: P-256 (default), P-384, P-521 or Ed25519."},
			cli.IntFlag{Name: "size", Usage: "The <size> (in bits) of the key for RSA key types (default 2048)."},
			notAfterFlag,
			notBeforeFlag,
			cli.StringFlag{Name: "attestation-uri", Usage: "The KMS <uri> used for attestation (not supported by the test client)."},
			forceFlag,
			offlineFlag,
			passwordFileFlag,
			cli.BoolFlag{Name: "console", Usage: "Complete the flow while remaining inside the terminal (not supported by the test client)."},
			kmsFlag,
			cli.StringFlag{Name: "x5c-cert", Usage: "Certificate (chain) <file> for an X5C token (not supported by the test client)."},
			cli.StringFlag{Name: "x5c-key", Usage: "Private key <file> for an X5C token (not supported by the test client)."},
			cli.StringFlag{Name: "acme", Usage: "ACME directory <url> (not supported by the test client)."},
		},
	}
}

func caCertificateAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "set", "set-file", "attestation-uri", "offline", "console", "kms", "x5c-cert", "x5c-key", "acme"); err != nil {
		return err
	}
	if err := errs.MinMaxNumberOfArguments(ctx, 2, 3); err != nil {
		return err
	}
	if ctx.NArg() == 2 { // only valid with --attestation-uri upstream
		return errs.TooFewArguments(ctx)
	}
	subject, crtFile, keyFile := ctx.Args().Get(0), ctx.Args().Get(1), ctx.Args().Get(2)
	sans := ctx.StringSlice("san")

	tok := ctx.String("token")
	if tok == "" {
		var err error
		if tok, err = tokenForCertificate(ctx, subject, sans); err != nil {
			return err
		}
	}
	jwt, err := token.ParseInsecure(tok)
	if err != nil {
		return err
	}

	key, csr, err := newKeyAndCSR(ctx, jwt, sans)
	if err != nil {
		return err
	}
	switch jwt.Payload.Type() {
	case token.JWK:
		if ctx.String("token") != "" && len(sans) > 0 {
			return errs.MutuallyExclusiveFlags(ctx, "token", "san")
		}
		if !strings.EqualFold(subject, csr.Subject.CommonName) {
			return errors.Errorf("token subject '%s' and argument '%s' do not match", csr.Subject.CommonName, subject)
		}
	default:
		return errors.New("token is not supported by the test client (JWK provisioner tokens only)")
	}

	client, err := clientForToken(ctx, jwt)
	if err != nil {
		return err
	}
	notBefore, err := api.ParseTimeDuration(ctx.String("not-before"))
	if err != nil {
		return errs.InvalidFlagValue(ctx, "not-before", ctx.String("not-before"), "")
	}
	notAfter, err := api.ParseTimeDuration(ctx.String("not-after"))
	if err != nil {
		return errs.InvalidFlagValue(ctx, "not-after", ctx.String("not-after"), "")
	}
	resp, err := client.Sign(&api.SignRequest{
		CsrPEM:    api.CertificateRequest{CertificateRequest: csr},
		OTT:       tok,
		NotBefore: notBefore,
		NotAfter:  notAfter,
	})
	if err != nil {
		return err
	}
	if err := writeChain(crtFile, resp); err != nil {
		return err
	}
	if _, err := pemutil.Serialize(key, pemutil.ToFile(keyFile, 0o600)); err != nil {
		return err
	}
	ui.PrintSelected("Certificate", crtFile)
	ui.PrintSelected("Private Key", keyFile)
	return nil
}

// tokenForCertificate mints a sign token when no --token was given.
func tokenForCertificate(ctx *cli.Context, subject string, sans []string) (string, error) {
	caURL, err := parseCaURL(ctx, false)
	if err != nil {
		return "", err
	}
	if caURL == "" {
		return "", errs.RequiredUnlessFlag(ctx, "ca-url", "token")
	}
	root := ctx.String("root")
	if root == "" {
		root = pki.GetRootCAPath()
		if _, err := os.Stat(root); err != nil {
			return "", errs.RequiredUnlessFlag(ctx, "root", "token")
		}
	}
	return newJWKToken(ctx, tokenRequest{kind: signToken, subject: subject, sans: sans, caURL: caURL, root: root})
}

// clientForToken trusts the root named by the token ("sha" claim) and uses
// its audience as CA URL when --ca-url is unset, so a token alone suffices.
func clientForToken(ctx *cli.Context, jwt *token.JSONWebToken) (*ca.Client, error) {
	caURL, err := parseCaURL(ctx, false)
	if err != nil {
		return nil, err
	}
	var opts []ca.ClientOption
	if aud := jwt.Payload.Audience; jwt.Payload.SHA != "" && len(aud) > 0 && strings.HasPrefix(strings.ToLower(aud[0]), "http") {
		if caURL == "" {
			caURL = aud[0]
		}
		opts = append(opts, ca.WithRootSHA256(jwt.Payload.SHA))
	} else {
		if caURL == "" {
			return nil, errs.RequiredFlag(ctx, "ca-url")
		}
		root, err := rootFile(ctx)
		if err != nil {
			return nil, err
		}
		opts = append(opts, ca.WithRootFile(root))
	}
	ui.PrintSelected("CA", caURL)
	return ca.NewClient(caURL, opts...)
}

// newKeyAndCSR generates the key (--kty/--curve/--size, EC P-256 by default)
// and a CSR whose subject is the token's and whose SANs are --san plus the
// token's "sans".
func newKeyAndCSR(ctx *cli.Context, jwt *token.JSONWebToken, sans []string) (crypto.PrivateKey, *x509.CertificateRequest, error) {
	kty, crv, size, err := keyDetails(ctx)
	if err != nil {
		return nil, nil, err
	}
	key, err := keyutil.GenerateKey(kty, crv, size)
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	var all []string
	for _, s := range append(append([]string{}, sans...), jwt.Payload.SANs...) {
		if s != "" && !seen[s] {
			seen[s] = true
			all = append(all, s)
		}
	}
	dns, ips, emails, uris := x509util.SplitSANs(all)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject:        pkix.Name{CommonName: jwt.Payload.Subject},
		DNSNames:       dns,
		IPAddresses:    ips,
		EmailAddresses: emails,
		URIs:           uris,
	}, key)
	if err != nil {
		return nil, nil, errors.Wrap(err, "error creating certificate request")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, nil, errors.Wrap(err, "error parsing certificate request")
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, nil, errors.Wrap(err, "error signing certificate request")
	}
	return key, csr, nil
}

// keyDetails applies upstream's rules for --kty, --curve and --size.
func keyDetails(ctx *cli.Context) (kty, crv string, size int, err error) {
	kty, crv, size = ctx.String("kty"), ctx.String("curve"), ctx.Int("size")
	if !ctx.IsSet("kty") {
		switch {
		case ctx.IsSet("curve"):
			return "", "", 0, errs.RequiredWithFlag(ctx, "curve", "kty")
		case ctx.IsSet("size"):
			return "", "", 0, errs.RequiredWithFlag(ctx, "size", "kty")
		}
		return "EC", "P-256", 0, nil
	}
	switch kty {
	case "RSA":
		if ctx.IsSet("curve") {
			return "", "", 0, errs.IncompatibleFlagValue(ctx, "curve", "kty", kty)
		}
		if !ctx.IsSet("size") {
			size = 2048
		}
		if size < 2048 {
			return "", "", 0, errs.MinSizeInsecureFlag(ctx, "size", "2048")
		}
	case "EC":
		if ctx.IsSet("size") {
			return "", "", 0, errs.IncompatibleFlagValue(ctx, "size", "kty", kty)
		}
		if !ctx.IsSet("curve") {
			crv = "P-256"
		}
		switch crv {
		case "P-256", "P-384", "P-521":
		default:
			return "", "", 0, errs.IncompatibleFlagValueWithFlagValue(ctx, "kty", kty, "curve", crv, "P-256, P-384, P-521")
		}
	case "OKP":
		if ctx.IsSet("size") {
			return "", "", 0, errs.IncompatibleFlagValue(ctx, "size", "kty", kty)
		}
		switch crv {
		case "", "Ed25519":
			crv = "Ed25519"
		default:
			return "", "", 0, errs.IncompatibleFlagValueWithFlagValue(ctx, "kty", kty, "curve", crv, "Ed25519")
		}
	default:
		return "", "", 0, errs.InvalidFlagValue(ctx, "kty", kty, "RSA, EC, OKP")
	}
	return kty, crv, size, nil
}

// writeChain writes the response's chain, leaf first, with mode 0600.
func writeChain(file string, resp *api.SignResponse) error {
	chain := resp.CertChainPEM
	if len(chain) == 0 {
		chain = []api.Certificate{resp.ServerPEM, resp.CaPEM}
	}
	var data []byte
	for _, c := range chain {
		block, err := pemutil.Serialize(c.Certificate)
		if err != nil {
			return errors.Wrap(err, "error serializing from step-ca API response")
		}
		data = append(data, pem.EncodeToMemory(block)...)
	}
	return fileutil.WriteFile(file, data, 0o600)
}

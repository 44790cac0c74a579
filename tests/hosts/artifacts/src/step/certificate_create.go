package main

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"time"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/fileutil"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/keyutil"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"
)

// `step certificate create SUBJECT CRT KEY`: a new key and a certificate made
// locally, without a CA server: a root (--profile root-ca), an intermediate
// signed by a root (--profile intermediate-ca --ca --ca-key) or a leaf signed
// by an intermediate (the default profile). As upstream, the private key is
// encrypted with a password unless --no-password --insecure is given, both
// files are written with mode 0600, and the default validity is 24 hours for
// a leaf and 10 years for a CA.

const (
	leafValidity = 24 * time.Hour
	caValidity   = 10 * 365 * 24 * time.Hour
)

func certificateCreateCommand() cli.Command {
	return cli.Command{
		Name:   "create",
		Action: command.ActionFunc(certificateCreateAction),
		Usage:  "create a certificate or certificate signing request",
		UsageText: `**step certificate create** <subject> <crt-file> <key-file>
[**--kms**=<uri>] [**--csr**] [**--profile**=<profile>]
[**--template**=<file>] [**--set**=<key=value>] [**--set-file**=<file>]
[**--not-before**=<duration>] [**--not-after**=<duration>]
[**--password-file**=<file>] [**--ca**=<issuer-cert>]
[**--ca-key**=<issuer-key>] [**--ca-password-file**=<file>]
[**--san**=<SAN>] [**--bundle**] [**--key**=<file>]
[**--kty**=<type>] [**--curve**=<curve>] [**--size**=<size>]
[**--no-password**] [**--subtle**] [**--insecure**] [**--force**]`,
		Flags: []cli.Flag{
			kmsFlag,
			cli.BoolFlag{Name: "csr", Usage: "Generate a certificate signing request instead of a certificate (not supported by the test client)."},
			cli.StringFlag{Name: "profile", Value: "leaf", Usage: "The certificate <profile>: leaf, root-ca or intermediate-ca (self-signed is not supported by the test client)."},
			cli.StringFlag{Name: "template", Usage: "The certificate template <file> (not supported by the test client)."},
			templateSetFlag,
			templateSetFileFlag,
			notBeforeFlag,
			notAfterFlag,
			passwordFileFlag,
			cli.StringFlag{Name: "ca", Usage: "The certificate authority used to issue the new certificate (PEM <file>)."},
			cli.StringFlag{Name: "ca-key", Usage: "The certificate authority private key used to sign the new certificate (PEM <file>)."},
			cli.StringFlag{Name: "ca-password-file", Usage: "The path to the <file> containing the password to decrypt the CA private key."},
			cli.StringSliceFlag{Name: "san", Usage: "Add <dns|ip|email|uri> Subject Alternative Name(s) (SANs). Use the '--san' flag multiple times to configure multiple SANs."},
			cli.BoolFlag{Name: "bundle", Usage: "Bundle the new leaf certificate with the signing certificate."},
			cli.StringFlag{Name: "key", Usage: "The <file> of the private key to use instead of a new one (not supported by the test client)."},
			cli.StringFlag{Name: "kty", Usage: "The <kty> to build the certificate upon: EC, OKP or RSA."},
			cli.StringFlag{Name: "curve, crv", Usage: "The elliptic <curve> to use for EC and OKP key types."},
			cli.IntFlag{Name: "size", Usage: "The <size> (in bits) of the key for RSA key types."},
			cli.BoolFlag{Name: "no-password", Usage: "Do not ask for a password to encrypt the private key. Requires **--insecure**."},
			cli.BoolFlag{Name: "subtle", Usage: "Allow subtle, non-standard choices (not supported by the test client)."},
			cli.BoolFlag{Name: "insecure", Usage: "Allow insecure choices such as **--no-password**."},
			forceFlag,
		},
	}
}

// createRequest holds what certificateCreateAction read and checked.
type createRequest struct {
	subject, crtFile, keyFile string
	profile                   string
	sans                      []string
	notBefore, notAfter       time.Time
}

func certificateCreateAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "kms", "csr", "template", "set", "set-file", "key", "subtle"); err != nil {
		return err
	}
	if err := errs.NumberOfArguments(ctx, 3); err != nil {
		return err
	}
	req := createRequest{
		subject: ctx.Args().Get(0), crtFile: ctx.Args().Get(1), keyFile: ctx.Args().Get(2),
		profile: ctx.String("profile"), sans: ctx.StringSlice("san"),
	}
	if ctx.Bool("no-password") && !ctx.Bool("insecure") {
		return errs.RequiredInsecureFlag(ctx, "no-password")
	}
	if ctx.Bool("no-password") && ctx.String("password-file") != "" {
		return errs.IncompatibleFlagWithFlag(ctx, "no-password", "password-file")
	}
	template, validity, err := profileTemplate(ctx, req.profile)
	if err != nil {
		return err
	}
	if err := parseValidity(ctx, &req, validity); err != nil {
		return err
	}

	kty, crv, size, err := keyDetails(ctx)
	if err != nil {
		return err
	}
	key, err := keyutil.GenerateKey(kty, crv, size)
	if err != nil {
		return err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return errors.Errorf("key of type %T cannot sign", key)
	}

	parent, parentKey, err := issuer(ctx, req.profile)
	if err != nil {
		return err
	}
	cert, err := newCertificate(req, template, signer, parent, parentKey)
	if err != nil {
		return err
	}

	keyPEM, err := serializeKey(ctx, key)
	if err != nil {
		return err
	}
	crtPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if ctx.Bool("bundle") && req.profile == "leaf" {
		crtPEM = append(crtPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: parent.Raw})...)
	}
	if err := fileutil.WriteFile(req.crtFile, crtPEM, 0o600); err != nil {
		return err
	}
	if err := fileutil.WriteFile(req.keyFile, keyPEM, 0o600); err != nil {
		return err
	}
	ui.Printf("Your certificate has been saved in %s.\n", req.crtFile)
	ui.Printf("Your private key has been saved in %s.\n", req.keyFile)
	return nil
}

// profileTemplate is upstream's template and default validity for a profile.
func profileTemplate(ctx *cli.Context, profile string) (string, time.Duration, error) {
	switch profile {
	case "leaf":
		return x509util.DefaultLeafTemplate, leafValidity, nil
	case "intermediate-ca":
		return x509util.DefaultIntermediateTemplate, caValidity, nil
	case "root-ca":
		return x509util.DefaultRootTemplate, caValidity, nil
	case "self-signed":
		return "", 0, errors.New("profile 'self-signed' of 'step certificate create' is not supported by the test client")
	}
	return "", 0, errs.InvalidFlagValue(ctx, "profile", profile, "leaf, intermediate-ca, root-ca, self-signed")
}

func parseValidity(ctx *cli.Context, req *createRequest, validity time.Duration) error {
	var ok bool
	if req.notBefore, ok = parseTimeOrDuration(ctx.String("not-before")); !ok {
		return errs.InvalidFlagValue(ctx, "not-before", ctx.String("not-before"), "")
	}
	if req.notAfter, ok = parseTimeOrDuration(ctx.String("not-after")); !ok {
		return errs.InvalidFlagValue(ctx, "not-after", ctx.String("not-after"), "")
	}
	if req.notBefore.IsZero() {
		req.notBefore = time.Now()
	}
	if req.notAfter.IsZero() {
		req.notAfter = req.notBefore.Add(validity)
	}
	if !req.notAfter.After(req.notBefore) {
		return errors.New("the certificate's --not-after must be later than its --not-before")
	}
	return nil
}

// issuer reads --ca and --ca-key (decrypted with --ca-password-file or a
// prompt); a root signs itself, every other profile needs both flags.
func issuer(ctx *cli.Context, profile string) (*x509.Certificate, crypto.Signer, error) {
	caFile, caKeyFile := ctx.String("ca"), ctx.String("ca-key")
	if profile == "root-ca" {
		if caFile != "" || caKeyFile != "" {
			return nil, nil, errors.New("flags '--ca' and '--ca-key' are not allowed with '--profile root-ca'")
		}
		return nil, nil, nil
	}
	if caFile == "" {
		return nil, nil, errs.RequiredWithFlagValue(ctx, "profile", profile, "ca")
	}
	if caKeyFile == "" {
		return nil, nil, errs.RequiredWithFlagValue(ctx, "profile", profile, "ca-key")
	}
	parent, err := pemutil.ReadCertificate(caFile)
	if err != nil {
		return nil, nil, err
	}
	opts := []pemutil.Options{pemutil.WithPasswordPrompt(
		fmt.Sprintf("Please enter the password to decrypt %s", caKeyFile),
		func(s string) ([]byte, error) { return ui.PromptPassword(s) })}
	if pf := ctx.String("ca-password-file"); pf != "" {
		opts = append(opts, pemutil.WithPasswordFile(pf))
	}
	key, err := pemutil.Read(caKeyFile, opts...)
	if err != nil {
		return nil, nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, nil, errors.Errorf("the key in %s cannot sign", caKeyFile)
	}
	if !publicKeysEqual(signer.Public(), parent.PublicKey) {
		return nil, nil, errors.Errorf("the key in %s does not match the certificate %s", caKeyFile, caFile)
	}
	return parent, signer, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

// newCertificate applies the profile's template to a CSR of the new key and
// signs the result with the issuer (or with the new key, for a root).
func newCertificate(req createRequest, template string, key crypto.Signer, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
	sans := req.sans
	if len(sans) == 0 && req.profile == "leaf" {
		sans = []string{req.subject}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: req.subject}}, key)
	if err != nil {
		return nil, errors.Wrap(err, "error creating certificate request")
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, errors.Wrap(err, "error parsing certificate request")
	}
	cert, err := x509util.NewCertificate(csr, x509util.WithTemplate(template, x509util.CreateTemplateData(req.subject, sans)))
	if err != nil {
		return nil, err
	}
	tmpl := cert.GetCertificate()
	tmpl.NotBefore, tmpl.NotAfter = req.notBefore, req.notAfter
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	return x509util.CreateCertificate(tmpl, parent, key.Public(), parentKey)
}

// serializeKey encodes the new key, encrypted with --password-file or a
// prompted password unless --no-password --insecure.
func serializeKey(ctx *cli.Context, key crypto.PrivateKey) ([]byte, error) {
	var opts []pemutil.Options
	if !ctx.Bool("no-password") {
		var pass []byte
		var err error
		if pf := ctx.String("password-file"); pf != "" {
			pass, err = readPasswordFile(pf)
		} else {
			pass, err = ui.PromptPassword("Please enter the password to encrypt the private key")
		}
		if err != nil {
			return nil, err
		}
		opts = append(opts, pemutil.WithPassword(pass))
	}
	block, err := pemutil.Serialize(key, opts...)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(block), nil
}

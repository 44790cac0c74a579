package main

import (
	"crypto/tls"
	"crypto/x509"
	"math/big"
	"net/http"
	"strconv"
	"strings"

	"github.com/pkg/errors"
	"github.com/urfave/cli"
	"golang.org/x/crypto/ocsp"

	"github.com/smallstep/certificates/api"
	"github.com/smallstep/certificates/ca"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/token"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/x509util"
)

// `step ca revoke SERIAL --token OTT` or `step ca revoke --cert CRT --key KEY`:
// passive revocation at the CA, as upstream. The serial is read with Go's base
// prefixes (decimal by default) and sent in decimal; the token's subject must
// be that serial. Success is reported on stderr, stdout stays empty. Without
// --token (and without --cert/--key) upstream mints a revoke token itself: the
// test client asks for one (`step ca token SERIAL --revoke`).

func caRevokeCommand() cli.Command {
	return cli.Command{
		Name:   "revoke",
		Action: command.ActionFunc(caRevokeAction),
		Usage:  "revoke a certificate",
		UsageText: `**step ca revoke** <serial-number>
[**--cert**=<file>] [**--key**=<file>] [**--token**=<ott>]
[**--reason**=<string>] [**--reasonCode**=<code>] [**--offline**]
[**--ca-url**=<uri>] [**--root**=<file>] [**--context**=<name>]`,
		Flags: []cli.Flag{
			cli.StringFlag{Name: "cert", Usage: "The path to the <cert> that should be revoked."},
			cli.StringFlag{Name: "key", Usage: "The <path> to the key corresponding to the cert that should be revoked."},
			cli.StringFlag{Name: "token", Usage: "The one-time <token> used to authenticate with the CA in order to revoke the certificate."},
			cli.StringFlag{Name: "reason", Usage: "The <string> representing the reason for which the cert is being revoked."},
			cli.StringFlag{Name: "reasonCode", Usage: "The <reasonCode> specifies the reason for revocation - chose from a list of common revocation reasons (a number 0-10 or a name)."},
			caConfigFlag,
			offlineFlag,
			caURLFlag,
			rootFlag,
			contextFlag,
		},
	}
}

func caRevokeAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "offline"); err != nil {
		return err
	}
	code, err := reasonCode(ctx.String("reasonCode"))
	if err != nil {
		return err
	}
	crtFile, keyFile, tok := ctx.String("cert"), ctx.String("key"), ctx.String("token")
	switch {
	case crtFile != "" && keyFile == "":
		return errs.RequiredWithFlag(ctx, "cert", "key")
	case keyFile != "" && crtFile == "":
		return errs.RequiredWithFlag(ctx, "key", "cert")
	}
	req := &api.RevokeRequest{Reason: ctx.String("reason"), ReasonCode: code, Passive: true}

	if crtFile != "" && tok == "" {
		if ctx.NArg() > 0 {
			return errs.TooManyArguments(ctx)
		}
		return revokeOverMTLS(ctx, req, crtFile, keyFile)
	}
	if err := errs.NumberOfArguments(ctx, 1); err != nil {
		return err
	}
	serial, ok := new(big.Int).SetString(ctx.Args().Get(0), 0)
	if !ok {
		return errors.Errorf("'%s' is not a valid serial number - use a base 10 representation or add a prefix indicating the base", ctx.Args().Get(0))
	}
	req.Serial = serial.String()
	if tok == "" {
		return errors.New("minting a revoke token is not supported by the test client: pass --token (step ca token <serial> --revoke)")
	}
	jwt, err := token.ParseInsecure(tok)
	if err != nil {
		return err
	}
	if !strings.EqualFold(jwt.Payload.Subject, req.Serial) {
		return errors.Errorf("token subject '%s' and serial number '%s' do not match", jwt.Payload.Subject, req.Serial)
	}
	client, err := clientForToken(ctx, jwt)
	if err != nil {
		return err
	}
	req.OTT = tok
	if _, err := client.Revoke(req, nil); err != nil {
		return err
	}
	ui.Printf("Certificate with Serial Number %s has been revoked.\n", req.Serial)
	return nil
}

// revokeOverMTLS revokes the certificate in crtFile, authenticated by itself.
func revokeOverMTLS(ctx *cli.Context, req *api.RevokeRequest, crtFile, keyFile string) error {
	caURL, err := parseCaURL(ctx, true)
	if err != nil {
		return err
	}
	root, err := rootFile(ctx)
	if err != nil {
		return err
	}
	cert, err := tls.LoadX509KeyPair(crtFile, keyFile)
	if err != nil {
		return errors.Wrap(err, "error loading certificates")
	}
	if len(cert.Certificate) == 0 {
		return errors.New("error loading certificate: certificate chain is empty")
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return err
	}
	req.Serial = leaf.SerialNumber.String()
	rootCAs, err := x509util.ReadCertPool(root)
	if err != nil {
		return err
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{
			RootCAs: rootCAs, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		},
	}
	client, err := ca.NewClient(caURL, ca.WithTransport(tr))
	if err != nil {
		return err
	}
	ui.PrintSelected("CA", caURL)
	if _, err := client.Revoke(req, tr); err != nil {
		return err
	}
	ui.Printf("Certificate with Serial Number %s has been revoked.\n", req.Serial)
	return nil
}

// Revocation reasons by name (RFC 5280), spaces removed and case ignored.
var reasonCodes = map[string]int{
	"unspecified":          ocsp.Unspecified,
	"keycompromise":        ocsp.KeyCompromise,
	"cacompromise":         ocsp.CACompromise,
	"affiliationchanged":   ocsp.AffiliationChanged,
	"superseded":           ocsp.Superseded,
	"cessationofoperation": ocsp.CessationOfOperation,
	"certificatehold":      ocsp.CertificateHold,
	"removefromcrl":        ocsp.RemoveFromCRL,
	"privilegewithdrawn":   ocsp.PrivilegeWithdrawn,
	"aacompromise":         ocsp.AACompromise,
}

func reasonCode(value string) (int, error) {
	if value == "" {
		return ocsp.Unspecified, nil
	}
	if code, err := strconv.Atoi(value); err == nil {
		if code < ocsp.Unspecified || code > ocsp.AACompromise {
			return 0, errors.Errorf("reasonCode out of bounds. Got %d, but want value between %d and %d", code, ocsp.Unspecified, ocsp.AACompromise)
		}
		return code, nil
	}
	code, ok := reasonCodes[strings.ToLower(strings.ReplaceAll(value, " ", ""))]
	if !ok {
		return 0, errors.Errorf("unrecognized revocation reason code '%s'", value)
	}
	return code, nil
}

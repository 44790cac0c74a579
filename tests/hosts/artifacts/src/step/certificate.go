package main

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/pkg/errors"
	"github.com/urfave/cli"
	zx509 "github.com/zmap/zcrypto/x509"

	"github.com/smallstep/certinfo"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"go.step.sm/crypto/fingerprint"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"
)

// `step certificate inspect|verify|needs-renewal|fingerprint`: local checks
// on a certificate file (or a TLS server's chain given as https://host:port).
// Text output comes from certinfo and JSON from zcrypto, the libraries
// upstream uses (Debian's zmap/zcrypto stands in for smallstep's fork).

var rootsFlag = cli.StringFlag{
	Name:  "roots",
	Usage: "Root certificate(s) used to verify a remote server: a file, a comma-separated list of files, or a directory.",
}

func certificateInspectCommand() cli.Command {
	return cli.Command{
		Name:      "inspect",
		Action:    command.ActionFunc(certificateInspectAction),
		Usage:     "print certificate or CSR details in human readable format",
		UsageText: "**step certificate inspect** <crt-file> [**--bundle**] [**--short**] [**--format**=<format>] [**--roots**=<root-bundle>] [**--servername**=<servername>]",
		Flags: []cli.Flag{
			cli.StringFlag{Name: "format", Value: "text", Usage: "The output <format>: text, json or pem."},
			rootsFlag,
			serverNameFlag,
			cli.BoolFlag{Name: "bundle", Usage: "Print all certificates in the order in which they appear in the bundle."},
			cli.BoolFlag{Name: "short", Usage: "Print the certificate or CSR details in shorter and more friendly format."},
			cli.BoolFlag{Name: "insecure", Usage: "Use an insecure client to retrieve a remote peer certificate."},
		},
	}
}

func certificateInspectAction(ctx *cli.Context) error {
	if err := errs.MinMaxNumberOfArguments(ctx, 0, 1); err != nil {
		return err
	}
	format, short, bundle := ctx.String("format"), ctx.Bool("short"), ctx.Bool("bundle")
	if format != "text" && format != "json" && format != "pem" {
		return errs.InvalidFlagValue(ctx, "format", format, "text, json, pem")
	}
	if short && format != "text" {
		return errs.IncompatibleFlagWithFlag(ctx, "short", "format "+format)
	}
	crts, csr, err := readCertificates(ctx, ctx.Args().Get(0), ctx.Bool("insecure"))
	if err != nil {
		return err
	}
	if csr != nil {
		return printCSR(os.Stdout, csr, format, short)
	}
	if !bundle {
		crts = crts[:1]
	}
	return printCertificates(os.Stdout, crts, format, short)
}

func printCertificates(w io.Writer, crts []*x509.Certificate, format string, short bool) error {
	switch format {
	case "text":
		for _, c := range crts {
			text, err := certText(c, short)
			if err != nil {
				return err
			}
			fmt.Fprint(w, text)
		}
	case "json":
		var zcrts []*zx509.Certificate
		for _, c := range crts {
			z, err := zx509.ParseCertificate(c.Raw)
			if err != nil {
				return errors.WithStack(err)
			}
			zcrts = append(zcrts, z)
		}
		// One certificate prints as an object, a --bundle as a list.
		var v interface{} = zcrts
		if len(zcrts) == 1 { // upstream: an object whenever there is one certificate
			v = struct{ *zx509.Certificate }{zcrts[0]}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return errors.WithStack(enc.Encode(v))
	case "pem":
		for _, c := range crts {
			if err := pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
				return errors.WithStack(err)
			}
		}
	}
	return nil
}

func certText(c *x509.Certificate, short bool) (string, error) {
	if short {
		return certinfo.CertificateShortText(c)
	}
	return certinfo.CertificateText(c)
}

func printCSR(w io.Writer, csr *x509.CertificateRequest, format string, short bool) error {
	switch format {
	case "text":
		text, err := certinfo.CertificateRequestText(csr)
		if short {
			text, err = certinfo.CertificateRequestShortText(csr)
		}
		if err != nil {
			return err
		}
		fmt.Fprint(w, text)
		return nil
	case "json":
		z, err := zx509.ParseCertificateRequest(csr.Raw)
		if err != nil {
			return errors.WithStack(err)
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return errors.WithStack(enc.Encode(z))
	default:
		return errors.WithStack(pem.Encode(w, &pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr.Raw}))
	}
}

func certificateFingerprintCommand() cli.Command {
	return cli.Command{
		Name:      "fingerprint",
		Action:    command.ActionFunc(certificateFingerprintAction),
		Usage:     "print the fingerprint of a certificate",
		UsageText: "**step certificate fingerprint** <crt-file> [**--bundle**] [**--roots**=<root-bundle>] [**--servername**=<servername>] [**--format**=<format>] [**--sha1**] [**--insecure**]",
		Flags: []cli.Flag{
			rootsFlag,
			cli.BoolFlag{Name: "bundle", Usage: "Print all fingerprints in the order in which they appear in the bundle."},
			cli.BoolFlag{Name: "insecure", Usage: "Use an insecure client to retrieve a remote peer certificate."},
			serverNameFlag,
			cli.StringFlag{Name: "format", Value: "hex", Usage: `The <format> of the fingerprint, it must be "hex", "base64", "base64-url", "base64-raw", "base64-url-raw" or "emoji".`},
			cli.BoolFlag{Name: "sha1", Usage: "Use the SHA-1 hash algorithm to hash the certificate. Requires **--insecure** flag."},
		},
	}
}

func certificateFingerprintAction(ctx *cli.Context) error {
	if err := errs.MinMaxNumberOfArguments(ctx, 0, 1); err != nil {
		return err
	}
	insecure, bundle := ctx.Bool("insecure"), ctx.Bool("bundle")
	if ctx.Bool("sha1") && !insecure {
		return errs.RequiredInsecureFlag(ctx, "sha")
	}
	encoding, err := fingerprintEncoding(ctx.String("format"))
	if err != nil {
		return err
	}
	crts, csr, err := readCertificates(ctx, ctx.Args().Get(0), insecure)
	if err != nil {
		return err
	}
	if csr != nil {
		crts = []*x509.Certificate{{Raw: csr.Raw}}
	}
	if !bundle {
		crts = crts[:1]
	}
	hash := crypto.SHA256
	if ctx.Bool("sha1") {
		hash = crypto.SHA1
	}
	for i, c := range crts {
		fp, err := fingerprint.New(c.Raw, hash, encoding)
		if err != nil {
			return err
		}
		if bundle {
			fmt.Printf("%d: %s\n", i, fp)
		} else {
			fmt.Println(fp)
		}
	}
	return nil
}

func fingerprintEncoding(format string) (fingerprint.Encoding, error) {
	switch strings.ToLower(strings.TrimSpace(format)) {
	case "hex":
		return fingerprint.HexFingerprint, nil
	case "base64":
		return fingerprint.Base64Fingerprint, nil
	case "base64url", "base64-url":
		return fingerprint.Base64URLFingerprint, nil
	case "base64urlraw", "base64url-raw", "base64-url-raw":
		return fingerprint.Base64RawURLFingerprint, nil
	case "base64raw", "base64-raw":
		return fingerprint.Base64RawFingerprint, nil
	case "emoji", "emojisum":
		return fingerprint.EmojiFingerprint, nil
	}
	return 0, errors.Errorf("error parsing fingerprint format: '%s' is not a valid fingerprint format", format)
}

func certificateVerifyCommand() cli.Command {
	return cli.Command{
		Name:      "verify",
		Action:    command.ActionFunc(certificateVerifyAction),
		Usage:     "verify a certificate",
		UsageText: "**step certificate verify** <crt-file> [**--host**=<host>] [**--roots**=<root-bundle>] [**--servername**=<servername>] [**--verbose**]",
		Flags: []cli.Flag{
			cli.StringFlag{Name: "host", Usage: "Check whether the certificate is for the specified host."},
			rootsFlag,
			cli.StringFlag{Name: "issuing-ca", Usage: "The certificate issuer CA <file> (only for OCSP/CRL, not supported by the test client)."},
			cli.BoolFlag{Name: "verify-ocsp", Usage: "Verify the certificate against its OCSP (not supported by the test client)."},
			cli.StringFlag{Name: "ocsp-endpoint", Usage: "The OCSP endpoint to use (not supported by the test client)."},
			cli.BoolFlag{Name: "verify-crl", Usage: "Verify the certificate against its CRL (not supported by the test client)."},
			cli.StringFlag{Name: "crl-endpoint", Usage: "The CRL endpoint to use (not supported by the test client)."},
			cli.BoolFlag{Name: "verbose, v", Usage: "Print result of certificate verification to stdout on success"},
			serverNameFlag,
			cli.BoolFlag{Name: "insecure", Usage: "Use an insecure client to retrieve a remote peer certificate."},
		},
	}
}

func certificateVerifyAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "issuing-ca", "verify-ocsp", "ocsp-endpoint", "verify-crl", "crl-endpoint"); err != nil {
		return err
	}
	if err := errs.NumberOfArguments(ctx, 1); err != nil {
		return err
	}
	file, host, roots := ctx.Args().Get(0), ctx.String("host"), ctx.String("roots")

	// The first certificate is the one verified; the rest are intermediates.
	var crts []*x509.Certificate
	if addr, isURL, err := remoteAddr(file); err != nil {
		return err
	} else if isURL {
		if crts, err = peerCertificates(addr, ctx.String("servername"), roots, false); err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(file)
		if err != nil {
			return errs.FileError(err, file)
		}
		for len(b) > 0 {
			var block *pem.Block
			if block, b = pem.Decode(b); block == nil {
				return errors.Errorf("%s contains an invalid PEM block", file)
			}
			if block.Type != "CERTIFICATE" {
				continue
			}
			c, err := x509.ParseCertificate(block.Bytes)
			if err != nil {
				return errors.WithStack(err)
			}
			crts = append(crts, c)
		}
		if len(crts) == 0 {
			return errors.Errorf("%s contains no PEM certificate blocks", file)
		}
	}
	intermediates := x509.NewCertPool()
	for _, c := range crts[1:] {
		intermediates.AddCert(c)
	}
	var rootPool *x509.CertPool // nil: the system's trust store, as upstream
	if roots != "" {
		var err error
		if rootPool, err = x509util.ReadCertPool(roots); err != nil {
			return errors.Wrapf(err, "failure to load root certificate pool from input path '%s'", roots)
		}
	}
	if _, err := crts[0].Verify(x509.VerifyOptions{
		DNSName:       host,
		Roots:         rootPool,
		Intermediates: intermediates,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return errors.Wrapf(err, "failed to verify certificate")
	}
	if ctx.Bool("verbose") {
		msg := "certificate validated against roots\n"
		if host != "" {
			msg += "certificate host name validated\n"
		}
		fmt.Println(msg + "certficiate is valid") // sic, upstream's spelling
	}
	return nil
}

// defaultRenewalThreshold is upstream's: renew after 66% of the lifetime.
const defaultRenewalThreshold = 66

func certificateNeedsRenewalCommand() cli.Command {
	return cli.Command{
		Name:      "needs-renewal",
		Action:    command.ActionFunc(certificateNeedsRenewalAction),
		Usage:     "Check if a certificate needs to be renewed",
		UsageText: "**step certificate needs-renewal** <cert-file or hostname> [**--expires-in**=<percent|duration>] [**--bundle**] [**--verbose**] [**--roots**=<root-bundle>] [**--servername**=<servername>]",
		Description: `Exits 0 if the certificate needs to be renewed, 1 if it does not, 2 if the
certificate file does not exist and 255 for any other error.`,
		Flags: []cli.Flag{
			cli.StringFlag{Name: "expires-in", Usage: `Check if the certificate expires within the given time window using <percent|duration> ("75%" or "2h45m").`},
			rootsFlag,
			cli.BoolFlag{Name: "bundle", Usage: "Check all certificates in the order in which they appear in the bundle."},
			cli.BoolFlag{Name: "verbose, v", Usage: "Print human readable affirmation if certificate requires renewal."},
			serverNameFlag,
		},
	}
}

// certificateNeedsRenewalAction answers with the exit code: 0 renew, 1 not
// yet, 2 no such file, 255 any other error.
func certificateNeedsRenewalAction(ctx *cli.Context) error {
	if err := errs.NumberOfArguments(ctx, 1); err != nil {
		return errs.NewExitError(err, 255)
	}
	file, expiresIn := ctx.Args().Get(0), ctx.String("expires-in")

	var crts []*x509.Certificate
	if addr, isURL, err := remoteAddr(file); err != nil {
		return errs.NewExitError(err, 255)
	} else if isURL {
		if crts, err = peerCertificates(addr, ctx.String("servername"), ctx.String("roots"), false); err != nil {
			return errs.NewExitError(err, 255)
		}
	} else {
		if _, err := os.Stat(file); os.IsNotExist(err) {
			return errs.NewExitError(err, 2)
		} else if err != nil {
			return errs.NewExitError(err, 255)
		}
		if crts, err = pemutil.ReadCertificateBundle(file); err != nil {
			return errs.NewExitError(err, 255)
		}
	}

	percent, window := defaultRenewalThreshold, time.Duration(0)
	isPercent := expiresIn == "" || strings.HasSuffix(expiresIn, "%")
	if isPercent && expiresIn != "" {
		p, err := strconv.Atoi(strings.TrimSuffix(expiresIn, "%"))
		if err != nil {
			return errs.NewExitError(errs.InvalidFlagValue(ctx, "expires-in", expiresIn, ""), 255)
		}
		if p > 100 || p < 0 {
			return errs.NewExitError(errs.InvalidFlagValueMsg(ctx, "expires-in", expiresIn, "value must be in range 0-100%"), 255)
		}
		percent = p
	} else if !isPercent {
		d, err := time.ParseDuration(expiresIn)
		if err != nil {
			return errs.NewExitError(errs.InvalidFlagValue(ctx, "expires-in", expiresIn, ""), 255)
		}
		window = d
	}

	verbose := ctx.Bool("verbose")
	for _, c := range crts {
		remaining := time.Until(c.NotAfter)
		due := window >= remaining
		if isPercent {
			used := (1 - remaining.Minutes()/c.NotAfter.Sub(c.NotBefore).Minutes()) * 100
			due = int(used) >= percent
		}
		if due {
			if verbose {
				fmt.Println("certificate needs renewal")
			}
			return nil
		}
		if !ctx.Bool("bundle") {
			break
		}
	}
	if verbose {
		return errs.NewExitError(errors.New("certificate does not need renewal"), 1)
	}
	return cli.NewExitError("", 1)
}

// readCertificates reads a PEM bundle (file, "-" for stdin, or a TLS server
// given as https://host[:port]); a file holding only a CSR returns the CSR.
func readCertificates(ctx *cli.Context, name string, insecure bool) ([]*x509.Certificate, *x509.CertificateRequest, error) {
	if name == "" {
		name = "-"
	}
	addr, isURL, err := remoteAddr(name)
	if err != nil {
		return nil, nil, err
	}
	if isURL {
		crts, err := peerCertificates(addr, ctx.String("servername"), ctx.String("roots"), insecure)
		return crts, nil, err
	}
	var b []byte
	if name == "-" {
		b, err = io.ReadAll(os.Stdin)
	} else {
		b, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, nil, errors.Wrapf(err, "error reading file %s", name)
	}
	crts, err := pemutil.ParseCertificateBundle(b)
	var pemErr *pemutil.InvalidPEMError
	switch {
	case errors.As(err, &pemErr) && pemErr.Type == pemutil.PEMTypeCertificate:
		csr, err := pemutil.ParseCertificateRequest(b)
		if err != nil {
			return nil, nil, errors.Errorf("file %s does not contain any valid CERTIFICATE or CERTIFICATE REQUEST blocks", name)
		}
		return nil, csr, nil
	case err != nil:
		return nil, nil, fmt.Errorf("error parsing %s: %w", name, err)
	}
	return crts, nil, nil
}

// remoteAddr recognises upstream's URL forms and returns host:port.
func remoteAddr(ref string) (string, bool, error) {
	ports := map[string]string{"tcp://": "443", "tls://": "443", "https://": "443", "smtps://": "465", "ldaps://": "636"}
	lower := strings.ToLower(ref)
	for prefix, port := range ports {
		if strings.HasPrefix(lower, prefix) {
			u, err := url.Parse(ref)
			if err != nil {
				return "", false, errors.Wrapf(err, "error parsing URL '%s'", ref)
			}
			if _, _, err := net.SplitHostPort(u.Host); err != nil {
				u.Host = net.JoinHostPort(u.Host, port)
			}
			return u.Host, true, nil
		}
	}
	return "", false, nil
}

// peerCertificates returns the chain a TLS server presents.
func peerCertificates(addr, serverName, roots string, insecure bool) ([]*x509.Certificate, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName, InsecureSkipVerify: insecure} //nolint:gosec // --insecure is explicit
	if roots != "" {
		pool, err := x509util.ReadCertPool(roots)
		if err != nil {
			return nil, errors.Wrapf(err, "failure to load root certificate pool from input path '%s'", roots)
		}
		conf.RootCAs = pool
	}
	conn, err := tls.Dial("tcp", addr, conf)
	if err != nil {
		return nil, errors.Wrapf(err, "failed to connect")
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates, nil
}

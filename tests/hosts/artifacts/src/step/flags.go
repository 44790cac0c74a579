package main

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"strings"
	"time"
	"unicode"

	"github.com/urfave/cli"

	"github.com/smallstep/certificates/pki"
	"github.com/smallstep/cli-utils/errs"
)

// Flags shared by several commands, with upstream's names and aliases.
var (
	caURLFlag = cli.StringFlag{
		Name:  "ca-url",
		Usage: "<URI> of the targeted Step Certificate Authority.",
	}
	rootFlag = cli.StringFlag{
		Name:  "root",
		Usage: "The path to the PEM <file> used as the root certificate authority.",
	}
	forceFlag = cli.BoolFlag{
		Name:  "f,force",
		Usage: "Force the overwrite of files without asking.",
	}
	contextFlag = cli.StringFlag{
		Name:  "context",
		Usage: "The context <name> to apply for the given command.",
	}
	// caConfigFlag is only meaningful with --offline (not implemented); it is
	// declared because `step ca init` writes "ca-config" into defaults.json.
	caConfigFlag = cli.StringFlag{
		Name:  "ca-config",
		Usage: "The certificate authority configuration <file>. Used only with --offline.",
	}
	offlineFlag = cli.BoolFlag{
		Name:  "offline",
		Usage: "Creates a certificate without contacting the certificate authority (not supported by the test client).",
	}
	provisionerFlag = cli.StringFlag{
		Name:  "provisioner,issuer",
		Usage: "The provisioner <name> to use.",
	}
	passwordFileFlag = cli.StringFlag{
		Name:  "password-file",
		Usage: "The path to the <file> containing the password to encrypt or decrypt the private key.",
	}
	provisionerPasswordFileFlag = cli.StringFlag{
		Name:  "provisioner-password-file",
		Usage: "The path to the <file> containing the password to decrypt the one-time token generating key.",
	}
	kmsFlag = cli.StringFlag{
		Name:  "kms",
		Usage: "The <uri> to configure a Cloud KMS or an HSM (not supported by the test client).",
	}
	notBeforeFlag = cli.StringFlag{
		Name:  "not-before",
		Usage: "The <time|duration> when the certificate validity period starts (RFC 3339 time or Go duration).",
	}
	notAfterFlag = cli.StringFlag{
		Name:  "not-after",
		Usage: "The <time|duration> when the certificate validity period ends (RFC 3339 time or Go duration).",
	}
	serverNameFlag = cli.StringFlag{
		Name:  "servername",
		Usage: "TLS Server Name Indication that should be sent to request a specific certificate from the server.",
	}
	// noContextFlag mirrors upstream's hidden flag: commands that carry it
	// (true by default) do not read $STEPPATH/config/defaults.json.
	noContextFlag = cli.BoolTFlag{
		Name:   "no-context",
		Usage:  "Do not apply context specific environment for this command.",
		Hidden: true,
	}
	templateSetFlag = cli.StringSliceFlag{
		Name:  "set",
		Usage: "The <key=value> used as template data (not supported by the test client).",
	}
	templateSetFileFlag = cli.StringFlag{
		Name:  "set-file",
		Usage: "The <file> with the template data (not supported by the test client).",
	}
)

// parseCaURL returns the --ca-url as scheme://host, requiring https like upstream.
func parseCaURL(ctx *cli.Context, required bool) (string, error) {
	raw := ctx.String("ca-url")
	if raw == "" {
		if required {
			return "", errs.RequiredFlag(ctx, "ca-url")
		}
		return "", nil
	}
	if !strings.Contains(raw, "://") {
		raw = "https://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", errs.InvalidFlagValueMsg(ctx, "ca-url", raw, "invalid URL")
	}
	if u.Scheme != "https" {
		return "", errs.InvalidFlagValueMsg(ctx, "ca-url", raw, "must have https scheme")
	}
	// An IPv6 address without brackets: add them, as upstream does.
	if _, _, err := net.SplitHostPort(u.Host); err != nil && strings.Contains(err.Error(), "too many colons") {
		if i := strings.LastIndex(u.Host, ":"); net.ParseIP(u.Host[:i]) != nil {
			u.Host = "[" + u.Host[:i] + "]:" + u.Host[i+1:]
		} else if net.ParseIP(u.Host) != nil {
			u.Host = "[" + u.Host + "]"
		}
	}
	return u.Scheme + "://" + u.Host, nil
}

// rootFile returns --root or, when it is unset, $STEPPATH/certs/root_ca.crt if
// that file exists; otherwise the flag is required.
func rootFile(ctx *cli.Context) (string, error) {
	if r := ctx.String("root"); r != "" {
		return r, nil
	}
	r := pki.GetRootCAPath()
	if _, err := os.Stat(r); err != nil {
		return "", errs.RequiredFlag(ctx, "root")
	}
	return r, nil
}

// parseTimeOrDuration reads an RFC 3339 time or a duration from now; "" is the zero time.
func parseTimeOrDuration(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, true
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err == nil {
		return t, true
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, false
	}
	return time.Now().Add(d), true
}

// readPasswordFile reads a password file, trimming trailing white space (upstream does).
func readPasswordFile(name string) ([]byte, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, errs.FileError(err, name)
	}
	return bytes.TrimRightFunc(b, unicode.IsSpace), nil
}

package main

import (
	"crypto"
	"crypto/tls"
	"encoding/base64"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/certificates/api"
	"github.com/smallstep/certificates/ca"
	"github.com/smallstep/certificates/pki"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/token"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/jose"
	"go.step.sm/crypto/pemutil"
	"go.step.sm/crypto/x509util"
)

// `step ca renew CRT KEY`: renews over mTLS with the current certificate
// (upstream's default), or with an x5c token signed by the current key when
// --mtls=false or the certificate has expired. Writes the chain over CRT
// (or --out) and then signals --pid / runs --exec.

func caRenewCommand() cli.Command {
	return cli.Command{
		Name:   "renew",
		Action: command.ActionFunc(caRenewAction),
		Usage:  "renew a certificate",
		UsageText: `**step ca renew** <crt-file> <key-file> [**--mtls**] [**--password-file**=<file>]
[**--out**=<file>] [**--expires-in**=<duration>] [**--force**] [**--pid**=<int>]
[**--pid-file**=<file>] [**--signal**=<int>] [**--exec**=<string>]
[**--ca-url**=<uri>] [**--root**=<file>] [**--context**=<name>]`,
		Flags: []cli.Flag{
			cli.BoolTFlag{Name: "mtls", Usage: "Use mTLS to renew a certificate. Use --mtls=false to force the token authorization flow instead."},
			caConfigFlag,
			forceFlag,
			offlineFlag,
			passwordFileFlag,
			kmsFlag,
			cli.StringFlag{Name: "out,output-file", Usage: "The new certificate <file> path. Defaults to overwriting the <crt-file> positional argument"},
			cli.StringFlag{Name: "expires-in", Usage: "The amount of time remaining before certificate expiration, at which point a renewal should be attempted; a random jitter (duration/20) is added."},
			cli.IntFlag{Name: "pid", Usage: "The process id to signal after the certificate has been renewed."},
			cli.StringFlag{Name: "pid-file", Usage: "The <file> from which to read the process id that will be signaled after the certificate has been renewed."},
			cli.IntFlag{Name: "signal", Value: int(syscall.SIGHUP), Usage: "The signal <number> to send to the selected PID. Default value is SIGHUP (1)"},
			cli.StringFlag{Name: "exec", Usage: "The <command> to run after the certificate has been renewed."},
			cli.BoolFlag{Name: "daemon", Usage: "Run the renew command as a daemon (not supported by the test client)."},
			cli.StringFlag{Name: "renew-period", Usage: "The period with which to schedule renewals in daemon mode (not supported by the test client)."},
			caURLFlag,
			rootFlag,
			contextFlag,
		},
	}
}

func caRenewAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "offline", "kms", "daemon", "renew-period"); err != nil {
		return err
	}
	if err := errs.NumberOfArguments(ctx, 2); err != nil {
		return err
	}
	crtFile, keyFile := ctx.Args().Get(0), ctx.Args().Get(1)
	outFile := ctx.String("out")
	if outFile == "" {
		outFile = crtFile
	}
	root := ctx.String("root")
	if root == "" {
		root = pki.GetRootCAPath()
	}
	caURL, err := parseCaURL(ctx, true)
	if err != nil {
		return err
	}

	var expiresIn time.Duration
	if s := ctx.String("expires-in"); s != "" {
		if expiresIn, err = time.ParseDuration(s); err != nil {
			return errs.InvalidFlagValue(ctx, "expires-in", s, "")
		}
	}
	pid, err := renewPid(ctx)
	if err != nil {
		return err
	}
	signum := ctx.Int("signal")
	if ctx.IsSet("signal") && signum <= 0 {
		return errs.InvalidFlagValue(ctx, "signal", strconv.Itoa(signum), "")
	}

	cert, err := loadKeyPair(crtFile, keyFile, ctx.String("password-file"))
	if err != nil {
		return err
	}
	if lifetime := cert.Leaf.NotAfter.Sub(cert.Leaf.NotBefore); expiresIn > lifetime {
		return errors.Errorf("flag '--expires-in' must be within (lower than) the certificate "+
			"validity period; expires-in=%v, cert-validity-period=%v", expiresIn, lifetime)
	}

	// Read the roots first: upstream fails on a bad --root even when not renewing.
	rootCAs, err := x509util.ReadCertPool(root)
	if err != nil {
		return err
	}

	// Do nothing while the certificate expires later than expires-in (+ jitter).
	if expiresIn > 0 {
		var jitter time.Duration
		if n := int64(expiresIn / 20); n > 0 {
			jitter = time.Duration(rand.Int63n(n)) //nolint:gosec // jitter, not crypto
		}
		if d := time.Until(cert.Leaf.NotAfter); d > expiresIn+jitter {
			ui.Printf("certificate not renewed: expires in %s\n", d.Round(time.Second))
			return nil
		}
	}

	tr := &http.Transport{
		Proxy:           http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12},
	}
	expired := time.Now().After(cert.Leaf.NotAfter)
	if !expired {
		tr.TLSClientConfig.Certificates = []tls.Certificate{cert}
	}
	client, err := ca.NewClient(caURL, ca.WithTransport(tr))
	if err != nil {
		return err
	}

	var resp *api.SignResponse
	if ctx.Bool("mtls") && !expired {
		resp, err = client.Renew(tr)
	} else {
		resp, err = renewWithToken(client, tr, cert)
	}
	if err != nil {
		return errors.Wrap(err, "error renewing certificate")
	}
	if err := writeChain(outFile, resp); err != nil {
		return errs.FileError(err, outFile)
	}
	ui.Printf("Your certificate has been saved in %s.\n", outFile)

	if pid > 0 {
		if err := syscall.Kill(pid, syscall.Signal(signum)); err != nil {
			return errors.Wrapf(err, "kill %d with signal %d failed", pid, signum)
		}
	}
	return runExec(ctx.String("exec"))
}

// renewPid reads --pid or --pid-file (mutually exclusive).
func renewPid(ctx *cli.Context) (int, error) {
	if ctx.IsSet("pid") && ctx.IsSet("pid-file") {
		return 0, errs.MutuallyExclusiveFlags(ctx, "pid", "pid-file")
	}
	pid := ctx.Int("pid")
	if ctx.IsSet("pid") && pid <= 0 {
		return 0, errs.InvalidFlagValue(ctx, "pid", strconv.Itoa(pid), "")
	}
	if f := ctx.String("pid-file"); f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return 0, errs.FileError(err, f)
		}
		if pid, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return 0, errs.Wrap(err, "error converting %s to integer process id", b)
		}
		if pid <= 0 {
			return 0, errs.InvalidFlagValue(ctx, "pid-file", strconv.Itoa(pid), "")
		}
	}
	return pid, nil
}

// loadKeyPair reads the certificate chain and its (possibly encrypted) key.
func loadKeyPair(crtFile, keyFile, passFile string) (tls.Certificate, error) {
	chain, err := pemutil.ReadCertificateBundle(crtFile)
	if err != nil {
		return tls.Certificate{}, errs.Wrap(err, "error reading certificate chain")
	}
	opts := []pemutil.Options{pemutil.WithFilename(keyFile)}
	if passFile != "" {
		opts = append(opts, pemutil.WithPasswordFile(passFile))
	}
	key, err := pemutil.Read(keyFile, opts...)
	if err != nil {
		return tls.Certificate{}, errs.Wrap(err, "error loading private key")
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return tls.Certificate{}, errors.Errorf("error loading private key: %s is not a private key", keyFile)
	}
	cert := tls.Certificate{PrivateKey: signer, Leaf: chain[0]}
	for _, c := range chain {
		cert.Certificate = append(cert.Certificate, c.Raw)
	}
	return cert, nil
}

// renewWithToken authorizes the renewal with a JWT carrying the current
// chain (x5cInsecure) signed by the current key; works after expiry too.
func renewWithToken(client *ca.Client, tr *http.Transport, cert tls.Certificate) (*api.SignResponse, error) {
	u, err := url.Parse(client.GetCaURL())
	if err != nil {
		return nil, errors.Errorf("error parsing CA URL: %s", client.GetCaURL())
	}
	claims, err := token.NewClaims(
		token.WithAudience(u.ResolveReference(&url.URL{Path: "/renew"}).String()),
		token.WithIssuer("step-ca-client/1.0"),
		token.WithSubject(cert.Leaf.Subject.CommonName),
	)
	if err != nil {
		return nil, errors.Wrap(err, "error creating authorization token")
	}
	var x5c []string
	for _, der := range cert.Certificate {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(der))
	}
	if claims.ExtraHeaders == nil {
		claims.ExtraHeaders = map[string]interface{}{}
	}
	claims.ExtraHeaders[jose.X5cInsecureKey] = x5c
	tok, err := claims.Sign("", cert.PrivateKey)
	if err != nil {
		return nil, errors.Wrap(err, "error signing authorization token")
	}
	// The token replaces the client certificate on this connection.
	tr.TLSClientConfig.Certificates = nil
	defer tr.CloseIdleConnections()
	return client.RenewWithToken(tok)
}

// runExec runs --exec like upstream: split on spaces, no shell.
func runExec(cmdline string) error {
	cmdline = strings.TrimSpace(cmdline)
	if cmdline == "" {
		return nil
	}
	parts := strings.Split(cmdline, " ")
	cmd := exec.Command(parts[0], parts[1:]...) //nolint:gosec // the operator's own command
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	return cmd.Run()
}

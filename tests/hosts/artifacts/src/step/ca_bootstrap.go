package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/certificates/ca"
	"github.com/smallstep/certificates/pki"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/fileutil"
	"github.com/smallstep/cli-utils/step"
	"github.com/smallstep/cli-utils/ui"
	"github.com/smallstep/truststore"
	"go.step.sm/crypto/pemutil"
)

// `step ca bootstrap --ca-url URL --fingerprint FP`: downloads the root from
// the CA (the client checks it against the fingerprint), then writes
// $STEPPATH/certs/root_ca.crt and $STEPPATH/config/defaults.json.

func caBootstrapCommand() cli.Command {
	return cli.Command{
		Name:   "bootstrap",
		Action: command.ActionFunc(caBootstrapAction),
		Usage:  "initialize the environment to use the CA commands",
		UsageText: `**step ca bootstrap** [**--ca-url**=<uri>] [**--fingerprint**=<fingerprint>]
[**--install**] [**--redirect-url**=<uri>] [**--force**]`,
		Flags: []cli.Flag{
			caURLFlag,
			cli.StringFlag{Name: "fingerprint", Usage: "The <fingerprint> of the targeted root certificate."},
			cli.BoolFlag{Name: "install", Usage: "Install the root certificate into the system's default trust store."},
			cli.StringFlag{Name: "team", Usage: "The team <name> used to bootstrap the environment (not supported by the test client)."},
			cli.StringFlag{Name: "team-authority", Usage: "The <sub-domain> of the certificate authority to bootstrap (not supported by the test client)."},
			cli.StringFlag{Name: "team-url", Usage: "The <url> step queries to retrieve initial team configuration (not supported by the test client)."},
			cli.StringFlag{Name: "redirect-url", Usage: "The <url> to open in the system browser when the OAuth flow is successful."},
			forceFlag,
			cli.StringFlag{Name: "context", Usage: "The <name> of the context for the new authority (not supported by the test client)."},
			cli.StringFlag{Name: "profile", Usage: "The <name> that will serve as the profile name for the context (not supported by the test client)."},
			cli.StringFlag{Name: "authority", Usage: "The <name> that will serve as the authority name for the context (not supported by the test client)."},
			noContextFlag,
		},
	}
}

// bootstrapDefaults is upstream's defaults.json as written by bootstrap.
type bootstrapDefaults struct {
	CA          string `json:"ca-url"`
	Fingerprint string `json:"fingerprint"`
	Root        string `json:"root"`
	Redirect    string `json:"redirect-url,omitempty"`
}

func caBootstrapAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "team", "team-authority", "team-url", "context", "profile", "authority"); err != nil {
		return err
	}
	caURL, err := parseCaURL(ctx, false)
	if err != nil {
		return err
	}
	fingerprint := strings.TrimSpace(ctx.String("fingerprint"))
	switch {
	case caURL == "":
		return errs.RequiredFlag(ctx, "ca-url")
	case fingerprint == "":
		return errs.RequiredFlag(ctx, "fingerprint")
	}

	client, err := ca.NewClient(caURL, ca.WithInsecure())
	if err != nil {
		return err
	}
	resp, err := client.Root(fingerprint) // fails unless the root matches
	if err != nil {
		return errors.Wrap(err, "error downloading root certificate")
	}

	warnIfConfigured()
	rootFile := pki.GetRootCAPath()
	configFile := step.DefaultsFile()
	for _, f := range []string{rootFile, configFile} {
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			return errs.FileError(err, f)
		}
	}
	if _, err := pemutil.Serialize(resp.RootPEM.Certificate, pemutil.ToFile(rootFile, 0o600)); err != nil {
		return err
	}
	ui.Printf("The root certificate has been saved in %s.\n", rootFile)

	b, err := json.MarshalIndent(bootstrapDefaults{
		CA:          caURL, // already https://host[:port]
		Fingerprint: fingerprint,
		Root:        rootFile,
		Redirect:    ctx.String("redirect-url"),
	}, "", "  ")
	if err != nil {
		return errors.Wrap(err, "error marshaling defaults.json")
	}
	if err := fileutil.WriteFile(configFile, b, 0o644); err != nil {
		return err
	}
	ui.Printf("The authority configuration has been saved in %s.\n", configFile)

	if ctx.Bool("install") {
		ui.Printf("Installing the root certificate in the system truststore... ")
		if err := truststore.InstallFile(rootFile); err != nil {
			ui.Println()
			return err
		}
		ui.Println("done.")
	}
	return nil
}

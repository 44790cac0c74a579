package main

import (
	"crypto/rand"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/certificates/cas/apiv1"
	"github.com/smallstep/certificates/pki"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/step"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/pemutil"
)

// `step ca init`: a standalone PKI and CA configuration written by the
// certificates/pki package, the same package upstream's command drives, so
// the $STEPPATH layout, key encryption, JWK provisioner, 10-year root and
// intermediate and the badgerv2 "db" stanza are upstream's own.

func caInitCommand() cli.Command {
	return cli.Command{
		Name:   "init",
		Action: command.ActionFunc(caInitAction),
		Usage:  "initialize the CA PKI",
		UsageText: `**step ca init** [**--root**=<file>] [**--key**=<file>] [**--key-password-file**=<file>]
[**--pki**] [**--ssh**] [**--helm**] [**--deployment-type**=<name>] [**--name**=<name>]
[**--dns**=<dns>] [**--address**=<address>] [**--provisioner**=<name>]
[**--admin-subject**=<string>] [**--provisioner-password-file**=<file>]
[**--password-file**=<file>] [**--with-ca-url**=<url>] [**--no-db**] [**--remote-management**] [**--acme**]`,
		Flags: []cli.Flag{
			// STEP_ROOT / STEP_KEY must not leak into init (upstream ignores them here).
			cli.StringFlag{Name: "root", Usage: "The path of an existing PEM <file> to be used as the root certificate authority.", EnvVar: step.IgnoreEnvVar},
			cli.StringFlag{Name: "key", Usage: "The path of an existing key <file> of the root certificate authority.", EnvVar: step.IgnoreEnvVar},
			cli.StringFlag{Name: "key-password-file", Usage: "The path to the <file> containing the password to decrypt the existing root certificate key."},
			cli.BoolFlag{Name: "pki", Usage: "Generate only the PKI without the CA configuration."},
			cli.BoolFlag{Name: "ssh", Usage: "Create keys to sign SSH certificates."},
			cli.BoolFlag{Name: "helm", Usage: "Generates a Helm values YAML to be used with step-certificates chart."},
			cli.StringFlag{Name: "deployment-type", Usage: "The <name> of the deployment type to use: only **standalone** in the test client."},
			cli.StringFlag{Name: "name", Usage: "The <name> of the new PKI."},
			cli.StringSliceFlag{Name: "dns", Usage: "The DNS <name> or IP address of the new CA. Use the '--dns' flag multiple times to configure multiple DNS names."},
			cli.StringFlag{Name: "address", Usage: "The <address> that the new CA will listen at."},
			cli.StringFlag{Name: "provisioner", Usage: "The <name> of the first provisioner."},
			cli.StringFlag{Name: "password-file", Usage: "The path to the <file> containing the password to encrypt the keys."},
			cli.StringFlag{Name: "provisioner-password-file", Usage: "The path to the <file> containing the password to encrypt the provisioner key."},
			cli.StringFlag{Name: "with-ca-url", Usage: "<URI> of the Step Certificate Authority to write in defaults.json"},
			cli.StringFlag{Name: "ra", Usage: "The registration authority <type> to use (not supported by the test client)."},
			kmsFlag,
			cli.StringFlag{Name: "issuer", Usage: "The registration authority issuer <url> to use (not supported by the test client)."},
			cli.BoolFlag{Name: "no-db", Usage: "Generate a CA configuration without the DB stanza. No persistence layer."},
			cli.StringFlag{Name: "context", Usage: "The <name> of the context for the new authority (not supported by the test client)."},
			cli.BoolFlag{Name: "remote-management", Usage: "Enable Remote Management. Defaults to false."},
			cli.BoolFlag{Name: "acme", Usage: "Create a default ACME provisioner. Defaults to false."},
			cli.StringFlag{Name: "admin-subject,admin-name", Usage: "The admin <subject> to use for generating admin credentials."},
			cli.StringFlag{Name: "profile", Usage: "The <name> that will serve as the profile name for the context (not supported by the test client)."},
			cli.StringFlag{Name: "authority", Usage: "The <name> that will serve as the authority name for the context (not supported by the test client)."},
			noContextFlag,
		},
	}
}

func caInitAction(ctx *cli.Context) error {
	if err := rejectUnsupportedFlags(ctx, "ra", "kms", "issuer", "context", "profile", "authority"); err != nil {
		return err
	}
	if err := errs.NumberOfArguments(ctx, 0); err != nil {
		return err
	}
	// Keys are only as good as the random source.
	if _, err := io.ReadFull(rand.Reader, make([]byte, 64)); err != nil {
		return errs.NewError("crypto/rand is unavailable: Read() failed with %#v", err)
	}

	root, key := ctx.String("root"), ctx.String("key")
	pkiOnly, noDB, helm := ctx.Bool("pki"), ctx.Bool("no-db"), ctx.Bool("helm")
	remote, acme := ctx.Bool("remote-management"), ctx.Bool("acme")
	adminSubject := ctx.String("admin-subject")
	switch {
	case root != "" && key == "":
		return errs.RequiredWithFlag(ctx, "root", "key")
	case root == "" && key != "":
		return errs.RequiredWithFlag(ctx, "key", "root")
	case pkiOnly && noDB:
		return errs.IncompatibleFlagWithFlag(ctx, "pki", "no-db")
	case pkiOnly && helm:
		return errs.IncompatibleFlagWithFlag(ctx, "pki", "helm")
	case remote && noDB:
		return errs.IncompatibleFlagWithFlag(ctx, "remote-management", "no-db")
	case acme && noDB:
		return errs.IncompatibleFlagWithFlag(ctx, "acme", "no-db")
	case adminSubject != "" && helm:
		return errs.IncompatibleFlagWithFlag(ctx, "admin-subject", "helm")
	case adminSubject != "" && !remote:
		return errors.New("flag '--admin-subject' is only supported when '--remote-management' is enabled")
	}

	var rootCrt *x509.Certificate
	var rootKey interface{}
	if root != "" {
		var opts []pemutil.Options
		if f := ctx.String("key-password-file"); f != "" {
			opts = append(opts, pemutil.WithPasswordFile(f))
		}
		var err error
		if rootCrt, err = pemutil.ReadCertificate(root); err != nil {
			return err
		}
		if rootKey, err = pemutil.Read(key, opts...); err != nil {
			return err
		}
	}

	var password string
	if f := ctx.String("password-file"); f != "" {
		b, err := readPasswordFile(f)
		if err != nil {
			return err
		}
		password = string(b)
	}
	// Without --provisioner-password-file the provisioner key gets the CA password.
	var provisionerPassword []byte
	if f := ctx.String("provisioner-password-file"); f != "" {
		var err error
		if provisionerPassword, err = readPasswordFile(f); err != nil {
			return err
		}
	}

	if err := checkDeploymentType(ctx); err != nil {
		return err
	}
	warnIfConfigured()

	// Prompts return the flag value straight away when it is set, so a fully
	// flagged init never waits for a terminal.
	ui.Println("What would you like to name your new PKI?", ui.WithValue(ctx.String("name")))
	name, err := ui.Prompt("(e.g. Smallstep)", ui.WithValidateNotEmpty(), ui.WithValue(ctx.String("name")))
	if err != nil {
		return err
	}

	var opts []pki.Option
	if pkiOnly {
		opts = append(opts, pki.WithPKIOnly())
	} else {
		ui.Println("What DNS names or IP addresses will clients use to reach your CA?", ui.WithSliceValue(ctx.StringSlice("dns")))
		dnsValue, err := ui.Prompt("(e.g. ca.example.com[,10.1.2.3,etc.])", ui.WithSliceValue(ctx.StringSlice("dns")))
		if err != nil {
			return err
		}
		dnsNames, err := splitDNSValue(dnsValue)
		if err != nil {
			return err
		}
		if helm {
			ui.Println("What IP and port will your new CA bind to (it should match service.targetPort)?", ui.WithValue(ctx.String("address")))
		} else {
			ui.Println("What IP and port will your new CA bind to? (:443 will bind to 0.0.0.0:443)", ui.WithValue(ctx.String("address")))
		}
		address, err := ui.Prompt("(e.g. :443 or 127.0.0.1:443)", ui.WithValidateFunc(ui.Address()), ui.WithValue(ctx.String("address")))
		if err != nil {
			return err
		}
		ui.Println("What would you like to name the CA's first provisioner?", ui.WithValue(ctx.String("provisioner")))
		provisioner, err := ui.Prompt("(e.g. you@smallstep.com)", ui.WithValidateNotEmpty(), ui.WithValue(ctx.String("provisioner")))
		if err != nil {
			return err
		}
		opts = append(opts,
			pki.WithAddress(address),
			pki.WithCaURL(ctx.String("with-ca-url")),
			pki.WithDNSNames(dnsNames),
			pki.WithDeploymentType(pki.StandaloneDeployment),
			pki.WithProvisioner(provisioner),
			pki.WithSuperAdminSubject(adminSubject),
		)
		if ctx.Bool("ssh") {
			opts = append(opts, pki.WithSSH())
		}
		if noDB {
			opts = append(opts, pki.WithNoDB())
		}
		if helm {
			opts = append(opts, pki.WithHelm())
		}
		if remote {
			opts = append(opts, pki.WithAdmin())
		}
		if acme {
			opts = append(opts, pki.WithACME())
		}
	}

	if pkiOnly {
		ui.Println("Choose a password for your CA keys.", ui.WithValue(password))
	} else {
		ui.Println("Choose a password for your CA keys and first provisioner.", ui.WithValue(password))
	}
	p, err := pki.New(apiv1.Options{Type: apiv1.SoftCAS, IsCreator: true}, opts...)
	if err != nil {
		return err
	}
	pass, err := ui.PromptPasswordGenerate("[leave empty and we'll generate one]", ui.WithRichPrompt(), ui.WithValue(password))
	if err != nil {
		return err
	}

	if !pkiOnly {
		if len(provisionerPassword) == 0 {
			provisionerPassword = pass
		}
		if err := p.GenerateKeyPairs(provisionerPassword); err != nil {
			return err
		}
	}

	ui.Println()
	var rootCA *apiv1.CreateCertificateAuthorityResponse
	if rootCrt == nil {
		ui.Print("Generating root certificate... ")
		if rootCA, err = p.GenerateRootCertificate(name, name, name, pass); err != nil {
			return err
		}
		ui.Println("done!")
	} else {
		ui.Printf("Copying root certificate... ")
		// The existing root key is used to sign, never copied into STEPPATH.
		if err := p.WriteRootCertificate(rootCrt, nil, nil); err != nil {
			return err
		}
		rootCA = p.CreateCertificateAuthorityResponse(rootCrt, rootKey)
		ui.Println("done!")
	}

	ui.Printf("Generating intermediate certificate... ")
	// Upstream waits a second so the intermediate is never issued in the
	// same second as the root.
	time.Sleep(time.Second)
	if err := p.GenerateIntermediateCertificate(name, name, name, rootCA, pass); err != nil {
		return err
	}
	ui.Println("done!")

	if ctx.Bool("ssh") {
		ui.Printf("Generating user and host SSH certificate signing keys... ")
		if err := p.GenerateSSHSigningKeys(pass); err != nil {
			return err
		}
		ui.Println("done!")
	}
	if helm {
		return p.WriteHelmTemplate(os.Stdout)
	}
	return p.Save()
}

// checkDeploymentType accepts what upstream accepts for a standalone CA: an
// explicit "standalone", or nothing when every non-interactive flag is given
// (--name and --password-file, plus --dns, --address and --provisioner
// unless --pki).
func checkDeploymentType(ctx *cli.Context) error {
	switch t := strings.ToLower(ctx.String("deployment-type")); t {
	case "standalone":
		return nil
	case "":
		missing := ctx.String("name") == "" || ctx.String("password-file") == ""
		if !ctx.Bool("pki") {
			missing = missing || len(ctx.StringSlice("dns")) == 0 ||
				ctx.String("address") == "" || ctx.String("provisioner") == ""
		}
		if missing {
			return errors.New("interactive 'step ca init' is not supported by the test client: " +
				"pass --deployment-type standalone or all of --name, --password-file, " +
				"--dns, --address and --provisioner")
		}
		return nil
	case "linked", "hosted":
		return errors.Errorf("deployment type %q is not supported by the test client", t)
	default:
		return errs.InvalidFlagValue(ctx, "deployment-type", t, "standalone, linked or hosted")
	}
}

// warnIfConfigured repeats upstream's hint when $STEPPATH already holds a CA.
func warnIfConfigured() {
	if _, err := os.Stat(filepath.Join(step.BasePath(), "config", "ca.json")); err == nil {
		ui.Println("⚠️  It looks like step is already configured to connect to an authority.\n" +
			"You can use 'contexts' to easily switch between teams and authorities.\n" +
			"Learn more at https://smallstep.com/docs/step-cli/the-step-command#contexts.\n")
	}
}

// splitDNSValue turns "a,b c" into names, validating each and unbracketing IPv6.
func splitDNSValue(v string) ([]string, error) {
	validate := ui.DNS()
	var names []string
	for _, n := range strings.Split(strings.ReplaceAll(v, " ", ","), ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if err := validate(n); err != nil {
			return nil, err
		}
		if strings.HasPrefix(n, "[") && strings.HasSuffix(n, "]") {
			if ip := net.ParseIP(n[1 : len(n)-1]); ip != nil {
				n = ip.String()
			}
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, errors.New("dns must not be empty")
	}
	return names, nil
}

package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"

	"github.com/pkg/errors"
	"github.com/urfave/cli"

	"github.com/smallstep/certificates/ca"
	"github.com/smallstep/certificates/pki"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/errs"
	"github.com/smallstep/cli-utils/fileutil"
	"github.com/smallstep/cli-utils/ui"
	"go.step.sm/crypto/pemutil"
)

// `step ca health`, `step ca roots` and `step ca provisioner list`: small
// read-only calls to the CA over TLS verified with the root.

func caHealthCommand() cli.Command {
	return cli.Command{
		Name:      "health",
		Action:    command.ActionFunc(caHealthAction),
		Usage:     "get the status of the CA",
		UsageText: "**step ca health** [**--ca-url**=<uri>] [**--root**=<file>] [**--context**=<name>]",
		Flags:     []cli.Flag{caURLFlag, rootFlag, contextFlag},
	}
}

func caHealthAction(ctx *cli.Context) error {
	if err := errs.NumberOfArguments(ctx, 0); err != nil {
		return err
	}
	client, err := newCAClient(ctx)
	if err != nil {
		return err
	}
	r, err := client.HealthWithContext(context.Background())
	if err != nil {
		return err
	}
	fmt.Printf("%v\n", r.Status)
	return nil
}

func caRootsCommand() cli.Command {
	return cli.Command{
		Name:      "roots",
		Action:    command.ActionFunc(caRootsAction),
		Usage:     "download all the root certificates",
		UsageText: "**step ca roots** [<roots-file>] [**--ca-url**=<uri>] [**--root**=<file>] [**--context**=<name>]",
		Flags:     []cli.Flag{caURLFlag, forceFlag, rootFlag, contextFlag},
	}
}

func caRootsAction(ctx *cli.Context) error {
	if err := errs.MinMaxNumberOfArguments(ctx, 0, 1); err != nil {
		return err
	}
	client, err := newCAClient(ctx)
	if err != nil {
		return err
	}
	roots, err := client.Roots()
	if err != nil {
		return err
	}
	var data []byte
	for _, c := range roots.Certificates {
		block, err := pemutil.Serialize(c.Certificate)
		if err != nil {
			return err
		}
		data = append(data, pem.EncodeToMemory(block)...)
	}
	if out := ctx.Args().Get(0); out != "" {
		if err := fileutil.WriteFile(out, data, 0o600); err != nil {
			return err
		}
		ui.Printf("The root certificate bundle has been saved in %s.\n", out)
		return nil
	}
	fmt.Print(string(data))
	return nil
}

func caProvisionerCommand() cli.Command {
	return cli.Command{
		Name:      "provisioner",
		Usage:     "create and manage the certificate authority provisioners",
		UsageText: "**step ca provisioner** <subcommand> [arguments] [global-flags] [subcommand-flags]",
		Action:    groupAction,
		Subcommands: cli.Commands{{
			Name:      "list",
			Action:    command.ActionFunc(caProvisionerListAction),
			Usage:     "list provisioners configured in the CA",
			UsageText: "**step ca provisioner list** [**--ca-url**=<uri>] [**--root**=<file>] [**--context**=<name>]",
			Flags:     []cli.Flag{caURLFlag, rootFlag, contextFlag},
		}},
	}
}

func caProvisionerListAction(ctx *cli.Context) error {
	if err := errs.NumberOfArguments(ctx, 0); err != nil {
		return err
	}
	caURL, err := parseCaURL(ctx, true)
	if err != nil {
		return err
	}
	list, err := pki.GetProvisioners(caURL, ctx.String("root"))
	if err != nil {
		return errors.Wrap(err, "error getting the provisioners")
	}
	b, err := json.MarshalIndent(list, "", "   ")
	if err != nil {
		return errors.Wrap(err, "error marshaling provisioners")
	}
	fmt.Println(string(b))
	return nil
}

// newCAClient connects to --ca-url trusting only --root (or the default root).
func newCAClient(ctx *cli.Context) (*ca.Client, error) {
	caURL, err := parseCaURL(ctx, true)
	if err != nil {
		return nil, err
	}
	root, err := rootFile(ctx)
	if err != nil {
		return nil, err
	}
	return ca.NewClient(caURL, ca.WithRootFile(root))
}

// Command step is a step-compatible test client: a small subset of the
// Smallstep CLI (smallstep/cli 0.30.2), written on Smallstep's own libraries
// as Debian packages them, because the modern step CLI is not packaged.
//
// It keeps upstream's command names, flags, file layout, output and exit
// codes for the commands the deploys use; every other command fails with
// "not supported by the test client". It exists for the test harness only.
package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli"

	"github.com/smallstep/certificates/ca"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/command/version"
	"github.com/smallstep/cli-utils/fileutil"
	"github.com/smallstep/cli-utils/step"
	"github.com/smallstep/cli-utils/ui"
	"github.com/smallstep/cli-utils/usage"
	"go.step.sm/crypto/jose"
	"go.step.sm/crypto/pemutil"
)

// Version and BuildTime are set with -ldflags -X, as upstream's release build does.
var (
	Version   = "N/A"
	BuildTime = "N/A"
)

func init() {
	step.Set("Smallstep CLI", Version, BuildTime)
	ca.UserAgent = step.Version()
}

func main() {
	os.Exit(run())
}

func run() int {
	if err := step.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	// Files are written through fileutil.WriteFile, which asks before
	// overwriting unless --force is given (upstream does the same).
	pemutil.WriteFile = fileutil.WriteFile
	pemutil.PromptPassword = func(msg string) ([]byte, error) { return ui.PromptPassword(msg) }
	jose.PromptPassword = func(msg string) ([]byte, error) { return ui.PromptPassword(msg) }
	cli.VersionPrinter = func(c *cli.Context) { _ = version.Command(c) }
	// Upstream's help rendering (markdown-ish usage texts).
	cli.AppHelpTemplate = usage.AppHelpTemplate
	cli.SubcommandHelpTemplate = usage.SubcommandHelpTemplate
	cli.CommandHelpTemplate = usage.CommandHelpTemplate
	cli.HelpPrinter = usage.HelpPrinter
	cli.FlagNamePrefixer = usage.FlagNamePrefixer

	// command.Register (cli-utils) gives every flag its STEP_<FLAG> variable
	// and applies $STEPPATH/config/defaults.json: flag > env > defaults.json.
	command.Register(caCommand())
	command.Register(certificateCommand())
	command.Register(cryptoCommand())

	app := cli.NewApp()
	app.Name = "step"
	app.HelpName = "step"
	app.Usage = "plumbing for distributed systems"
	app.Version = step.Version()
	app.Commands = command.Retrieve() // help, version (cli-utils), ca, certificate, crypto
	app.Flags = []cli.Flag{
		cli.HelpFlag,
		cli.StringFlag{Name: "config", Usage: "path to the config file to use for CLI flags"},
	}
	app.Copyright = fmt.Sprintf("(c) 2018-%d Smallstep Labs, Inc.", time.Now().Year())
	app.Writer = os.Stdout
	app.ErrWriter = os.Stderr
	app.EnableBashCompletion = true // for autocomplete/bash_autocomplete in the archive
	app.Action = func(ctx *cli.Context) error {
		if ctx.NArg() == 0 {
			return cli.ShowAppHelp(ctx)
		}
		return unsupported("step " + ctx.Args().First())
	}

	// Errors carrying an exit code (needs-renewal) exit inside app.Run.
	if err := app.Run(os.Args); err != nil {
		if os.Getenv("STEPDEBUG") == "1" {
			fmt.Fprintf(os.Stderr, "%+v\n", err)
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		return 1
	}
	return 0
}

// unsupported is the answer to every command outside the implemented subset.
func unsupported(what string) error {
	return fmt.Errorf("'%s' is not supported by the test client (a step-compatible subset built for tests)", what)
}

// groupAction handles `step ca <unknown>` and `step certificate <unknown>`:
// without arguments it shows help as upstream does, otherwise it refuses.
func groupAction(ctx *cli.Context) error {
	if ctx.NArg() == 0 {
		return cli.ShowSubcommandHelp(ctx)
	}
	return unsupported(strings.TrimSpace(ctx.App.Name + " " + ctx.Args().First()))
}

// rejectUnsupportedFlags fails when a flag that upstream accepts, but this
// client does not implement, was given (on the command line or as STEP_*).
func rejectUnsupportedFlags(ctx *cli.Context, names ...string) error {
	for _, n := range names {
		if ctx.IsSet(n) {
			return fmt.Errorf("flag '--%s' of '%s' is not supported by the test client", n, ctx.Command.FullName())
		}
	}
	return nil
}

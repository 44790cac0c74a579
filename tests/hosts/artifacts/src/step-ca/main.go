// Command step-ca is the test harness's build of Smallstep's step-ca from
// Debian's packaged source (golang-github-smallstep-certificates-dev).
//
// Debian packages the libraries and the "start" command (commands.AppCommand)
// but not upstream's cmd/step-ca, so this is our own main wiring them together
// the way upstream's binary behaves: same version line, same subcommands, and
// the documented `step-ca <ca.json> --password-file <file>` invocation with
// flags after the configuration path.
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	_ "net/http/pprof" // upstream serves pprof when STEP_PROF_ADDR is set
	"os"
	"time"

	"github.com/urfave/cli"

	"github.com/smallstep/certificates/authority"
	"github.com/smallstep/certificates/commands"
	"github.com/smallstep/cli-utils/command"
	"github.com/smallstep/cli-utils/command/version"
	"github.com/smallstep/cli-utils/step"
	"github.com/smallstep/cli-utils/ui"
	"github.com/smallstep/cli-utils/usage"
	"go.step.sm/crypto/pemutil"

	// Key managers and CA services: upstream's list minus what Debian does not
	// ship or cannot build (azurekms and tpmkms lack packaged dependencies;
	// cloudcas and vaultcas are removed from the Debian package). pkcs11 and
	// yubikey are no-op stubs with CGO_ENABLED=0, exactly as in upstream's
	// static release build.
	_ "go.step.sm/crypto/kms/awskms"
	_ "go.step.sm/crypto/kms/cloudkms"
	_ "go.step.sm/crypto/kms/pkcs11"
	_ "go.step.sm/crypto/kms/softkms"
	_ "go.step.sm/crypto/kms/sshagentkms"
	_ "go.step.sm/crypto/kms/yubikey"

	_ "github.com/smallstep/certificates/cas/softcas"
	_ "github.com/smallstep/certificates/cas/stepcas"
)

// Version and BuildTime are set with -ldflags -X, as upstream's release build does.
var (
	Version   = "N/A"
	BuildTime = "N/A"
)

func init() {
	step.Set("Smallstep CA", Version, BuildTime)
	authority.GlobalVersion.Version = Version
	pemutil.PromptPassword = func(msg string) ([]byte, error) {
		return ui.PromptPassword(msg)
	}
}

func main() {
	if err := step.Init(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	ui.Init()

	cli.VersionPrinter = func(c *cli.Context) { _ = version.Command(c) }
	cli.AppHelpTemplate = usage.AppHelpTemplate
	cli.SubcommandHelpTemplate = usage.SubcommandHelpTemplate
	cli.CommandHelpTemplate = usage.CommandHelpTemplate
	cli.HelpPrinter = usage.HelpPrinter
	cli.FlagNamePrefixer = usage.FlagNamePrefixer

	app := cli.NewApp()
	app.Name = "step-ca"
	app.HelpName = "step-ca"
	app.Version = step.Version()
	app.Usage = "an online certificate authority for secure automated certificate management"
	app.UsageText = commands.AppCommand.UsageText
	app.Flags = append(append([]cli.Flag{}, commands.AppCommand.Flags...), cli.HelpFlag)
	app.Copyright = fmt.Sprintf("(c) 2018-%d Smallstep Labs, Inc.", time.Now().Year())
	app.Writer = os.Stdout
	app.ErrWriter = os.Stderr
	// "version", "export", "onboard" and "help", registered by the packages' init.
	app.Commands = command.Retrieve()
	app.Action = startAction

	if addr := os.Getenv("STEP_PROF_ADDR"); addr != "" {
		go func() {
			srv := http.Server{Addr: addr, ReadHeaderTimeout: 15 * time.Second}
			log.Println(srv.ListenAndServe())
		}()
	}

	if err := app.Run(os.Args); err != nil {
		if os.Getenv("STEPDEBUG") == "1" {
			fmt.Fprintf(os.Stderr, "%+v\n", err)
		} else {
			fmt.Fprintln(os.Stderr, err)
		}
		ui.Reset()
		os.Exit(1)
	}
	ui.Reset()
}

// startAction runs the packaged "start" command on the raw command line.
//
// The app-level flag parser stops at the first positional argument, so in
// `step-ca ca.json --password-file pw` the flags would arrive as extra
// positional arguments ("too many positional arguments"). cli.Command.Run
// parses its arguments again and moves flags found after positional
// arguments to the front, so handing it the untouched os.Args gives the
// flags-anywhere behaviour of upstream's binary.
func startAction(c *cli.Context) error {
	raw := flag.NewFlagSet(c.App.Name, flag.ContinueOnError)
	// Nothing is defined on raw: parsing stops at os.Args[0], the program
	// name, so raw.Args() is the whole command line and Run sees its tail.
	if err := raw.Parse(os.Args); err != nil {
		return err
	}
	return commands.AppCommand.Run(cli.NewContext(c.App, raw, nil))
}

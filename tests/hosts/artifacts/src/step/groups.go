package main

import "github.com/urfave/cli"

// caCommand is `step ca` with the implemented subset of its subcommands.
func caCommand() cli.Command {
	return cli.Command{
		Name:      "ca",
		Usage:     "initialize and manage a certificate authority",
		UsageText: "**step ca** <subcommand> [arguments] [global-flags] [subcommand-flags]",
		Action:    groupAction,
		Subcommands: cli.Commands{
			caHealthCommand(),
			caInitCommand(),
			caBootstrapCommand(),
			caTokenCommand(),
			caCertificateCommand(),
			caRenewCommand(),
			caRevokeCommand(),
			caRootsCommand(),
			caProvisionerCommand(),
		},
	}
}

// certificateCommand is `step certificate` with the implemented subset.
func certificateCommand() cli.Command {
	return cli.Command{
		Name:      "certificate",
		Usage:     "create, revoke, validate, bundle, and otherwise manage certificates",
		UsageText: "**step certificate** <subcommand> [arguments] [global-flags] [subcommand-flags]",
		Action:    groupAction,
		Subcommands: cli.Commands{
			certificateCreateCommand(),
			certificateInspectCommand(),
			certificateVerifyCommand(),
			certificateNeedsRenewalCommand(),
			certificateFingerprintCommand(),
		},
	}
}

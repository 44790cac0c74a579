"""Shell scripts that deploys run on hosts: `templates/*.sh.j2`, rendered on the controller.

A script runs under bash as `bash -c <script> <template name>`, so its strict macro
(macros/strict.sh.j2) reports a failing command as `<template>: line N: <command>`. Secrets
never enter a rendered script: they reach the host on standard input or in 0700 tmpfs files.
"""

from __future__ import annotations

from pyinfra.api import QuoteString, StringCommand

from etcd_step_pki.templates import render


def script(template: str, **values: object) -> StringCommand:
    """The command that runs the script `template` (e.g. `etcd-v2store-check.sh.j2`)."""
    return StringCommand("bash", "-c", QuoteString(render(template, **values)), template)

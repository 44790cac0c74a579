"""Several CAs that serve one set of records (`ca_ha=active-active`): what the hosts run on
their own (renewals, the revocation list) reaches whichever CA answers, in the order given,
with no change of settings when one is down."""

from __future__ import annotations

from collections.abc import Sequence

from etcd_step_pki.templates import render

FIRST_CA = "etcd-pki-first-ca"
# The argument the helper replaces by each CA's URL in turn.
CA_MARK = "@CA@"


def first_ca_script() -> str:
    """The helper, installed as <bin_dir>/etcd-pki-first-ca where several CAs serve."""
    return render(f"{FIRST_CA}.sh.j2")


def at_first_ca(bin_dir: str, urls: str | Sequence[str]) -> tuple[str, str]:
    """How a unit's command reaches the CAs: the prefix that runs it through the helper and
    the URL to give it (the mark the helper replaces); with one CA, no prefix and its URL."""
    found = [urls] if isinstance(urls, str) else list(urls)
    if len(found) == 1:
        return "", found[0]
    return f"{bin_dir}/{FIRST_CA} {' '.join(found)} -- ", CA_MARK

"""A key and its certificate as one pair on the disk: the names etcd reads lead through a link
to the pair's current generation, which one rename replaces (templates/macros/key_pair.sh.j2).
What the deploy trusts of a host's layout, and what the scripts need of each certificate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from etcd_step_pki.operations.certificates import Certificate


def pair_layout(entry: dict[str, Any] | None, item: Certificate) -> str:
    """`paired`: the names lead through the pair's link to a generation directory of root's
    (templates/macros/key_pair.sh.j2); `plain`: two plain files, from an earlier release;
    `foreign`: links of another making, which nothing of root's follows (issued again)."""
    crt, key, generation, kind = (entry or {}).get("links") or ["", "", "", ""]
    if not crt and not key:
        return "plain"
    pair = item.pair.rsplit("/", 1)[-1]
    base = re.escape(pair.removesuffix(".pair"))
    if (
        [crt, key] == [f"{pair}/crt", f"{pair}/key"]
        and re.fullmatch(rf"\.{base}\.[A-Za-z0-9]{{6}}", generation)
        and kind == "directory root"
    ):
        return "paired"
    return "foreign"


def script_paths(items: Sequence[Certificate]) -> list[dict[str, str]]:
    """What the scripts need of each certificate: its subject and its files."""
    return [{"subject": i.common_name, "crt": i.crt, "key": i.key, "pair": i.pair} for i in items]

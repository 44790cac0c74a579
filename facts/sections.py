"""Output of one fact command that reads several things: sections introduced by a marker line."""

from __future__ import annotations

MARK = "### etcd-step-pki "


def sections(output: list[str]) -> dict[str, list[str]]:
    """`{section name: its lines}`; a section starts at a `MARK <name>` line."""
    found: dict[str, list[str]] = {}
    current = None
    for line in output:
        if line.startswith(MARK):
            current = line[len(MARK) :].strip()
            found[current] = []
        elif current is not None:
            found[current].append(line)
    return found

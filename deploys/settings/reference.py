"""The README's settings reference, generated from the settings' declarations.

`python -m etcd_step_pki.deploys.settings.reference --write` rewrites the part of README.md
between the markers below; without `--write` it exits 1 when that part is not current (a
unit test checks the same), so the reference cannot drift from the declarations.
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from etcd_step_pki.deploys.settings.model import HostSettings
from etcd_step_pki.deploys.settings.values import is_per_run, shown_default

COMMAND = ".venv/bin/python -m etcd_step_pki.deploys.settings.reference --write"
BEGIN = f"<!-- settings reference: generated from deploys/settings, by {COMMAND} -->"
END = "<!-- end of the settings reference -->"
README = Path(__file__).resolve().parents[2] / "README.md"


def _table(fields: dict[str, FieldInfo]) -> list[str]:
    """One row a setting: its name, its default as shown, its documentation."""
    rows = ["| setting | default | meaning |", "| --- | --- | --- |"]
    rows += [
        f"| `{name}` | {shown_default(field)} | {field.description} |"
        for name, field in fields.items()
    ]
    return rows


def render() -> str:
    """The generated reference: the host settings, then the per-run ones, in declaration
    order, between the markers."""
    fields = HostSettings.model_fields
    host = {name: field for name, field in fields.items() if not is_per_run(field)}
    run = {name: field for name, field in fields.items() if is_per_run(field)}
    lines = [
        BEGIN,
        "",
        *_table(host),
        "",
        "Per run (`--data key=value`; see the deploys above), none by default unless shown:",
        "",
        *_table(run),
        "",
        END,
    ]
    return "\n".join(lines)


def current(text: str) -> str:
    """The reference part of a README's text, markers included ("" when it has none)."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return ""
    return text[start : end + len(END)]


def rewritten(text: str) -> str:
    """A README's text with its reference part replaced by the generated one."""
    part = current(text)
    if not part:
        raise ValueError(f"README.md has no settings reference between {BEGIN} and {END}")
    return text.replace(part, render())


def main(argv: list[str]) -> int:
    """`--write`: regenerate README's reference; otherwise: 1 when it is not current."""
    text = README.read_text(encoding="utf-8")
    if "--write" in argv:
        README.write_text(rewritten(text), encoding="utf-8")
        return 0
    if current(text) != render():
        print(f"README.md's settings reference is not current: run {COMMAND}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

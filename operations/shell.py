"""Shell commands built from templates with every interpolated value quoted."""

from __future__ import annotations

import shlex

from pyinfra.api import StringCommand


def script(template: str, **values: object) -> StringCommand:
    """`template` with `{name}` placeholders filled by shell-quoted values.

    Shell braces in the template are written doubled (`{{ ...; }}`), as in str.format.
    """
    quoted = {key: _quote(value) for key, value in values.items()}
    return StringCommand(template.format(**quoted))


def raw(template: str, **values: object) -> str:
    """`script()` as plain text, for joining several commands into one."""
    return script(template, **values).get_raw_value()


def _quote(value: object) -> str:
    if isinstance(value, list | tuple):
        return " ".join(shlex.quote(str(item)) for item in value)
    return shlex.quote(str(value))

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


def replace_file(path: str, text: str, mode: str = "0644") -> str:
    """The command that replaces `path` by `text` with `mode` in one rename: a reader never
    finds it missing or half written. Whatever stands at the new file's place is removed,
    never written through. The text is on the command line: no secrets."""
    return raw(
        "rm -f {new} && printf %s {text} > {new} && chmod {mode} {new} && mv -f {new} {path}",
        text=text,
        new=f"{path}.new",
        mode=mode,
        path=path,
    )


def cleanup_on_exit(command: str) -> str:
    """Shell traps that run `command` (no single quotes) however the shell ends: on exit,
    and on hang-up (a dropped SSH connection), interrupt and termination, each of which
    ends the shell (a trap that only cleaned up would let the script go on)."""
    return f"trap '{command}' EXIT; trap 'exit 129' HUP; trap 'exit 130' INT; trap 'exit 143' TERM;"


def previous_kept(path: str) -> str:
    """The command that keeps `path` as `<path>.previous` (if it exists) before it is
    replaced: what a failed restart goes back to."""
    return raw("[ ! -e {p} ] || cp -p {p} {p}.previous", p=path)


def replace_link(path: str, target: str) -> str:
    """The command that makes `path` a symbolic link to `target` in one rename."""
    return raw("ln -sfn {target} {path}.new && mv -Tf {path}.new {path}", target=target, path=path)

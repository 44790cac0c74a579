"""Run-time steps: Python callbacks that act on hosts with the connector arguments pyinfra
gives commands (sudo, su, timeout, environment), on the host of the operation or on another.

pyinfra hands a `FunctionCommand` no connector arguments: a callback that calls
`host.run_shell_command` directly runs without `--sudo` and fails as an unprivileged user.
`RunTimeStep` passes the operation's arguments on as a `Remote`; `Remote.of` gives another
inventory host the arguments its own data and the run's configuration give it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import IO, Any, TypeVar

from pyinfra import logger
from pyinfra.api import FactBase, FunctionCommand, StringCommand
from pyinfra.api.arguments import CONNECTOR_ARGUMENT_KEYS, pop_global_arguments
from pyinfra.api.host import Host
from pyinfra.api.state import State
from pyinfra.connectors.util import CommandOutput

T = TypeVar("T")

# What a command on another host takes from that host's defaults: how to become root and how
# to run, not the retry and exit-code policy of whichever operation asked.
_DEFAULTS = tuple(
    key
    for key in CONNECTOR_ARGUMENT_KEYS
    if key not in ("_success_exit_codes", "_retries", "_retry_delay", "_retry_until", "_stdin")
)


class Remote:
    """A host and the connector arguments its commands, uploads and downloads run with."""

    def __init__(self, host: Host, arguments: Mapping[str, Any]) -> None:
        self.host = host
        self.arguments = dict(arguments)

    @classmethod
    def of(cls, state: State, name: str, reason: str) -> Remote:
        """Another inventory host, connected when `--limit` left it out of the run, with the
        connector arguments of its data and of the run (`--sudo`, `_sudo` in group data)."""
        other = state.inventory.get_host(name)
        if not other.connected:
            other.connect(reason=reason, raise_exceptions=True)
        found, _ = pop_global_arguments(state, other, {})
        return cls(other, {key: found[key] for key in _DEFAULTS if key in found})  # type: ignore[literal-required]

    @property
    def name(self) -> str:
        return self.host.name

    def run(
        self, command: str | StringCommand, *, stdin: str | None = None
    ) -> tuple[bool, CommandOutput]:
        """Run a command; `stdin` (a secret such as a token) never touches a disk on its way."""
        arguments = dict(self.arguments)
        if stdin is not None:
            arguments["_stdin"] = stdin
        return self.host.run_shell_command(command, **arguments)

    def fact(self, fact: type[FactBase[T]], **kwargs: Any) -> T:
        """A fact read now, at run time, with this host's connector arguments."""
        reader = fact()
        ok, output = self.run(reader.command(**kwargs))
        return reader.process(output.stdout_lines) if ok else reader.default()

    def put(self, data: IO[Any], path: str) -> bool:
        """Upload (through a temporary file when sudo is used: no secret this way)."""
        return self.host.put_file(data, path, **self.arguments)

    def get(self, path: str, buffer: IO[Any]) -> bool:
        """Download (through a temporary copy when sudo is used: no secret this way)."""
        return self.host.get_file(path, buffer, **self.arguments)

    def log(self, message: str) -> None:
        """A line of the run's output under this host."""
        self.host.log_styled(message, log_func=logger.info)

    def fail(self, message: str) -> bool:
        """A failure under this host; False, for a step to return."""
        self.host.log_styled(message, fg="red", log_func=logger.error)
        return False


class RunTimeStep(FunctionCommand):
    """A Python step run at execution as `function(state, remote, *args, **kwargs)`, where
    `remote` is the operation's host with the operation's connector arguments."""

    def __init__(self, function: Callable[..., bool], *args: Any, **kwargs: Any) -> None:
        super().__init__(function, args, kwargs)

    def execute(self, state: State, host: Host, connector_arguments: Any) -> bool:
        return bool(
            self.function(state, Remote(host, connector_arguments), *self.args, **self.kwargs)
        )

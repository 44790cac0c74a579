"""pyinfra operations of the etcd PKI."""

from __future__ import annotations

from collections.abc import Generator
from typing import Protocol, TypeAlias

from pyinfra.api.command import PyinfraCommand

# What an @operation body (or a helper it yields from) yields: shell text, which pyinfra makes a
# StringCommand, or a pyinfra command (StringCommand, FileUploadCommand, FunctionCommand, ...).
Commands: TypeAlias = Generator[str | PyinfraCommand, None, None]


class Change(Protocol):
    """What a restart waits on: an operation of the run (pyinfra's `OperationMeta`) or part of
    one (`operations.binaries.Replaced`)."""

    def did_change(self) -> bool: ...

"""The package's entry points: each deploy file defines a @deploy of its name and calls it only
when pyinfra executes the file, never when something imports it."""

from __future__ import annotations

import importlib
from pathlib import Path
from types import SimpleNamespace

import pytest
from pyinfra import host
from pyinfra.api import deploy
from pyinfra.context import ctx_host, ctx_state

import etcd_step_pki
from etcd_step_pki.deploys import executed_by_pyinfra, run_when_executed

DEPLOYS = sorted(
    p.stem for p in Path(etcd_step_pki.__file__).parent.joinpath("deploys").glob("*.py")
)
DEPLOYS.remove("__init__")


def test_the_package_exports_every_deploy_under_its_file_name() -> None:
    assert sorted(etcd_step_pki.__all__) == DEPLOYS
    for name in DEPLOYS:
        module = importlib.import_module(f"etcd_step_pki.deploys.{name}")
        assert getattr(etcd_step_pki, name) is getattr(module, name)
        assert callable(getattr(module, name))


@pytest.mark.parametrize("name", DEPLOYS)
def test_only_pyinfra_executing_the_file_runs_the_deploy(name: str) -> None:
    module = importlib.import_module(f"etcd_step_pki.deploys.{name}")
    as_executed = {"__file__": f"deploys/{name}.py"}
    with ctx_state.use(SimpleNamespace(current_exec_filename=f"deploys/{name}.py")):
        assert executed_by_pyinfra(as_executed)
        # The same file imported (etcd_step_pki/deploys links to deploys/): not executed.
        assert not executed_by_pyinfra(vars(module))
        assert not executed_by_pyinfra({"__file__": "deploys/other.py"})
    with ctx_state.use(SimpleNamespace(current_exec_filename="my_deploy.py")):
        assert not executed_by_pyinfra(as_executed)
    with ctx_state.use(None):  # no pyinfra run at all
        assert not executed_by_pyinfra(as_executed)


def test_an_executed_deploy_file_runs_its_body_without_the_deploys_name_layer() -> None:
    """Operations of `pyinfra inventory.py deploys/ca.py` read "step-ca | Install step", not
    "ca.py | step-ca | Install step"; an import runs nothing."""
    seen: list[str | None] = []

    @deploy("sample.py")
    def sample() -> None:
        seen.append(host.current_deploy_name)

    executing = SimpleNamespace(current_exec_filename="deploys/sample.py")
    with ctx_state.use(executing), ctx_host.use(SimpleNamespace(current_deploy_name=None)):
        run_when_executed({"__file__": "deploys/sample.py"}, sample)
        run_when_executed({"__file__": "deploys/other.py"}, sample)
    assert seen == [None]

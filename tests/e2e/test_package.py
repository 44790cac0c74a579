"""The package as an operator installs it: the sdist and the wheel built from the checkout, the
wheel installed in a fresh virtual environment outside the checkout, and the sandbox converged
from a directory that holds only an inventory (a file and its group data)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_scenario
from tests.harness.checks import cluster_healthy, members
from tests.harness.hosts import REPO, Scenario, docker_exec, scenario_hosts
from tests.harness.pyinfra_run import run_pyinfra

PACKAGES = ("deploys", "operations", "facts", "templates")
OWN_DEPLOY = '''"""An operator's own deploy file: the package's deploy, called."""

from etcd_step_pki import cluster

cluster()
'''


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python -m build`: the sdist, then the wheel built from that sdist (so the sdist holds
    everything a wheel needs)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(REPO)],
        check=True,
        capture_output=True,
        text=True,
    )
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("etcd_step_pki-*.whl")
    return wheel


def _checkout_files(suffixes: tuple[str, ...]) -> set[str]:
    """The package's files in the checkout, as paths inside the installed package."""
    found = {"etcd_step_pki/py.typed"}
    found |= {f"etcd_step_pki/{path.name}" for path in (REPO / "etcd_step_pki").glob("*.py")}
    for package in PACKAGES:
        for path in (REPO / package).rglob("*"):
            if path.suffix in suffixes and "__pycache__" not in path.parts:
                found.add(f"etcd_step_pki/{path.relative_to(REPO)}")
    return found


@pytest.mark.artifacts
def test_the_wheel_holds_every_module_and_template_and_nothing_else(dist: Path) -> None:
    names = set(zipfile.ZipFile(_wheel(dist)).namelist())
    ours = {name for name in names if not name.startswith("etcd_step_pki-")}
    assert ours == _checkout_files((".py", ".j2"))
    metadata = next(n for n in names if n.endswith("/METADATA"))
    requires = zipfile.ZipFile(_wheel(dist)).read(metadata).decode()
    for dependency in ("pyinfra", "pydantic", "cryptography", "jinja2", "boto3", "pyyaml"):
        assert f"Requires-Dist: {dependency}" in requires, dependency
    (sdist,) = dist.glob("etcd_step_pki-*.tar.gz")
    assert sdist.stat().st_size > 0


@pytest.fixture(scope="module")
def installed(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment, outside the checkout, with the wheel and its dependencies."""
    venv = tmp_path_factory.mktemp("operator") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", str(_wheel(dist))],
        check=True,
        capture_output=True,
        text=True,
    )
    return venv


@pytest.fixture(scope="module")
def site(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The operator's directory: the sandbox's inventory and its group data, nothing else."""
    directory = tmp_path_factory.mktemp("site")
    shutil.copy(REPO / "inventories" / "sandbox.py", directory / "sandbox.py")
    (directory / "group_data").mkdir()
    shutil.copy(REPO / "inventories" / "group_data" / "sandbox.py", directory / "group_data")
    return directory


@pytest.fixture(scope="module")
def package_hosts(release_archives: Path) -> Iterator[Scenario]:
    scenario = fresh_scenario("pki-test-package", "172.28.81.0/24", release_archives)
    with scenario_hosts(scenario) as started:
        yield started


@pytest.mark.e2e
def test_the_installed_package_imports_from_its_own_environment(installed: Path) -> None:
    where = subprocess.run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import etcd_step_pki; print(etcd_step_pki.__file__)",
        ],
        cwd="/",
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert Path(where).is_relative_to(installed)
    assert not Path(where).resolve().is_relative_to(REPO)


@pytest.mark.e2e
def test_the_installed_package_converges_the_sandbox_from_an_inventory_only(
    installed: Path, site: Path, package_hosts: Scenario
) -> None:
    pyinfra = installed / "bin" / "pyinfra"
    first = run_pyinfra(
        package_hosts, "etcd_step_pki.cluster", inventory="sandbox.py", pyinfra=pyinfra, cwd=site
    )
    assert set(first.changes) == {h.name for h in package_hosts.hosts}
    assert cluster_healthy(package_hosts)
    assert set(members(package_hosts)) == {"etcd-k8s-1", "etcd-k8s-2", "etcd-k8s-3"}
    for host in ("etcd-k8s-1", "client-1"):
        subject = docker_exec(
            package_hosts,
            host,
            f"openssl x509 -in /etc/etcd/ssl/{host}-client.crt -noout -subject",
        ).stdout
        assert host in subject
    # The same deploy from a deploy file of the operator's own: nothing left to change.
    (site / "deploy.py").write_text(OWN_DEPLOY)
    second = run_pyinfra(
        package_hosts, "deploy.py", inventory="sandbox.py", pyinfra=pyinfra, cwd=site
    )
    assert second.changes == {}
    assert sorted(p.name for p in site.iterdir()) == ["deploy.py", "group_data", "sandbox.py"]

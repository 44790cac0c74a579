"""Day 2: rotate the intermediate CA; the leaves follow, then every member restarts in turn."""

from __future__ import annotations

import time

from pyinfra import host

from etcd_step_pki.deploys.components import component
from etcd_step_pki.deploys.components.arguments import key_file
from etcd_step_pki.deploys.components.ca import run_step_ca
from etcd_step_pki.deploys.settings import Settings, SettingsError, load_settings, time_setting
from etcd_step_pki.operations.certificates import ca_material
from etcd_step_pki.operations.root_key import OfflineRoot
from etcd_step_pki.operations.rotation import ROTATION_REASON, intermediate_rotated, issued_at


@component("Rotate the intermediate CA")
def rotate_intermediate() -> str | None:
    """A new intermediate on the primary when the current one was issued before
    `rotate_before` (ISO 8601 time), step-ca restarted on it. Returns why the leaves must be
    issued again in this run, or None when the intermediate is already newer."""
    settings = load_settings()
    before = time_setting("rotate_before")
    limit = host.state.limit_hosts
    # pyinfra types State.limit_hosts as list[Host]; it is None when the run has no limit.
    if limit is not None and settings.primary not in {h.name for h in limit}:  # type: ignore[redundant-expr]
        raise SettingsError(
            f"rotate_before: the primary cert-manager {settings.primary} must be in the run "
            "(it makes the new intermediate): run without --limit/--exclude for it"
        )
    material = ca_material(host.state, settings.primary, settings.ca_path)
    if not material["intermediate"]:
        raise SettingsError(
            f"rotate_before: there is no CA on {settings.primary} yet (deploys/cluster.py first)"
        )
    if settings.is_primary:
        rotated = intermediate_rotated(
            name="New intermediate CA",
            path=settings.ca_path,
            issued_before=before,
            duration=settings.intermediate_duration,
            now=time.time(),
            bin_dir=settings.bin_dir,
            offline_root=_offline_root(settings),
        )
        run_step_ca(settings, [rotated])
    return ROTATION_REASON if issued_at(material["intermediate"]) < before else None


def _offline_root(settings: Settings) -> OfflineRoot:
    """Where the root key is when it is on no cert-manager: the controller's ciphertext, and
    the private key (`ca_restore_private_key`) that decrypts it, when given."""
    given = settings.run.ca_restore_private_key
    private = key_file("ca_restore_private_key", given, "private") if given else None
    return OfflineRoot(settings.root_key.file, private)

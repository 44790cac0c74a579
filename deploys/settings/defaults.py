"""The pinned upstream releases, and DEFAULTS: every host setting's default as declared in
the model (model.py).

A host's data is laid over DEFAULTS before it is validated; deploys/components pass them to
pyinfra as @deploy data defaults.
"""

from __future__ import annotations

import copy

from etcd_step_pki.deploys.settings.model import HostSettings
from etcd_step_pki.deploys.settings.values import is_per_run

# Upstream's published SHA-256 of each release archive, per architecture. Smallstep publishes
# them in each release's checksums.txt (signed with cosign); the step and step-ca sums below
# are the ones of step_linux_0.30.6_*.tar.gz and step-ca_linux_0.30.2_*.tar.gz there.
STEP_CA_CHECKSUMS = {
    "0.30.2": {
        "amd64": "126615795bafe3f2d3f890e2d628fa6e2857315fb48d0671d34b23047cc37d73",
        "arm64": "43f79d1b0b8cab9895dbadd46b0a014006f682a6b1341e1fadf0be31d4b9f4b4",
    },
}
STEP_CHECKSUMS = {
    "0.30.6": {
        "amd64": "e44a5dc5f880a694b24a0f2941a69a81b0bc6ee053170fdfde18453d4d5816de",
        "arm64": "eff511c3e6797039702e74fada62b10b079e413742f925703e5b7d810e611619",
    },
}
# etcd publishes SHA256SUMS with each release. The newest patch release of each branch whose
# sums could be checked here, each against kubespray's table of upstream's sums
# (kubernetes-sigs/kubespray, roles/kubespray_defaults/vars/main/checksums.yml,
# etcd_binary_checksums):
ETCD_CHECKSUMS = {
    # 3.5: for clusters that upgrade from it; the last branch with the v2 store. Kubespray
    # master 46dbdd39 (2026-08-21, "Patch versions updates (#13423)").
    "3.5.21": {
        "amd64": "adddda4b06718e68671ffabff2f8cee48488ba61ad82900e639d108f2148501c",
        "arm64": "95bf6918623a097c0385b96f139d90248614485e781ec9bee4768dbb6c79c53f",
    },
    "3.5.33": {
        "amd64": "5025b5b24d81a9616b6e284ccd439b9a3df055ef8fdcdc142af3ec8f6a3b3c95",
        "arm64": "0764c5c0acef155f4bfa0487791cc5776adef66315bf16ec0653883bfd463a90",
    },
    # 3.6: maintained, the default. Kubespray master 46dbdd39, same commit.
    "3.6.14": {
        "amd64": "ffe840ff9295808e88cce2794a18a5ac87f12a5203c8314d0bf6aa119b41bac5",
        "arm64": "fa1b80565ee6fc2df1ae6f57a508b221f3ecc7d591c317c581cd8281b0842b3e",
    },
    # 3.7: the current stable branch. Kubespray pull request #13363 ("Upgrade etcd to 3.7 for
    # Kubernetes 1.36", commit 84072210, 2026-07-09), same file.
    "3.7.0": {
        "amd64": "b05cb07f5686dab8f9cdab89986b44f0dd24aaf5c627176aff325e21fa56f9f0",
        "arm64": "e61a0954fe6a3003ee20f45e773e12e15c58323ea485deb8a55d065170cdafe8",
    },
}


def _defaults() -> dict[str, object]:
    """Each host setting's declared default (model.py), per-run settings left out: what the
    deploys pass to pyinfra as data defaults. Copies, so that no run changes a declaration."""
    return {
        name: copy.deepcopy(field.default)
        for name, field in HostSettings.model_fields.items()
        if not is_per_run(field)
    }


DEFAULTS: dict[str, object] = _defaults()

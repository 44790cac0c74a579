"""Move a running etcd cluster from cfssl certificates to step-ca, without downtime.

    pyinfra inventories/<environment>.py deploys/migrate_cfssl.py

1. step-ca on the cert-managers (the cluster is not touched);
2. trust bundles (old peer/client CA + new root) on every host, rolling restart;
3. step-ca keys and certificates on every host, members switched one at a time;
4. the old CAs out of the trust files, rolling restart;
5. the old *.pem removed once the cluster is healthy on the new certificates.

Each phase completes on every host before the next; a host records the phases it completed,
so an interrupted run (or `--data cfssl_migration_stop_after=bundle|certs|final`) resumes
where it stopped. Afterwards deploys/cluster.py converges everything as usual. With several
clusters on the CA, one at a time: `--data etcd_cluster=<name>`.
"""

from pyinfra.api import deploy

from etcd_step_pki.deploys import run_when_executed
from etcd_step_pki.deploys.components.ca import certificate_authority
from etcd_step_pki.deploys.components.migration import (
    certificates_phase,
    cleanup_phase,
    root_only_phase,
    trust_phase,
)
from etcd_step_pki.deploys.settings import (
    DEFAULTS,
    SettingsError,
    all_settings,
    load_settings,
    one_cluster,
)


@deploy("migrate_cfssl.py", data_defaults=DEFAULTS)
def migrate_cfssl() -> None:
    """Move a running etcd cluster from cfssl certificates to step-ca, without downtime."""
    one_cluster("migrate_cfssl.py")
    # The trust files a phase rewrites are the host's: shared by its members of other clusters.
    _shared = [s.host for s in all_settings() if s.needs_certificates and len(s.memberships) > 1]
    if _shared:
        raise SettingsError(
            f"etcd_clusters: {', '.join(_shared)} hold certificates of several clusters, whose "
            "trust files a migration would change under the others: migrate from cfssl before "
            "adding a second cluster"
        )
    # bundle, certs, final or None: checked with every setting before any host is touched.
    stop = load_settings().run.cfssl_migration_stop_after

    certificate_authority()
    trust_phase()
    if stop != "bundle":
        certificates_phase()
        if stop != "certs":
            root_only_phase()
            if stop != "final":
                cleanup_phase()


run_when_executed(globals(), migrate_cfssl)

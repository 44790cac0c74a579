"""benchmarks/RESULTS.md, results.json and results.png from the figures benchmarks/run.py
measured: each with its ratio to the floor, the targets met or not, and what the figures say."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from pathlib import Path

from tests.harness.hosts import REPO

OUT = REPO / "benchmarks"
CLIENT_COUNTS = (4, 16, 32)
RESTARTS = int(os.environ.get("PKI_BENCH_RESTARTS", "50"))


def _ratio(results: dict, key: str, floor_key: str = "floor") -> str:
    if key not in results or floor_key not in results:
        return "-"
    return f"{results[key] / results[floor_key]:.1f}x"


def _verdict(results: dict, key: str, limit: float) -> str:
    if key not in results:
        return "not measured"
    return "met" if results[key] <= limit else "NOT met"


def write_results(results: dict) -> None:
    r = results
    n_lo, n_hi = CLIENT_COUNTS[0], CLIENT_COUNTS[-1]
    floor_s = r.get("floor", float("inf"))
    rows = [
        ("floor: `pyinfra exec -- true`, 4 hosts", "floor", "1.0x", "", ""),
        ("cluster creation from bare hosts", "create", _ratio(r, "create"), "<= 8x floor",
         _verdict(r, "create", 8 * floor_s)),
        ("no-op re-run (zero changes)", "rerun", _ratio(r, "rerun"), "<= 2x floor",
         _verdict(r, "rerun", 2 * floor_s)),
        ("add one member (`--limit`)", "add_member", _ratio(r, "add_member", "floor_5"), "", ""),
        ("renew every certificate now", "renew_all", _ratio(r, "renew_all"), "", ""),
        ("rolling restart of 3 members", "rolling_restart", _ratio(r, "rolling_restart"), "", ""),
        ("restore the CA from S3", "restore", _ratio(r, "restore"), "< 120 s",
         _verdict(r, "restore", 120)),
        ("failover: primary stopped -> issuance works", "failover", _ratio(r, "failover"),
         "< 60 s", _verdict(r, "failover", 60)),
    ]  # fmt: skip
    for count in CLIENT_COUNTS:
        rows.append((f"issue every certificate, 3 members + {count} clients", f"issue_n{count}",
                     _ratio(r, f"issue_n{count}", f"floor_n{count}"), "", ""))  # fmt: skip
    if f"issue_n{n_hi}" in r and f"issue_n{n_lo}" in r:
        growth = r[f"issue_n{n_hi}"] / r[f"issue_n{n_lo}"]
        growth_line = (f"Issuance growth from {n_lo} to {n_hi} clients: {growth:.2f}x"
                       f" (target <= 2x: {'met' if growth <= 2 else 'NOT met'}).")  # fmt: skip
    else:
        growth_line = f"Issuance growth from {n_lo} to {n_hi} clients: not measured."
    lines = [
        "# Benchmark results",
        "",
        f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `make bench` on {platform.node()}:"
        f" {os.cpu_count()} cores, {_memory()}, {platform.platform()}, Python"
        f" {platform.python_version()}. Hosts: Docker containers running systemd, reached over SSH;"
        " release archives downloaded by every host from an HTTP mirror on the controller"
        " (`artifact_source=mirror`; by default hosts download from upstream the same way).",
        "",
        "![figures against their floor and issuance against N](results.png)",
        "",
        "| what | seconds | x floor | target | |",
        "| --- | ---: | ---: | --- | --- |",
    ]
    lines += [
        f"| {a} | {r[b]:.1f} | {c} | {d} | {e} |"
        if b in r
        else f"| {a} | - | - | {d} | not measured |"
        for a, b, c, d, e in rows
    ]
    lines += ["", growth_line, _controller_line(r), ""]
    lines += [f"Not measured: {error}" for error in r.get("errors", [])]
    lines += [
        "",
        f"Failed etcd writes while every certificate was renewed: {r['renew_failed']} of"
        f" {r['renew_writes']}; during a rolling restart: {r['rolling_failed']} of"
        f" {r['rolling_writes']} (target: zero). A write failed when it failed twice in a row;"
        f" first attempts that failed and succeeded when tried again:"
        f" {r.get('renew_retried', 0)} and {r.get('rolling_retried', 0)}.",
        "",
        "For scale: an Ansible implementation of the same design took about 200 s to create the"
        " cluster and about 180 s per re-run on the same kind of machine (DESIGN.md).",
        "",
        "## Issuance: where the time goes",
        "",
        "| clients | wall s | host CPU s | controller CPU s | CPU / cores s |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {n} | {r[f'issue_n{n}']:.1f} | {r[f'issue_n{n}_hosts_cpu']:.1f} |"
        f" {r[f'issue_n{n}_controller_cpu']:.1f} | {_cpu_bound(r, n):.1f} |"
        for n in CLIENT_COUNTS
        if f"issue_n{n}_hosts_cpu" in r
    ]
    lines += ["", *_analysis(r), ""]
    lines += _restart_lines(r.get("restarts", []))
    (OUT / "RESULTS.md").write_text("\n".join(lines))
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    _plot(results)


def _restart_lines(runs: list[dict]) -> list[str]:
    """The rolling restart series: per restart, the first attempts of a write that failed
    and the writes that took a second or more."""
    if not runs:
        return []
    failed = sum(run["failed"] for run in runs)
    retried = [run["retried"] for run in runs]
    slow = [took for run in runs for _, took in run["slow"]]
    lines = [
        "## Writes during rolling restarts",
        "",
        f"{len(runs)} rolling restarts of 3 members (a configuration change each), a client"
        f" writing all along: {sum(run['writes'] for run in runs)} writes, {failed} failed"
        f" (twice in a row); first attempts that failed: {sum(retried)} in"
        f" {sum(1 for n in retried if n)} of {len(runs)} restarts (target: zero). Writes that"
        f" took a second or more: {len(slow)}"
        + (f", the longest {max(slow) / 1000:.1f} s." if slow else "."),
        "",
        "| restart | seconds | writes | first attempts failed | writes >= 1 s (at s: ms) |",
        "| ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {index + 1} | {run['seconds']:.1f} | {run['writes']} | {run['retried']} |"
        f" {', '.join(f'{at:.1f}: {took}' for at, took in run['slow'])} |"
        for index, run in enumerate(runs)
    ]
    errors = [line for run in runs for line in run["errors"].splitlines() if line.strip()]
    if errors:
        lines += ["", "What the failed first attempts printed:", "", "```", *errors[:40], "```"]
    return [*lines, ""]


def _cpu_bound(r: dict, n: int) -> float:
    """The least wall time the CPU work of an issuance run allows on this machine's cores."""
    return (r[f"issue_n{n}_hosts_cpu"] + r[f"issue_n{n}_controller_cpu"]) / (os.cpu_count() or 1)


def _analysis(r: dict) -> list[str]:
    """What the figures say about the targets, from the figures themselves."""
    n_lo, n_hi = CLIENT_COUNTS[0], CLIENT_COUNTS[-1]
    out = [
        "Every host of a run is a container on this machine, so the work each host does for"
        " its own certificates (unpacking step, `step ca bootstrap`, making a key, `step ca"
        " certificate`, writing and enabling its renewal units, all over SSH) shares the same"
        " cores with every other host and with the controller. The last column is that CPU"
        " time spread over every core: no schedule can be faster here."
    ]
    if all(f"issue_n{n}_hosts_cpu" in r for n in (n_lo, n_hi)):
        bound = _cpu_bound(r, n_hi) / _cpu_bound(r, n_lo)
        wall = r[f"issue_n{n_hi}"] / r[f"issue_n{n_lo}"]
        out += [
            "",
            f"From {n_lo} to {n_hi} clients the CPU work grows {bound:.1f}x and the wall time"
            f" {wall:.1f}x. The target of at most 2x "
            + ("is met." if wall <= 2 else
               "cannot be met on shared cores while the CPU work alone grows more than 2x;"
               " on real hosts, each with its own CPU, the per-host work runs in parallel and"
               " what grows with N is the controller's share and the token batch on the"
               " primary (one key derivation per batch, then one short `step ca token` per certificate)."),
        ]  # fmt: skip
    for key, what in (("renew", "renewing every certificate"), ("rolling", "the rolling restart")):
        errors = [
            line for line in r.get(f"{key}_errors", "").splitlines() if line.startswith("Error")
        ]
        if r.get(f"{key}_retried"):
            out += [
                "",
                f"{r[f'{key}_retried']} first attempt(s) of a write failed during {what}"
                + (f", with `{errors[0]}`" if errors else "")
                + ". Such a write stalled while a member restarted or leadership moved, until"
                " etcd's request timeout (`request timed out`) or the client's (`context"
                " deadline exceeded`); etcd's client does not retry a `put`. Tried again at once,"
                " each of them succeeded unless counted as failed above.",
            ]
    if "rerun" in r and r["rerun"] > 2 * r.get("floor", float("inf")):
        out += [
            "",
            "The no-op re-run is above 2x the floor. A run that changes nothing makes one"
            " command per host, as the floor does: its run lock taken with one batch of every"
            " fact the previous run read there (facts/prefetch.py, the facts side by side on"
            " the host, about 0.25 s of CPU on a member, sharing this machine's cores with"
            " every other host). The deploy itself costs what the floor does not: importing"
            " the package and building its settings (pydantic, about 0.25 s in all) and"
            " planning every host.",
        ]
    return [*out, "", *GAINS]


# What each change to the deploys' speed gained, newest first (sandbox: 4 hosts, `-y`).
GAINS = [
    "## What each change gained",
    "",
    "- A host's facts in one round trip (`facts/prefetch.py`, 2026-12-07): what the previous"
    " run of the same command line read on a host is read again in one command, the facts"
    " side by side on the host (checked first to be the same machine); helper scripts and"
    " the CA's certificates are read through the run's memo. A no-op `cluster.py` on the"
    " sandbox makes 8 commands (4 run locks, 4 batches) instead of 15, and takes 1.5 to"
    " 1.8 s instead of 2.2 s (floor 0.64 s); here, the no-op re-run went from 2.0 s (2.7x)"
    " to 1.5 s (2.4x), and the controller's CPU per extra host in issuance from 0.109 s to"
    " 0.072 s; creation stayed at 9.6 s. Runs that change hosts gain nothing from it: their"
    " reads after the first change go to the hosts, as before.",
    "- Facts read once per run while nothing has changed (`facts/memo.py`, 2026-12-07): the"
    " operations of a no-op `cluster.py` went from 1.3 s to 0.78 s on the sandbox (24"
    " operations; six of them no longer read anything), the whole no-op run from 2.2 s to"
    " 1.8 s (floor 0.6 to 0.7 s); here, the no-op re-run from 3.0 s to 2.0 s and creation"
    " from 11.4 s to 9.5 s. Reads still made: one per concern and host (accounts, CA state,"
    " node certificates, units, revocation list, member state, health).",
    "- One operation installs step, step-ca and etcd in a run of `deploys/cluster.py` (one"
    " wave instead of three), and the unit fact reads all units of an operation in three"
    " commands (2026-12-01): the no-op re-run came under 3x its floor.",
]


def _controller_line(r: dict) -> str:
    """The controller's CPU time per host added, from the issuance runs (target 0.05 s)."""
    n_lo, n_hi = CLIENT_COUNTS[0], CLIENT_COUNTS[-1]
    keys = [f"issue_n{n}_controller_cpu" for n in (n_lo, n_hi)]
    if not all(key in r for key in keys):
        return "Controller CPU per extra host: not measured."
    per_host = (r[keys[1]] - r[keys[0]]) / (n_hi - n_lo)
    verdict = "met" if per_host <= 0.05 else "NOT met"
    return (f"Controller CPU per extra host (issuance, {n_lo} to {n_hi} clients):"
            f" {per_host:.3f} s (target <= 0.05 s: {verdict}).")  # fmt: skip


def _memory() -> str:
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        return f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown memory"


def _plot(r: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    pairs = [("create", "create"), ("rerun", "re-run"), ("add_member", "add member"),
             ("renew_all", "renew all"), ("rolling_restart", "rolling restart"),
             ("restore", "CA restore"), ("failover", "failover")]  # fmt: skip
    pairs = [(key, label) for key, label in pairs if key in r]
    left.bar([label for _, label in pairs], [r[key] for key, _ in pairs], color="#4c72b0")
    if "floor" in r:
        left.axhline(r["floor"], color="#c44e52", linestyle="--", label=f"floor {r['floor']:.1f} s")
    left.set_ylabel("seconds")
    left.set_title("Each figure against the floor (pyinfra exec -- true)")
    left.tick_params(axis="x", rotation=30)
    left.legend()
    counts = [n for n in CLIENT_COUNTS if f"issue_n{n}" in r]
    right.plot(
        counts, [r[f"issue_n{n}"] for n in counts], marker="o", label="issue every certificate"
    )
    right.plot(counts, [r[f"floor_n{n}"] for n in counts], marker="s", linestyle="--",
               label="floor on the same hosts")  # fmt: skip
    bounded = [n for n in counts if f"issue_n{n}_hosts_cpu" in r]
    if bounded:
        right.plot(bounded, [_cpu_bound(r, n) for n in bounded], marker="^", linestyle=":",
                   label="CPU time of hosts and controller / cores")  # fmt: skip
    right.set_xlabel("clients (besides 3 members)")
    right.set_ylabel("seconds")
    right.set_title("Issuance time against the number of clients")
    right.set_xticks(counts)
    right.legend()
    fig.tight_layout()
    fig.savefig(OUT / "results.png", dpi=110)

"""Turns: hosts of one parallel operation take their run-time step one at a time, and a host
that asks to go last (an etcd leader) lets every other host due a turn go first."""

from __future__ import annotations

from dataclasses import dataclass, field

import gevent

from etcd_step_pki.operations import turns


@dataclass(eq=False)
class _Host:
    name: str
    current_op_hash: str = "op"


@dataclass
class _Inventory:
    hosts: list[_Host]

    def get_active_hosts(self) -> list[_Host]:
        return self.hosts


@dataclass
class _State:
    inventory: _Inventory
    ops: dict = field(default_factory=dict)


def test_the_host_that_asks_goes_last_and_no_two_overlap() -> None:
    hosts = [_Host(n) for n in ("leader", "a", "b")]
    state = _State(_Inventory(hosts), {h: {"op": object()} for h in hosts})
    order: list[str] = []
    inside: list[str] = []

    def member(host: _Host, delay: float) -> None:
        gevent.sleep(delay)  # the operation's body: facts read, then registered
        turns.register(state, "restart", host.name, True)  # type: ignore[arg-type]
        with turns.last_turn_if(state, "restart", host, lambda: host.name == "leader"):  # type: ignore[arg-type]
            inside.append(host.name)
            assert len(inside) == 1  # one at a time
            order.append(host.name)
            gevent.sleep(0.05)
            inside.remove(host.name)

    # The leader is the first to finish its body and would take the first turn.
    gevent.joinall([gevent.spawn(member, hosts[0], 0), gevent.spawn(member, hosts[1], 0.02),
                    gevent.spawn(member, hosts[2], 0.04)])  # fmt: skip
    assert order[-1] == "leader" and sorted(order) == ["a", "b", "leader"]


def test_a_host_not_due_is_not_waited_for() -> None:
    hosts = [_Host("leader"), _Host("idle")]
    state = _State(_Inventory(hosts), {h: {"op": object()} for h in hosts})
    turns.register(state, "restart", "idle", False)  # type: ignore[arg-type]
    turns.register(state, "restart", "leader", True)  # type: ignore[arg-type]
    entered: list[str] = []
    # Were "idle" waited for, the leader would wait LAST_WAIT (600 s) before its turn.
    timeout = gevent.Timeout(2, AssertionError("the leader waited for a host not due"))
    with timeout, turns.last_turn_if(state, "restart", hosts[0], lambda: True):  # type: ignore[arg-type]
        entered.append("leader")
    assert entered == ["leader"]
    assert turns._of(state, "restart").done == {"leader"}  # type: ignore[arg-type]

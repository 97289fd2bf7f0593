"""Rolling-update arithmetic must move pods exactly as the Kubernetes deployment controller does.

The facts come from the Kubernetes documentation (concepts/workloads/controllers/deployment)
and ``pkg/controller/deployment`` (rolling.go, recreate.go, util/deployment_util.go): surge
rounds up, unavailable rounds down, both zero means one unavailable; the new ReplicaSet is
scaled up first, old ones are scaled down only as far as ``desired - maxUnavailable`` allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pytest

from funade.core import rolling
from funade.core.rolling import Revision, Scale

pytestmark = pytest.mark.unit


# --- resolve_fenceposts -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_surge", "max_unavailable", "desired", "expected"),
    [
        ("25%", "25%", 10, (3, 2)),  # the defaults: surge rounds up, unavailable rounds down
        ("25%", "25%", 4, (1, 1)),
        ("25%", "25%", 3, (1, 0)),
        ("50%", "50%", 3, (2, 1)),
        ("0%", "25%", 3, (0, 1)),  # both round to 0 → one pod may be unavailable
        ("0%", "10%", 5, (0, 1)),
        (0, "50%", 1, (0, 1)),
        (0, 0, 5, (0, 1)),
        (1, 0, 3, (1, 0)),
        (0, 1, 3, (0, 1)),
        (2, 3, 10, (2, 3)),  # absolute counts are taken as they are
        ("25%", "25%", 1, (1, 0)),  # percentages of one replica
        ("100%", "100%", 1, (1, 1)),
        ("100%", "0%", 1, (1, 0)),
        ("0%", "100%", 1, (0, 1)),
        ("1%", "99%", 1, (1, 0)),
        ("25%", "25%", 0, (0, 1)),
    ],
)
def test_resolve_fenceposts(
    max_surge: int | str, max_unavailable: int | str, desired: int, expected: tuple[int, int]
) -> None:
    assert rolling.resolve_fenceposts(max_surge, max_unavailable, desired) == expected


def test_resolve_fenceposts_rejects_malformed_values() -> None:
    with pytest.raises(ValueError, match="IntOrString"):
        rolling.resolve_fenceposts("25", "25%", 10)


def test_documented_example_bounds() -> None:
    """'replicas 10, maxSurge 25% → at most 13 pods; maxUnavailable 25% → at least 8 available'."""
    surge, unavailable = rolling.resolve_fenceposts("25%", "25%", 10)
    assert 10 + surge == 13
    assert 10 - unavailable == 8


# --- a tiny cluster simulator -------------------------------------------------------------


@dataclass
class Cluster:
    """ReplicaSets whose pods appear at once on scale-up and turn available on ``settle``.

    Scaling down removes unavailable pods first, as the ReplicaSet controller does.
    """

    desired: int
    surge: int
    unavailable: int
    new: Revision
    old: list[Revision]
    never_ready: set[str] = field(default_factory=set)
    history: list[list[Scale]] = field(default_factory=list)

    @classmethod
    def rollout(cls, desired: int, surge: int, unavailable: int, never_ready: frozenset[str] = frozenset()) -> Cluster:
        """A fully available old revision and a new revision with no replicas yet."""
        old = Revision("web-old", 1, replicas=desired, pods=desired, ready=desired, available=desired)
        new = Revision("web-new", 2, replicas=0)
        return cls(desired, surge, unavailable, new, [old], never_ready=set(never_ready))

    def revisions(self) -> list[Revision]:
        return [self.new, *self.old]

    def total_replicas(self) -> int:
        return sum(r.replicas for r in self.revisions())

    def total_pods(self) -> int:
        return sum(r.pods for r in self.revisions())

    def total_available(self) -> int:
        return sum(r.available for r in self.revisions())

    def step(self) -> list[Scale]:
        decisions = rolling.rolling_step(self.desired, self.surge, self.unavailable, self.new, list(self.old))
        self.history.append(decisions)
        for decision in decisions:
            self._apply(decision)
        return decisions

    def _apply(self, decision: Scale) -> None:
        def scaled(rev: Revision) -> Revision:
            assert decision.replicas >= 0, decision
            if decision.replicas >= rev.pods:
                return replace(rev, replicas=decision.replicas, pods=decision.replicas)
            keep = decision.replicas
            return replace(
                rev,
                replicas=keep,
                pods=keep,
                ready=min(rev.ready, keep),
                available=min(rev.available, keep),
            )

        if decision.name == self.new.name:
            self.new = scaled(self.new)
            return
        matches = [r for r in self.old if r.name == decision.name]
        assert len(matches) == 1, f"decision for an unknown revision: {decision}"
        self.old = [scaled(r) if r.name == decision.name else r for r in self.old]

    def settle(self) -> bool:
        """Let every pod that can become ready do so; tell whether anything changed."""

        def ready(rev: Revision) -> Revision:
            if rev.name in self.never_ready:
                return rev
            return replace(rev, ready=rev.pods, available=rev.pods)

        before = self.revisions()
        self.new = ready(self.new)
        self.old = [ready(r) for r in self.old]
        return before != self.revisions()

    def complete(self) -> bool:
        return rolling.is_complete(self.desired, self.new, list(self.old))

    def check_invariants(self) -> None:
        assert self.total_replicas() <= self.desired + self.surge, self.revisions()
        assert self.total_pods() <= self.desired + self.surge, self.revisions()
        assert self.total_available() >= self.desired - self.unavailable, self.revisions()
        for rev in self.revisions():
            assert 0 <= rev.available <= rev.ready <= rev.pods <= rev.replicas, rev

    def run(self, max_rounds: int = 200) -> None:
        """Sync until the rollout completes or stalls, checking the invariants at every step."""
        self.check_invariants()
        for _ in range(max_rounds):
            decisions = self.step()
            self.check_invariants()
            if self.complete():
                return
            if not decisions and not self.settle():
                return  # stalled: no decision and no pod can change state
            self.check_invariants()
        pytest.fail(f"rollout did not settle in {max_rounds} rounds: {self.revisions()}")


STRATEGIES = [
    ("25%", "25%"),
    (1, 0),
    (0, 1),
    ("100%", "0%"),
    ("0%", "100%"),
    ("50%", "50%"),
    (2, 2),
    ("0%", "10%"),  # rounds to 0/0 → one unavailable
    (5, 0),  # surge larger than desired for small deployments
    (0, 5),  # unavailable larger than desired for small deployments
]


@pytest.mark.parametrize("desired", [1, 3, 10])
@pytest.mark.parametrize(("max_surge", "max_unavailable"), STRATEGIES)
def test_rollout_keeps_bounds_and_finishes(desired: int, max_surge: int | str, max_unavailable: int | str) -> None:
    surge, unavailable = rolling.resolve_fenceposts(max_surge, max_unavailable, desired)
    cluster = Cluster.rollout(desired, surge, unavailable)

    cluster.run()

    assert cluster.complete(), cluster.revisions()
    assert cluster.new.replicas == desired
    assert cluster.new.available == desired
    assert all(r.replicas == 0 and r.pods == 0 for r in cluster.old)
    assert rolling.rolling_step(desired, surge, unavailable, cluster.new, list(cluster.old)) == []


def test_documented_example_reaches_but_never_crosses_the_bounds() -> None:
    surge, unavailable = rolling.resolve_fenceposts("25%", "25%", 10)
    cluster = Cluster.rollout(10, surge, unavailable)
    peak_pods, lowest_available = 0, 10

    cluster.check_invariants()
    for _ in range(100):
        decisions = cluster.step()
        peak_pods = max(peak_pods, cluster.total_pods())
        lowest_available = min(lowest_available, cluster.total_available())
        if cluster.complete():
            break
        if not decisions:
            cluster.settle()

    assert cluster.complete()
    assert peak_pods == 13
    assert lowest_available == 8


def test_first_decisions_of_the_default_strategy_on_ten_replicas() -> None:
    cluster = Cluster.rollout(10, 3, 2)

    assert cluster.step() == [Scale("web-new", 3, "scaled up new revision to 3")]
    # The new pods are not available yet: old pods may only go down to minAvailable (8).
    assert cluster.step() == [Scale("web-old", 8, "scaled down old revision to 8")]
    # Room again for two more new pods (13 - 11), and then nothing until pods become ready.
    assert cluster.step() == [Scale("web-new", 5, "scaled up new revision to 5")]
    assert cluster.step() == []


def test_rollout_with_several_old_revisions_scales_the_oldest_down_first() -> None:
    # A rollout interrupted by a second template change: two old revisions are live.
    oldest = Revision("web-1", 1, replicas=6, pods=6, ready=6, available=6)
    middle = Revision("web-2", 2, replicas=4, pods=4, ready=4, available=4)
    new = Revision("web-3", 3, replicas=0)
    cluster = Cluster(10, 3, 2, new, [middle, oldest])

    assert cluster.step() == [Scale("web-3", 3, "scaled up new revision to 3")]
    assert cluster.step() == [Scale("web-1", 4, "scaled down old revision to 4")]

    cluster.run()
    assert cluster.complete()


def test_unavailable_old_pods_are_removed_first_and_cost_no_capacity() -> None:
    new = Revision("web-new", 2, replicas=3, pods=3, ready=3, available=3)
    old = Revision("web-old", 1, replicas=10, pods=10, ready=7, available=7)

    decisions = rolling.rolling_step(10, 3, 2, new, [old])

    # 3 unhealthy pods go (maxScaledDown = 13 - 8 - 0 = 5), then 2 more as availability
    # allows (10 available - minAvailable 8); k8s: cleanupUnhealthyReplicas, then
    # scaleDownOldReplicaSetsForRollingUpdate.
    assert decisions == [Scale("web-old", 5, "scaled down old revision to 5")]


def test_unhealthy_cleanup_is_bounded_by_max_scaled_down() -> None:
    new = Revision("web-new", 2, replicas=2, pods=2, ready=0, available=0)
    old = Revision("web-old", 1, replicas=10, pods=10, ready=5, available=5)

    decisions = rolling.rolling_step(10, 2, 4, new, [old])

    # maxScaledDown = 12 - minAvailable 6 - 2 unavailable new pods = 4, although 5 old
    # pods are unhealthy; with 5 available (< minAvailable 6) no healthy pod may go.
    assert decisions == [Scale("web-old", 6, "removed 4 unavailable pod(s) of old revision")]


def test_rollout_stalls_when_new_pods_never_become_ready() -> None:
    surge, unavailable = rolling.resolve_fenceposts("25%", "25%", 10)
    cluster = Cluster.rollout(10, surge, unavailable, never_ready=frozenset({"web-new"}))

    cluster.run()

    assert not cluster.complete()
    old = cluster.old[0]
    assert old.replicas == 8  # never below minAvailable
    assert old.available == 8
    assert cluster.new.replicas == 5  # filled up to maxSurge: 5 + 8 = 13
    assert cluster.total_replicas() == 13
    # And it stays there: the controller waits rather than trading availability.
    assert rolling.rolling_step(10, surge, unavailable, cluster.new, list(cluster.old)) == []


@pytest.mark.parametrize("desired", [1, 3, 10])
def test_stalled_rollout_without_surge_keeps_min_available(desired: int) -> None:
    surge, unavailable = rolling.resolve_fenceposts(0, "25%", desired)
    cluster = Cluster.rollout(desired, surge, unavailable, never_ready=frozenset({"web-new"}))

    cluster.run()

    assert not cluster.complete()
    assert cluster.total_available() == desired - unavailable
    assert cluster.old[0].replicas == desired - unavailable
    assert cluster.total_replicas() <= desired


def test_new_revision_above_desired_is_scaled_down_first() -> None:
    new = Revision("web-new", 2, replicas=12, pods=12, ready=12, available=12)
    old = Revision("web-old", 1, replicas=2, pods=2, ready=2, available=2)

    decisions = rolling.rolling_step(10, 3, 2, new, [old])

    assert decisions == [Scale("web-new", 10, "scaled down new revision to the desired count")]


def test_scale_down_after_lowering_replicas_finishes() -> None:
    new = Revision("web-new", 2, replicas=12, pods=12, ready=12, available=12)
    cluster = Cluster(10, 3, 2, new, [])

    cluster.run()

    assert cluster.new.replicas == 10
    assert cluster.complete()


def test_no_scale_up_when_the_surge_budget_is_used() -> None:
    new = Revision("web-new", 2, replicas=3, pods=3)
    old = Revision("web-old", 1, replicas=10, pods=10, ready=10, available=10)

    # 13 pods already: the new revision cannot grow; old may lose 2 (10 - 8).
    assert rolling.rolling_step(10, 3, 2, new, [old]) == [Scale("web-old", 8, "scaled down old revision to 8")]


def test_nothing_to_do_when_there_is_no_old_revision_and_new_is_at_desired() -> None:
    new = Revision("web-new", 2, replicas=3, pods=3, ready=1, available=1)
    assert rolling.rolling_step(3, 1, 0, new, []) == []


# --- recreate -----------------------------------------------------------------------------


def test_recreate_scales_every_old_revision_down_first() -> None:
    new = Revision("web-3", 3, replicas=0)
    old = [
        Revision("web-1", 1, replicas=2, pods=2, ready=2, available=2),
        Revision("web-2", 2, replicas=1, pods=1),
        Revision("web-0", 0, replicas=0),
    ]

    decisions = rolling.recreate_step(3, new, old)

    assert decisions == [
        Scale("web-1", 0, "Recreate: scaled down old revision"),
        Scale("web-2", 0, "Recreate: scaled down old revision"),
    ]


def test_recreate_waits_for_old_pods_to_be_gone() -> None:
    new = Revision("web-2", 2, replicas=0)
    terminating = Revision("web-1", 1, replicas=0, pods=2)

    assert rolling.recreate_step(3, new, [terminating]) == []


def test_recreate_then_scales_the_new_revision_to_desired() -> None:
    new = Revision("web-2", 2, replicas=0)
    gone = Revision("web-1", 1, replicas=0, pods=0)

    assert rolling.recreate_step(3, new, [gone]) == [Scale("web-2", 3, "Recreate: scaled new revision to 3")]
    assert rolling.recreate_step(3, replace(new, replicas=3, pods=3), [gone]) == []


def test_recreate_never_runs_old_and_new_pods_together() -> None:
    new = Revision("web-2", 2, replicas=0)
    old = Revision("web-1", 1, replicas=3, pods=3, ready=3, available=3)
    seen: list[tuple[int, int]] = []

    for _ in range(10):
        decisions = rolling.recreate_step(3, new, [old])
        for d in decisions:
            if d.name == new.name:
                new = replace(new, replicas=d.replicas, pods=d.replicas)
            else:
                old = replace(old, replicas=d.replicas)  # pods terminate later
        seen.append((old.pods, new.pods))
        if not decisions:
            old = replace(old, pods=0, ready=0, available=0)  # the old pods exit
            new = replace(new, ready=new.pods, available=new.pods)
        if rolling.is_complete(3, new, [old]):
            break

    assert rolling.is_complete(3, new, [old])
    assert all(old_pods == 0 or new_pods == 0 for old_pods, new_pods in seen)


# --- is_complete ---------------------------------------------------------------------------


def _full(name: str, revision: int, n: int) -> Revision:
    return Revision(name, revision, replicas=n, pods=n, ready=n, available=n)


def test_is_complete_when_everything_is_updated_and_available() -> None:
    assert rolling.is_complete(3, _full("new", 2, 3), [Revision("old", 1, replicas=0)])
    assert rolling.is_complete(3, _full("new", 2, 3), [])
    assert rolling.is_complete(0, Revision("new", 2, replicas=0), [])


@pytest.mark.parametrize(
    ("new", "old"),
    [
        (Revision("new", 2, replicas=3, pods=3, ready=3, available=2), []),  # one not available
        (Revision("new", 2, replicas=3, pods=3, ready=3, available=0), []),  # ready, minReadySeconds pending
        (Revision("new", 2, replicas=3, pods=2, ready=2, available=2), []),  # a pod is missing
        (Revision("new", 2, replicas=2, pods=2, ready=2, available=2), []),  # not at desired
        (_full("new", 2, 4), []),  # above desired
        (_full("new", 2, 3), [Revision("old", 1, replicas=1, pods=1, ready=1, available=1)]),
        (_full("new", 2, 3), [Revision("old", 1, replicas=0, pods=1)]),  # an old pod terminating
    ],
)
def test_is_not_complete(new: Revision, old: list[Revision]) -> None:
    assert not rolling.is_complete(3, new, old)


# --- circuit breaker -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "threshold"),
    [
        (0, 3),
        (1, 3),
        (3, 3),
        (6, 3),
        (7, 4),
        (25, 13),
        (400, 200),
        (401, 200),
        (800, 200),
    ],
)
def test_circuit_breaker_threshold(desired: int, threshold: int) -> None:
    """ECS: min(200, max(3, ceil(0.5 × desired)))."""
    assert rolling.circuit_breaker_threshold(desired) == threshold

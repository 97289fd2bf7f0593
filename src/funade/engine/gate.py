"""The deploy gate: what an environment refuses to run, decided before anything is stored.

A namespace opts in with annotations:

- ``funade.io/scan-gate: HIGH`` — every image must have a scan result (the server scans
  each push) with no finding at or above that severity (``CRITICAL`` or ``HIGH``, …).
- ``funade.io/policy-profile: production`` — the manifests must pass ``funade policy
  check`` at the error threshold for that profile (Pod Security restricted, latest or
  untagged images, replicas, PDB …).

The apply is all or nothing: one refusal and no object is stored. Two explicit overrides
let it through, and each is written to the audit log (who, what, why; ``funade audit``):
``--force-gate REASON`` on the command line, for the whole apply, or the annotation
``funade.io/gate-override: REASON`` on an object, for that object only (the way a change
reviewed in git, synced by GitOps, carries its own exception).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from funade.core import manifests
from funade.core.policy import Severity
from funade.core.policy import manifests as policy
from funade.core.vuln.osv import Level

__all__ = [
    "OVERRIDE_ANNOTATION",
    "POLICY_ANNOTATION",
    "SCAN_ANNOTATION",
    "Gate",
    "GateError",
    "Refusal",
    "images_of",
    "refusals",
]

SCAN_ANNOTATION = "funade.io/scan-gate"
POLICY_ANNOTATION = "funade.io/policy-profile"
OVERRIDE_ANNOTATION = "funade.io/gate-override"
Obj = dict[str, Any]


class GateError(ValueError):
    """A gate annotation funade cannot read; the message names the namespace and the value."""


@dataclass(frozen=True)
class Gate:
    """One namespace's gate: the lowest blocking severity and the policy profile (None: off)."""

    namespace: str
    severity: Level | None = None
    profile: policy.Profile | None = None

    @property
    def active(self) -> bool:
        return self.severity is not None or self.profile is not None

    @classmethod
    def of(cls, namespace: Obj | None, name: str) -> Gate:
        annotations = ((namespace or {}).get("metadata") or {}).get("annotations") or {}
        severity = annotations.get(SCAN_ANNOTATION)
        profile = annotations.get(POLICY_ANNOTATION)
        try:
            level = Level(str(severity).upper()) if severity else None
        except ValueError:
            raise GateError(
                f"namespace {name}: {SCAN_ANNOTATION}: {severity!r} is not CRITICAL, HIGH, MEDIUM or LOW"
            ) from None
        try:
            chosen = policy.Profile(str(profile)) if profile else None
        except ValueError:
            raise GateError(
                f"namespace {name}: {POLICY_ANNOTATION}: {profile!r} is not default or production"
            ) from None
        return cls(name, level, chosen)


def images_of(obj: Obj) -> list[str]:
    """The container images an object runs (pods and pod templates)."""
    spec = obj.get("spec") or {}
    pod = spec.get("template", {}).get("spec") if obj.get("kind") != "Pod" else spec
    if obj.get("kind") == "CronJob":
        pod = (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")
    if not isinstance(pod, Mapping):
        return []
    containers = [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]
    return [str(c["image"]) for c in containers if isinstance(c, Mapping) and c.get("image")]


@dataclass(frozen=True)
class Refusal:
    """One reason the gate refuses one object.

    Attributes:
        obj: ``Kind/name`` of the object refused.
        message: why, in one line (the image and its findings, or the policy rule).
        override: the object's own ``funade.io/gate-override`` reason, if it carries one.
    """

    obj: str
    message: str
    override: str | None = None


def _override_of(obj: Obj) -> str | None:
    reason = ((obj.get("metadata") or {}).get("annotations") or {}).get(OVERRIDE_ANNOTATION)
    text = str(reason).strip() if reason is not None else ""
    return text or None


def _name_of(obj: Obj) -> str:
    return f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"


def _scan_reasons(severity: Level, images: Sequence[str], scans: Mapping[str, Obj | None]) -> dict[str, str]:
    """Per refused image, why."""
    blocking = {level.value for level in Level if level.rank <= severity.rank and level is not Level.UNKNOWN}
    reasons: dict[str, str] = {}
    for image in images:
        result = scans.get(image)
        if result is None:
            reasons[image] = (
                f"image {image} has no scan result (the server scans what is pushed to its registry, "
                "once it has vulnerability data: `funade vuln db update`)"
            )
            continue
        bad = [f for f in result.get("findings") or [] if f.get("severity") in blocking]
        if bad:
            ids = ", ".join(sorted({str(f["id"]) for f in bad})[:5])
            reasons[image] = f"image {image} has {len(bad)} finding(s) at or above {severity.value} ({ids})"
    return reasons


def refusals(
    gate: Gate,
    objects: Sequence[Obj],
    scans: Mapping[str, Obj | None],
) -> list[Refusal]:
    """Why the gate refuses these objects (empty: they may run), object by object.

    Args:
        scans: per image reference, its scan result (``findings`` with ``severity``), or
            None when there is none (not in a registry funade scans, or not scanned yet).
    """
    if not gate.active:
        return []
    found: list[Refusal] = []
    if gate.severity is not None:
        by_image = _scan_reasons(gate.severity, sorted({i for obj in objects for i in images_of(obj)}), scans)
        for obj in objects:
            for image in dict.fromkeys(images_of(obj)):
                if image in by_image:
                    found.append(Refusal(_name_of(obj), by_image[image], _override_of(obj)))
    if gate.profile is not None:
        # Each document's source is its index, so a finding leads back to its object.
        documents = [manifests.Document(dict(obj), source=str(i)) for i, obj in enumerate(objects)]
        for finding in policy.check(documents, gate.profile):
            if finding.severity is Severity.ERROR:
                obj = objects[int(finding.source)]
                message = f"policy {gate.profile.value}: {finding.rule} {finding.message}"
                found.append(Refusal(_name_of(obj), message, _override_of(obj)))
    return found

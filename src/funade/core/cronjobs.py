"""CronJob decisions, made the way the Kubernetes CronJob controller makes them.

The local target runs ``batch/v1`` CronJobs itself. A CronJob moved later to a real
cluster must start the same Jobs at the same moments, so this module follows the "v2"
controller in ``pkg/controller/cronjob`` (``cronjob_controllerv2.go``, ``utils.go``), the
API validation of ``pkg/apis/batch/validation`` and the ``robfig/cron/v3`` standard parser
that both of them use:

- :func:`parse_schedule` reads the five-field cron syntax and the ``@hourly``-style
  descriptors (``cron.ParseStandard``); :meth:`Schedule.next_after` is robfig's
  ``SpecSchedule.Next``, which walks wall-clock fields in the schedule's zone. That is
  why a ``30 2 * * *`` job is skipped on the night clocks spring forward over 02:30,
  and runs twice on the night they fall back over it, exactly as on a cluster;
- :func:`parse` validates a CronJob and applies the API defaults;
- :func:`decide` is one ``sync``: trim the finished-Job history, find the most recent
  unmet schedule time, honour ``suspend``, ``startingDeadlineSeconds`` and
  ``concurrencyPolicy``, and say when to look again;
- :func:`job_from_template` builds the child Job a cluster would create.

Without ``spec.timeZone`` a cluster uses kube-controller-manager's local zone, which is
UTC in practically every installation; funade's controller always runs in UTC, so the
default zone here is UTC.

The decision is computed from live state alone: every unfinished child Job counts as
active, instead of the ``status.active`` list Kubernetes keeps. After a crash between
creating a Job and writing the status, funade therefore still honours ``Forbid``.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from fractions import Fraction
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from funade.core import objects

__all__ = [
    "MAX_MISSED_SCHEDULES",
    "MAX_NAME_LENGTH",
    "NEXT_SCHEDULE_DELTA",
    "SCHEDULED_TIMESTAMP_ANNOTATION",
    "ChildJob",
    "CronError",
    "CronJobSpec",
    "Decision",
    "Event",
    "JobToCreate",
    "Schedule",
    "decide",
    "job_from_template",
    "job_name",
    "observe_job",
    "parse",
    "parse_schedule",
]

SCHEDULED_TIMESTAMP_ANNOTATION = "batch.kubernetes.io/cronjob-scheduled-timestamp"
"""Annotation carrying a child Job's scheduled time (RFC 3339, in the CronJob's zone)."""
MAX_MISSED_SCHEDULES = 100
"""More missed start times than this earn the ``TooManyMissedTimes`` warning."""
NEXT_SCHEDULE_DELTA = 0.1
"""Seconds added to every requeue so the next sync lands just after the schedule time."""
MAX_NAME_LENGTH = 52
"""Longest CronJob name: 63 (a label) minus the 11 characters of ``-<minutes>``."""

ConcurrencyPolicy = Literal["Allow", "Forbid", "Replace"]
Finished = Literal["Complete", "Failed"]

_UTC = UTC
_EPOCH = datetime(1970, 1, 1, tzinfo=_UTC)
_NAIVE_EPOCH = datetime(1970, 1, 1)
_SECOND = timedelta(seconds=1)
_YEAR_LIMIT = 5  # robfig gives up when nothing matches within five years

_SCHEDULE = "spec.schedule"
_TEMPLATE = "spec.jobTemplate"
_POD_SPEC = "spec.jobTemplate.spec.template.spec"
_POLICIES: tuple[ConcurrencyPolicy, ...] = ("Allow", "Forbid", "Replace")

# validTimeZoneCharacters in pkg/apis/batch/validation.
_ZONE_PART = re.compile(r"[A-Za-z.\-_0-9+]{1,14}")
_NUMBER = re.compile(r"\+?[0-9]+")  # what strconv.Atoi accepts once '-' has been split off
_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTHS = {name.lower(): i for i, name in enumerate(_MONTH_ABBR, 1)}
_DAY_ABBR = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")  # datetime.weekday() order
_WEEKDAYS = {name.lower(): (i + 1) % 7 for i, name in enumerate(_DAY_ABBR)}  # Sunday = 0


class CronError(ValueError):
    """A schedule or CronJob object is invalid. The message starts with the field path."""


# --- the schedule (robfig/cron v3) ------------------------------------------------------------


@dataclass(frozen=True)
class _Bounds:
    label: str
    low: int
    high: int
    names: Mapping[str, int]


_MINUTE = _Bounds("minute", 0, 59, {})
_HOUR = _Bounds("hour", 0, 23, {})
_DOM = _Bounds("day of month", 1, 31, {})
_MONTH = _Bounds("month", 1, 12, _MONTHS)
_DOW = _Bounds("day of week", 0, 6, _WEEKDAYS)


def _bits(low: int, high: int, step: int = 1) -> int:
    return sum(1 << i for i in range(low, high + 1, step))


@dataclass(frozen=True)
class Schedule:
    """A parsed cron schedule, as ``cron.ParseStandard`` returns it.

    Each field is a bit set: bit ``n`` set means value ``n`` matches. Day of week counts
    from Sunday = 0.

    Attributes:
        text: the schedule as written.
        minute: matching minutes (0-59).
        hour: matching hours (0-23).
        dom: matching days of the month (1-31).
        month: matching months (1-12).
        dow: matching days of the week (0-6).
        dom_star: the day-of-month field was ``*`` or ``?`` (without a step above 1).
        dow_star: the same for day of week. When neither is a star, a day matches if
            *either* field matches it (the classic cron rule); otherwise both must.
        every: for ``@every <duration>``, the interval in whole seconds; the bit sets are
            then unused.
        zone: the zone whose wall clock the fields describe (``spec.timeZone``).
    """

    text: str
    minute: int = 0
    hour: int = 0
    dom: int = 0
    month: int = 0
    dow: int = 0
    dom_star: bool = False
    dow_star: bool = False
    every: int | None = None
    zone: tzinfo = _UTC

    def next_after(self, t: datetime) -> datetime | None:
        """The first activation strictly after ``t``, in ``t``'s zone (robfig's ``Next``).

        Times are whole seconds. The search walks the calendar in :attr:`zone` and gives
        up after five years, as robfig does: a schedule such as ``0 0 30 2 *`` never
        fires and returns ``None`` (robfig's zero time).

        Raises:
            ValueError: ``t`` is naive.
        """
        found = self._next_unix(_unix(t))
        if found is None:
            return None
        return datetime.fromtimestamp(found, _require_aware(t, "t").tzinfo)

    def _next_unix(self, after: int) -> int | None:
        if self.every is not None:
            return after + self.every
        return _spec_next(self, after + 1)


def _require_aware(t: datetime, what: str) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {t!r}")
    return t


def _unix(t: datetime) -> int:
    """Whole seconds since the epoch, rounded down (Go drops the nanoseconds the same way)."""
    return (_require_aware(t, "time") - _EPOCH) // _SECOND


def _wall(unix: int, zone: tzinfo) -> datetime:
    return datetime.fromtimestamp(unix, zone)


def _offset(unix: int, zone: tzinfo) -> int:
    delta = _wall(unix, zone).utcoffset()
    return 0 if delta is None else delta // _SECOND


def _go_date(year: int, month: int, day: int, hour: int, minute: int, second: int, zone: tzinfo) -> int:
    """Go's ``time.Date``: normalise overflowing fields, then place the wall time in ``zone``.

    A wall time that does not exist, or exists twice, resolves the way Go resolves it:
    guess the offset in force at the wall time read as UTC, and keep it if the resulting
    instant still has that offset, otherwise take the offset in force at that instant.
    """
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    naive = datetime(year, month, 1) + timedelta(days=day - 1, hours=hour, minutes=minute, seconds=second)
    unix = (naive - _NAIVE_EPOCH) // _SECOND
    guess = _offset(unix, zone)
    if guess:
        unix -= _offset(unix - guess, zone)
    return unix


def _weekday(wall: datetime) -> int:
    return (wall.weekday() + 1) % 7  # Sunday = 0, as Go's Weekday


def _day_matches(schedule: Schedule, wall: datetime) -> bool:
    dom_match = bool(schedule.dom >> wall.day & 1)
    dow_match = bool(schedule.dow >> _weekday(wall) & 1)
    if schedule.dom_star or schedule.dow_star:
        return dom_match and dow_match
    return dom_match or dow_match


def _spec_next(s: Schedule, start: int) -> int | None:
    """``SpecSchedule.Next`` from the second ``start`` on, in whole Unix seconds."""
    zone = s.zone
    t = start
    added = False
    year_limit = _wall(t, zone).year + _YEAR_LIMIT
    while True:  # robfig's WRAP label
        w = _wall(t, zone)
        if w.year > year_limit:
            return None
        wrapped = False
        while not s.month >> w.month & 1:
            if not added:
                added = True
                t = _go_date(w.year, w.month, 1, 0, 0, 0, zone)
                w = _wall(t, zone)
            t = _go_date(w.year, w.month + 1, w.day, w.hour, w.minute, w.second, zone)
            w = _wall(t, zone)
            if w.month == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not _day_matches(s, w):
            if not added:
                added = True
                t = _go_date(w.year, w.month, w.day, 0, 0, 0, zone)
                w = _wall(t, zone)
            t = _go_date(w.year, w.month, w.day + 1, w.hour, w.minute, w.second, zone)
            w = _wall(t, zone)
            # Midnight may not exist on a DST day: land back on the day's first hour.
            if w.hour:
                t += (24 - w.hour) * 3600 if w.hour > 12 else -w.hour * 3600
                w = _wall(t, zone)
            if w.day == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not s.hour >> w.hour & 1:
            if not added:
                added = True
                t = _go_date(w.year, w.month, w.day, w.hour, 0, 0, zone)
            t += 3600
            w = _wall(t, zone)
            if w.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while not s.minute >> w.minute & 1:
            if not added:
                added = True
                t -= t % 60
            t += 60
            w = _wall(t, zone)
            if w.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue
        if w.second != 0:  # the standard parser's seconds field is always "0"
            added = True
            t += 60 - w.second
            continue
        return t


def _schedule_error(text: str, problem: str) -> CronError:
    return CronError(f"{_SCHEDULE}: {text!r}: {problem}")


def _number(token: str, bounds: _Bounds, expr: str) -> int:
    named = bounds.names.get(token.lower())
    if named is not None:
        return named
    if not _NUMBER.fullmatch(token):
        raise ValueError(f"{bounds.label}: failed to parse int from {token!r} in {expr!r}")
    return int(token)


def _range_bits(expr: str, bounds: _Bounds) -> tuple[int, bool]:
    """One comma-separated part of a field: ``*``, ``?``, ``n``, ``a-b``, each with ``/step``."""
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    star = False
    if low_high[0] in ("*", "?"):
        start, end, star = bounds.low, bounds.high, True
    else:
        start = _number(low_high[0], bounds, expr)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _number(low_high[1], bounds, expr)
        else:
            raise ValueError(f"{bounds.label}: too many hyphens: {expr}")
    step = 1
    if len(range_and_step) == 2:
        step = _number(range_and_step[1], _Bounds(bounds.label, 0, 0, {}), expr)
        if len(low_high) == 1:
            end = bounds.high  # "n/step" means "n-max/step"
        if step > 1:
            star = False  # "*/2" restricts the field, so the day-of-month/day-of-week OR rule applies
    elif len(range_and_step) > 2:
        raise ValueError(f"{bounds.label}: too many slashes: {expr}")
    if start < bounds.low:
        raise ValueError(f"{bounds.label}: beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        hint = " (Sunday is 0; 7 is not accepted)" if bounds is _DOW and end == 7 else ""
        raise ValueError(f"{bounds.label}: end of range ({end}) above maximum ({bounds.high}): {expr}{hint}")
    if start > end:
        raise ValueError(f"{bounds.label}: beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"{bounds.label}: step of range should be a positive number: {expr}")
    return _bits(start, end, step), star


def _field_bits(field: str, bounds: _Bounds) -> tuple[int, bool]:
    bits, star = 0, False
    for expr in field.split(","):
        if expr:  # strings.FieldsFunc drops empty parts
            more, more_star = _range_bits(expr, bounds)
            bits |= more
            star = star or more_star
    return bits, star


_GO_UNITS: Mapping[str, int] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # the micro sign
    "μs": 1_000,  # the Greek letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_GO_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)([^0-9.]+)")


def _go_duration_ns(text: str) -> Fraction:
    """Go's ``time.ParseDuration``, in nanoseconds."""
    body = text
    sign = 1
    if body[:1] in ("+", "-"):
        sign = -1 if body[0] == "-" else 1
        body = body[1:]
    if body == "0":
        return Fraction(0)
    if not body:
        raise ValueError(f"time: invalid duration {text!r}")
    total = Fraction(0)
    position = 0
    while position < len(body):
        part = _GO_PART.match(body, position)
        if part is None:
            raise ValueError(f"time: missing unit in duration {text!r}")
        number, unit = part.group(1), part.group(2)
        if number in ("", "."):
            raise ValueError(f"time: invalid duration {text!r}")
        if unit not in _GO_UNITS:
            raise ValueError(f"time: unknown unit {unit!r} in duration {text!r}")
        total += Fraction(number) * _GO_UNITS[unit]
        position = part.end()
    return sign * total


def _parse_every(text: str, zone: tzinfo) -> Schedule:
    try:
        nanoseconds = _go_duration_ns(text[len("@every ") :])
    except ValueError as exc:
        raise _schedule_error(text, f"failed to parse duration {text}: {exc}") from None
    # cron.Every: at least one second, and whole seconds only.
    seconds = max(1, int(nanoseconds // 1_000_000_000))
    return Schedule(text=text, every=seconds, zone=zone)


def _descriptor(text: str, zone: tzinfo) -> Schedule:
    """``parseDescriptor``: every descriptor fires at second 0 of minute 0."""
    days, months, weekdays, hours = _bits(1, 31), _bits(1, 12), _bits(0, 6), _bits(0, 23)
    # name: (hour, day of month, month, day of week, dom is a star, dow is a star)
    table: dict[str, tuple[int, int, int, int, bool, bool]] = {
        "@yearly": (1, 1 << 1, 1 << 1, weekdays, False, True),
        "@monthly": (1, 1 << 1, months, weekdays, False, True),
        "@weekly": (1, days, months, 1 << 0, True, False),
        "@daily": (1, days, months, weekdays, True, True),
        "@hourly": (hours, days, months, weekdays, True, True),
    }
    table["@annually"] = table["@yearly"]
    table["@midnight"] = table["@daily"]
    if text in table:
        hour, dom, month, dow, dom_star, dow_star = table[text]
        return Schedule(text, 1, hour, dom, month, dow, dom_star, dow_star, None, zone)
    if text.startswith("@every "):
        return _parse_every(text, zone)
    known = "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @every <duration>"
    raise _schedule_error(text, f"unrecognized descriptor, use {known}")


def parse_schedule(text: str, zone: tzinfo = _UTC) -> Schedule:
    """Parse a CronJob schedule the way the API server and the controller parse it.

    The syntax is ``cron.ParseStandard``'s: five fields (minute, hour, day of month,
    month, day of week) or a descriptor (``@yearly``/``@annually``, ``@monthly``,
    ``@weekly``, ``@daily``/``@midnight``, ``@hourly``, ``@every <Go duration>``). A
    field is a comma-separated list of ``*``, ``?`` (same as ``*``), ``n``, ``a-b``,
    each optionally followed by ``/step``; ``n/step`` means ``n-max/step``. Months and
    weekdays may be written ``JAN``-``DEC`` and ``SUN``-``SAT`` in any case. Day of week
    runs 0-6 from Sunday: ``7`` is refused, as the API server refuses it.
    ``TZ=``/``CRON_TZ=`` prefixes are refused in favour of ``spec.timeZone``, as the API
    server refuses them on new objects.

    A schedule that can never fire (``0 0 30 2 *``) parses, as it does on a cluster;
    :meth:`Schedule.next_after` returns ``None`` for it and :func:`decide` reports it.

    Args:
        text: the schedule.
        zone: the zone of the wall clock the schedule describes. UTC by default.

    Returns:
        The schedule.

    Raises:
        CronError: the schedule is invalid. The message names ``spec.schedule``, the
            cron field and the problem.
    """
    if not isinstance(text, str) or not text:
        raise CronError(f'{_SCHEDULE}: required, a cron expression such as "*/5 * * * *"')
    if "TZ" in text:
        raise _schedule_error(text, "cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
    if text.startswith("@"):
        return _descriptor(text, zone)
    fields = text.split()
    if len(fields) != 5:
        raise _schedule_error(
            text,
            f"expected exactly 5 fields (minute, hour, day of month, month, day of week), found {len(fields)}",
        )
    try:
        minute, _ = _field_bits(fields[0], _MINUTE)
        hour, _ = _field_bits(fields[1], _HOUR)
        dom, dom_star = _field_bits(fields[2], _DOM)
        month, _ = _field_bits(fields[3], _MONTH)
        dow, dow_star = _field_bits(fields[4], _DOW)
    except ValueError as exc:
        raise _schedule_error(text, str(exc)) from None
    return Schedule(text, minute, hour, dom, month, dow, dom_star, dow_star, None, zone)


# --- the CronJob object ---------------------------------------------------------------------


@dataclass(frozen=True)
class CronJobSpec:
    """A validated ``batch/v1`` CronJob with the API defaults applied.

    Attributes:
        name: ``metadata.name``.
        namespace: ``metadata.namespace`` (empty when not given).
        uid: ``metadata.uid`` (empty when not given), for the Jobs' owner reference.
        schedule: ``spec.schedule``, parsed in :attr:`time_zone`.
        time_zone: ``spec.timeZone``; ``None`` means UTC (the controller's zone).
        concurrency_policy: ``Allow`` (default), ``Forbid`` or ``Replace``.
        suspend: ``spec.suspend`` (default false).
        starting_deadline_seconds: how late a Job may still start; ``None`` means
            no limit.
        successful_jobs_history_limit: finished successful Jobs to keep (default 3).
        failed_jobs_history_limit: finished failed Jobs to keep (default 1).
    """

    name: str
    namespace: str
    uid: str
    schedule: Schedule
    time_zone: str | None
    concurrency_policy: ConcurrencyPolicy = "Allow"
    suspend: bool = False
    starting_deadline_seconds: int | None = None
    successful_jobs_history_limit: int = 3
    failed_jobs_history_limit: int = 1


def _mapping(value: object, path: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        kind = "nothing" if value is None else type(value).__name__
        raise CronError(f"{path}: required, a mapping (got {kind})")
    return value


def _optional_int(value: object, path: str, default: int | None) -> int | None:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise CronError(f"{path}: expected an integer, got {value!r}")
    if value < 0:
        raise CronError(f"{path}: must be greater than or equal to 0, got {value}")
    return value


def _string_map(value: object, path: str) -> None:
    if value is None:
        return
    entries = _mapping(value, path)
    for key, item in entries.items():
        if not isinstance(key, str) or not isinstance(item, str):
            raise CronError(f"{path}: keys and values must be strings, got {key!r}: {item!r}")


def _load_zone(name: object) -> tuple[str | None, tzinfo]:
    """``validateTimeZone`` plus ``time.LoadLocation``."""
    path = "spec.timeZone"
    if name is None:
        return None, _UTC
    if not isinstance(name, str):
        raise CronError(f"{path}: expected a string, got {name!r}")
    if not name:
        raise CronError(f"{path}: timeZone must be nil or non-empty string")
    for part in name.split("/"):
        if part in (".", "..") or part.startswith("-") or not _ZONE_PART.fullmatch(part):
            raise CronError(f"{path}: unknown time zone {name}")
    if name.lower() == "local":
        raise CronError(f"{path}: timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones")
    if name == "UTC":
        return name, _UTC
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"{path}: unknown time zone {name}") from None


def _check_template(spec: Mapping[str, object]) -> None:
    template = _mapping(spec.get("jobTemplate"), _TEMPLATE)
    template_meta = template.get("metadata")
    if template_meta is not None:
        meta = _mapping(template_meta, f"{_TEMPLATE}.metadata")
        _string_map(meta.get("labels"), f"{_TEMPLATE}.metadata.labels")
        _string_map(meta.get("annotations"), f"{_TEMPLATE}.metadata.annotations")
    job_spec = _mapping(template.get("spec"), f"{_TEMPLATE}.spec")
    pod_template = _mapping(job_spec.get("template"), f"{_TEMPLATE}.spec.template")
    pod_spec = _mapping(pod_template.get("spec"), _POD_SPEC)
    containers = pod_spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise CronError(f"{_POD_SPEC}.containers: required, at least one container")
    restart = pod_spec.get("restartPolicy")
    if restart not in ("OnFailure", "Never"):
        found = "missing, which defaults to Always" if restart is None else f"got {restart!r}"
        raise CronError(f"{_POD_SPEC}.restartPolicy: a Job's pods must use OnFailure or Never ({found})")


def parse(obj: Mapping[str, object]) -> CronJobSpec:
    """Validate a CronJob object and apply the ``batch/v1`` defaults.

    Args:
        obj: the object as loaded from YAML or JSON.

    Returns:
        The validated spec.

    Raises:
        CronError: the object is not a valid CronJob. The message names the field, for
            example ``spec.concurrencyPolicy: 'Sometimes' is not Allow, Forbid or Replace``.
    """
    root = _mapping(obj, "object")
    if root.get("apiVersion") != "batch/v1":
        raise CronError(f"apiVersion: must be batch/v1, got {root.get('apiVersion')!r}")
    if root.get("kind") != "CronJob":
        raise CronError(f"kind: must be CronJob, got {root.get('kind')!r}")
    meta = _mapping(root.get("metadata"), "metadata")
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        raise CronError("metadata.name: required, a non-empty string")
    problem = objects.dns1123_subdomain_error(name)
    if problem is not None:
        raise CronError(f"metadata.name: {problem}")
    if len(name) > MAX_NAME_LENGTH:
        raise CronError(f"metadata.name: must be no more than {MAX_NAME_LENGTH} characters, got {len(name)}")
    namespace = meta.get("namespace") or ""
    uid = meta.get("uid") or ""
    if not isinstance(namespace, str) or not isinstance(uid, str):
        raise CronError("metadata: namespace and uid must be strings")

    spec = _mapping(root.get("spec"), "spec")
    time_zone, zone = _load_zone(spec.get("timeZone"))
    raw_schedule = spec.get("schedule")
    if not isinstance(raw_schedule, str):
        raise CronError(f'{_SCHEDULE}: required, a cron expression such as "*/5 * * * *" (got {raw_schedule!r})')
    schedule = parse_schedule(raw_schedule, zone)
    raw_policy = spec.get("concurrencyPolicy")
    policy: ConcurrencyPolicy = "Allow"
    if raw_policy not in (None, ""):
        chosen = next((p for p in _POLICIES if p == raw_policy), None)
        if chosen is None:
            raise CronError(f"spec.concurrencyPolicy: {raw_policy!r} is not Allow, Forbid or Replace")
        policy = chosen
    suspend = spec.get("suspend", False)
    if suspend is None:
        suspend = False
    if not isinstance(suspend, bool):
        raise CronError(f"spec.suspend: expected true or false, got {suspend!r}")
    deadline = _optional_int(spec.get("startingDeadlineSeconds"), "spec.startingDeadlineSeconds", None)
    successful = _optional_int(spec.get("successfulJobsHistoryLimit"), "spec.successfulJobsHistoryLimit", 3)
    failed = _optional_int(spec.get("failedJobsHistoryLimit"), "spec.failedJobsHistoryLimit", 1)
    _check_template(spec)
    return CronJobSpec(
        name=name,
        namespace=namespace,
        uid=uid,
        schedule=schedule,
        time_zone=time_zone,
        concurrency_policy=policy,
        suspend=suspend,
        starting_deadline_seconds=deadline,
        successful_jobs_history_limit=3 if successful is None else successful,
        failed_jobs_history_limit=1 if failed is None else failed,
    )


# --- child Jobs -----------------------------------------------------------------------------


def job_name(cronjob_name: str, scheduled_time: datetime) -> str:
    """The child Job's name: ``<cronjob>-<scheduled time in minutes since the epoch>`` (``getJobName``).

    The name is the lock that stops two syncs from starting the same run twice.
    """
    return f"{cronjob_name}-{_unix(scheduled_time) // 60}"


def _rfc3339(t: datetime) -> str:
    offset = t.utcoffset() or timedelta(0)
    text = t.replace(microsecond=0, tzinfo=None).isoformat()
    if not offset:
        return f"{text}Z"
    minutes = offset // timedelta(minutes=1)
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _rfc1123z(t: datetime) -> str:
    u = t.astimezone(_UTC)
    return f"{_DAY_ABBR[u.weekday()]}, {u.day:02d} {_MONTH_ABBR[u.month - 1]} {u.year} {u:%H:%M:%S} +0000"


def job_from_template(obj: Mapping[str, object], scheduled_time: datetime) -> dict[str, object]:
    """The Job a cluster would create for ``obj`` at ``scheduled_time`` (``getJobFromTemplate2``).

    Labels and annotations come from ``spec.jobTemplate.metadata``, the Job spec is a
    copy of ``spec.jobTemplate.spec``, the scheduled time is recorded in the
    ``batch.kubernetes.io/cronjob-scheduled-timestamp`` annotation (RFC 3339 in the
    CronJob's zone), and an owner reference marks the CronJob as the controller.

    Raises:
        CronError: ``obj`` is not a valid CronJob.
    """
    spec = parse(obj)
    template = _mapping(_mapping(obj.get("spec"), "spec").get("jobTemplate"), _TEMPLATE)
    template_meta = template.get("metadata")
    meta = _mapping(template_meta, f"{_TEMPLATE}.metadata") if template_meta is not None else {}
    labels = dict(_mapping(meta.get("labels") or {}, f"{_TEMPLATE}.metadata.labels"))
    annotations = dict(_mapping(meta.get("annotations") or {}, f"{_TEMPLATE}.metadata.annotations"))
    annotations[SCHEDULED_TIMESTAMP_ANNOTATION] = _rfc3339(scheduled_time.astimezone(spec.schedule.zone))
    owner: dict[str, object] = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "name": spec.name,
        "controller": True,
        "blockOwnerDeletion": True,
    }
    if spec.uid:
        owner["uid"] = spec.uid
    metadata: dict[str, object] = {
        "name": job_name(spec.name, scheduled_time),
        "labels": labels,
        "annotations": annotations,
        "ownerReferences": [owner],
    }
    if spec.namespace:
        metadata["namespace"] = spec.namespace
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": copy.deepcopy(dict(_mapping(template.get("spec"), f"{_TEMPLATE}.spec"))),
    }


@dataclass(frozen=True)
class ChildJob:
    """One Job owned by the CronJob, as :func:`decide` needs to see it.

    Attributes:
        name: the Job name.
        scheduled_time: the run it belongs to (from the scheduled-timestamp annotation or
            the name suffix); ``None`` when neither says.
        finished: ``Complete`` or ``Failed`` once the Job has that condition with status
            ``True``; ``None`` while it is active.
        finished_at: ``status.completionTime`` of a complete Job (the failure time of a
            failed one).
        started_at: ``status.startTime``; history trimming deletes the earliest started
            first, as Kubernetes does.
    """

    name: str
    scheduled_time: datetime | None = None
    finished: Finished | None = None
    finished_at: datetime | None = None
    started_at: datetime | None = None


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=_UTC)


def observe_job(job: Mapping[str, object], cronjob_name: str) -> ChildJob:
    """Read what :func:`decide` needs from a Job object owned by ``cronjob_name``.

    Finished means the first ``Complete`` or ``Failed`` condition whose status is
    ``"True"`` (``getFinishedStatus``).
    """
    raw_meta = job.get("metadata")
    meta: Mapping[str, object] = raw_meta if isinstance(raw_meta, Mapping) else {}
    name = str(meta.get("name", ""))
    annotations = meta.get("annotations")
    scheduled: datetime | None = None
    if isinstance(annotations, Mapping):
        scheduled = _timestamp(annotations.get(SCHEDULED_TIMESTAMP_ANNOTATION))
    suffix = name.removeprefix(f"{cronjob_name}-")
    if scheduled is None and suffix != name and suffix.isdigit():
        scheduled = _EPOCH + timedelta(minutes=int(suffix))
    raw_status = job.get("status")
    status: Mapping[str, object] = raw_status if isinstance(raw_status, Mapping) else {}
    finished: Finished | None = None
    finished_at: datetime | None = None
    conditions = status.get("conditions")
    for condition in conditions if isinstance(conditions, list) else []:
        if not isinstance(condition, Mapping) or condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            finished = "Complete"
            finished_at = _timestamp(status.get("completionTime")) or _timestamp(condition.get("lastTransitionTime"))
            break
        if condition.get("type") == "Failed":
            finished = "Failed"
            finished_at = _timestamp(condition.get("lastTransitionTime"))
            break
    return ChildJob(
        name=name,
        scheduled_time=scheduled,
        finished=finished,
        finished_at=finished_at,
        started_at=_timestamp(status.get("startTime")),
    )


# --- the decision ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """An event the controller records on the CronJob (reason and message as Kubernetes')."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class JobToCreate:
    """The Job this sync starts: build it with :func:`job_from_template`."""

    name: str
    scheduled_time: datetime


@dataclass(frozen=True)
class Decision:
    """The outcome of one CronJob sync.

    Attributes:
        create: the Job to create, or ``None``.
        delete: Jobs to delete, in order: finished Jobs beyond the history limits (oldest
            first), then the active Jobs a ``Replace`` run supersedes.
        active: the unfinished Jobs once the decision is applied (``status.active``).
        last_schedule_time: ``status.lastScheduleTime`` to store (UTC).
        last_successful_time: ``status.lastSuccessfulTime`` to store (UTC).
        events: the events of this sync.
        requeue_after: seconds until the next sync should run (just after the next
            schedule time), or ``None`` when only a change to the object can bring
            progress (suspended, or the schedule never fires). Sync again too whenever a
            child Job changes, as the controller does on Job events: that is when a run
            held back by ``Forbid`` gets started.
    """

    create: JobToCreate | None
    delete: tuple[str, ...]
    active: tuple[str, ...]
    last_schedule_time: datetime | None
    last_successful_time: datetime | None
    events: tuple[Event, ...]
    requeue_after: float | None


@dataclass(frozen=True)
class _Recent:
    earliest: datetime
    most_recent: datetime | None
    missed: int
    error: str | None = None


def _most_recent(
    schedule: Schedule,
    now: datetime,
    earliest: datetime,
    deadline: int | None,
) -> _Recent:
    """``mostRecentScheduleTime``: the latest schedule time in (earliest, now], roughly counted.

    Like Kubernetes it estimates how many times were missed from the gap between the
    next two times, then walks forward from one interval before the estimate, so a
    clock years off costs a few steps, not millions.
    """
    if deadline is not None:
        # Nothing older than the starting deadline will be started anyway.
        earliest = max(earliest, now - timedelta(seconds=deadline))
    t1 = schedule.next_after(earliest)
    t2 = schedule.next_after(t1) if t1 is not None else None
    if t1 is not None and now < t1:
        return _Recent(earliest, None, 0)
    if t1 is not None and t2 is not None and now < t2:
        return _Recent(earliest, t1, 0)
    between = 0 if t1 is None or t2 is None else round((t2 - t1) / _SECOND)
    if t1 is None or between < 1:
        problem = "time difference between two schedules is less than 1 second"
        return _Recent(earliest, None, 0, f"{problem} (no time matches it within five years)")
    elapsed = int((now - t1) / _SECOND)
    missed = elapsed // between + 1
    most_recent: datetime | None = None
    candidate = schedule.next_after(t1 + timedelta(seconds=(missed - 2) * between))
    while candidate is not None and candidate <= now:
        most_recent = candidate
        candidate = schedule.next_after(candidate)
    return _Recent(earliest, most_recent, missed)


def _requeue_after(schedule: Schedule, now: datetime, earliest: datetime) -> float | None:
    """``nextScheduleTimeDuration``: wait until just after the first schedule time past now."""
    recent = _most_recent(schedule, now, earliest, None)
    if recent.error is not None:
        base = now
    elif recent.most_recent is not None:
        base = recent.most_recent
    else:
        base = recent.earliest if recent.missed == 0 else now
    upcoming = schedule.next_after(base)
    if upcoming is None:
        return None
    return (upcoming - now) / _SECOND + NEXT_SCHEDULE_DELTA


def _started_order(job: ChildJob) -> tuple[bool, datetime, str]:
    # byJobStartTime: jobs without a start time sort last, names break ties.
    return (job.started_at is None, job.started_at or _EPOCH, job.name)


def _oldest_beyond(jobs: Iterable[ChildJob], limit: int) -> list[str]:
    ordered = sorted(jobs, key=_started_order)
    return [job.name for job in ordered[: max(0, len(ordered) - limit)]]


def _utc(t: datetime | None) -> datetime | None:
    return None if t is None else _require_aware(t, "time").astimezone(_UTC)


@dataclass(frozen=True)
class _Step:
    """What ``syncCronJob`` decided after the history cleanup."""

    requeue_after: float | None
    last_schedule_time: datetime | None
    create: JobToCreate | None = None
    replaced: tuple[str, ...] = ()
    events: tuple[Event, ...] = ()


def _schedule_step(
    spec: CronJobSpec,
    now: datetime,
    earliest: datetime,
    last: datetime | None,
    jobs: Sequence[ChildJob],
    active: Sequence[ChildJob],
) -> _Step:
    """``syncCronJob`` from the suspend check on: start the most recent unmet run, or wait."""
    schedule = spec.schedule
    recent = _most_recent(schedule, now, earliest, spec.starting_deadline_seconds)
    if recent.error is not None:
        message = f"invalid schedule: {schedule.text} : {recent.error}"
        return _Step(None, last, events=(Event("Warning", "InvalidSchedule", message),))
    if recent.most_recent is None:
        events: tuple[Event, ...] = ()
        if spec.starting_deadline_seconds is not None:
            # The deadline moved the search window past a time that was never started.
            skipped = _most_recent(schedule, now, earliest, None).most_recent
            if skipped is not None:
                message = f"Missed scheduled time to start a job: {_rfc1123z(skipped)}"
                events = (Event("Warning", "MissSchedule", message),)
        return _Step(_requeue_after(schedule, now, earliest), last, events=events)

    scheduled = recent.most_recent.astimezone(_UTC)
    warnings: tuple[Event, ...] = ()
    if recent.missed > MAX_MISSED_SCHEDULES:
        message = "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew"
        warnings = (Event("Warning", "TooManyMissedTimes", message),)
    name = job_name(spec.name, scheduled)
    if scheduled == last or any(job.name == name or job.scheduled_time == scheduled for job in jobs):
        # Already started (perhaps just before a crash lost the status): only record it.
        recorded = scheduled if last is None or scheduled > last else last
        return _Step(_requeue_after(schedule, now, recorded), recorded, events=warnings)
    if spec.concurrency_policy == "Forbid" and active:
        message = "Not starting job because prior execution is running and concurrency policy is Forbid"
        # lastScheduleTime stays, so the run still starts if the active Job ends in time.
        return _Step(
            _requeue_after(schedule, now, earliest),
            last,
            events=(*warnings, Event("Normal", "JobAlreadyActive", message)),
        )
    replaced = tuple(job.name for job in active) if spec.concurrency_policy == "Replace" else ()
    return _Step(
        _requeue_after(schedule, now, scheduled),
        scheduled,
        create=JobToCreate(name, scheduled),
        replaced=replaced,
        events=(
            *warnings,
            *(Event("Normal", "SuccessfulDelete", f"Deleted job {gone}") for gone in replaced),
            Event("Normal", "SuccessfulCreate", f"Created job {name}"),
        ),
    )


def decide(
    spec: CronJobSpec,
    now: datetime,
    created_at: datetime,
    last_schedule_time: datetime | None,
    jobs: Sequence[ChildJob],
    *,
    last_successful_time: datetime | None = None,
) -> Decision:
    """One sync of the CronJob controller (``sync``, ``cleanupFinishedJobs``, ``syncCronJob``).

    In order: finished Jobs beyond the history limits are deleted (even while
    suspended); ``lastSuccessfulTime`` moves to the latest completion; a suspended
    CronJob stops there. Otherwise the most recent schedule time after
    ``last_schedule_time`` (or ``created_at``) and not after ``now`` is the candidate,
    looking back no further than ``startingDeadlineSeconds``. A candidate that already
    has its Job (by name or scheduled time) is only recorded; ``Forbid`` with an active
    Job skips it without recording it; ``Replace`` deletes the active Jobs; then its Job
    is created.

    One addition to Kubernetes: when the starting deadline hides a schedule time that
    never got its Job, a ``MissSchedule`` warning names it. The controller's own
    "missed starting window" check can no longer fire, because the deadline already
    narrows its search, so on a cluster such a run vanishes without a word.

    Args:
        spec: the CronJob, from :func:`parse`.
        now: the time of this sync (timezone-aware).
        created_at: ``metadata.creationTimestamp``; the first schedule time considered
            is the first one after it.
        last_schedule_time: ``status.lastScheduleTime``; when set, it replaces
            ``created_at`` as the point after which schedule times count.
        jobs: every Job the CronJob controls (see :func:`observe_job`).
        last_successful_time: ``status.lastSuccessfulTime`` so far.

    Returns:
        What to create and delete, the status to store, the events and when to sync again.

    Raises:
        ValueError: a time is naive.
    """
    now = _require_aware(now, "now").astimezone(_UTC)
    created = _require_aware(created_at, "created_at").astimezone(_UTC)
    last = _utc(last_schedule_time)

    # cleanupFinishedJobs runs first, whatever else happens.
    succeeded = [job for job in jobs if job.finished == "Complete"]
    failed = [job for job in jobs if job.finished == "Failed"]
    trimmed = _oldest_beyond(succeeded, spec.successful_jobs_history_limit)
    trimmed += _oldest_beyond(failed, spec.failed_jobs_history_limit)
    cleanup = tuple(Event("Normal", "SuccessfulDelete", f"Deleted job {name}") for name in trimmed)

    successful = _utc(last_successful_time)
    for job in succeeded:
        finished_at = _utc(job.finished_at)
        if finished_at is not None and (successful is None or finished_at > successful):
            successful = finished_at
    active = [job for job in jobs if job.finished is None]

    if spec.suspend:
        step = _Step(None, last)
    else:
        step = _schedule_step(spec, now, last if last is not None else created, last, jobs, active)

    still_active = [job.name for job in active if job.name not in step.replaced]
    if step.create is not None:
        still_active.append(step.create.name)
    return Decision(
        create=step.create,
        delete=(*trimmed, *step.replaced),
        active=tuple(still_active),
        last_schedule_time=step.last_schedule_time,
        last_successful_time=successful,
        events=(*cleanup, *step.events),
        requeue_after=step.requeue_after,
    )

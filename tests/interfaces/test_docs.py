"""The documentation holds: every ``tinygan`` command in it parses, every relative link resolves.

Commands are the lines of fenced code blocks in ``README.md`` and ``docs/*.md`` that run
``python -m tinygan …`` or ``tinygan …`` (after ``VAR=value`` and ``env -u VAR`` prefixes), joined
across trailing backslashes, with comments removed and ``$VAR`` replaced by the name ``VAR``. Each
is parsed by the real argument parser, so an option that does not exist, or a value its type
refuses, fails here with the file and line. (Run folders and files need not exist: the parser
checks syntax and values only.) Links and images are the ``[text](target)`` and ``![alt](target)``
outside code; a relative target must name an existing file, and an anchor one of the headings
of the Markdown file it points to, as GitHub spells heading anchors.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from tinygan.interfaces.cli import build_parser

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PREFIX = r"(?:\w+=\S*\s+)*(?:env\s+(?:(?:-u\s+\S+|\w+=\S*)\s+)*)?"  # VAR=value, env -u VAR
COMMAND = re.compile(rf"^{PREFIX}(?:python3?\s+-m\s+tinygan|tinygan)(?:\s|$)")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+).*?\1")
SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def code_lines(text: str) -> list[tuple[int, str]]:
    """(line number, logical line) of every line inside fenced code blocks, backslash continuations joined."""
    out: list[tuple[int, str]] = []
    fence, pending, start = None, "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence is None:
            if stripped.startswith(("```", "~~~")):
                fence = stripped[:3]
            continue
        if stripped.startswith(fence) and not pending:
            fence = None
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        out.append((start, pending + stripped))
        pending = ""
    return out


def prose_lines(text: str, spans: bool = False) -> list[tuple[int, str]]:
    """(line number, line) of every line outside fenced code blocks, inline code spans removed unless ``spans``."""
    out, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")) and (fence is None or stripped.startswith(fence)):
            fence = stripped[:3] if fence is None else None
            continue
        if fence is None:
            out.append((number, line if spans else CODE_SPAN.sub("", line)))
    return out


def command_args(line: str) -> list[str] | None:
    """The arguments after ``tinygan`` of a shell line that runs it, or None if it does not."""
    if not COMMAND.match(line):
        return None
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    tokens = list(lexer)
    for i, token in enumerate(tokens):  # the command ends at the shell's next one or a redirection
        if not token.strip("();<>|&"):
            tokens = tokens[: i - 1 if i and tokens[i - 1].isdigit() else i]  # 2>&1: the 2 is no argument
            break
    tokens = [re.sub(r"\$\{?(\w+)\}?", r"\1", t) for t in tokens]
    return tokens[tokens.index("tinygan") + 1:]


def commands(page: Path) -> list[tuple[int, list[str]]]:
    found = []
    for number, line in code_lines(page.read_text()):
        args = command_args(line)
        if args is not None:
            found.append((number, args))
    return found


def parse_problem(args: list[str]) -> str | None:
    """argparse's complaint about ``tinygan ARGS``, or None when the parser accepts them."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(args)
    except SystemExit as e:
        if e.code == 0:  # --help
            return None
        return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit status {e.code}"
    return None


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(page.read_text(), spans=True):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def link_problems(page: Path) -> list[str]:
    """One line per relative link or image of ``page`` whose file (or heading) does not exist."""
    problems = []
    for number, line in prose_lines(page.read_text()):
        for target in LINK.findall(line):
            if SCHEME.match(target):
                continue
            path, _, anchor = target.partition("#")
            where = f"{page.relative_to(ROOT)}:{number}: ({target})"
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                problems.append(f"{where} no such file")
            elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{where} no heading with anchor #{anchor} in {dest.name}")
    return problems


ALL_COMMANDS = [(page, number, args) for page in PAGES for number, args in commands(page)]


def test_the_pages_hold_commands():
    assert (ROOT / "docs").is_dir()
    assert len(PAGES) > 1
    assert len(ALL_COMMANDS) >= 20, f"found only {len(ALL_COMMANDS)} tinygan commands: is the extraction broken?"
    assert {args[0] for _, _, args in ALL_COMMANDS} >= {"train", "sample", "eval"}


@pytest.mark.parametrize(
    "page, number, args", ALL_COMMANDS, ids=[f"{p.relative_to(ROOT)}:{n}" for p, n, _ in ALL_COMMANDS]
)
def test_documented_command_parses(page, number, args):
    problem = parse_problem(args)
    assert problem is None, f"{page.relative_to(ROOT)}:{number}: tinygan {shlex.join(args)}\n  {problem}"


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_relative_links_resolve(page):
    problems = link_problems(page)
    assert not problems, "\n".join(problems)


def test_the_checks_catch_a_bad_option_a_bad_value_and_a_bad_link(tmp_path, monkeypatch):
    page = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("# A title\n\n## Some section: with `code`\n")
    page.write_text(
        "# Page\n\n```bash\n"
        "OPENBLAS_NUM_THREADS=1 python -m tinygan train --dataset ring \\\n"
        "    --no-such-option 3     # a comment\n"
        "env -u X tinygan sample --checkpoint $RUN -n 0 --out a.png\n"
        "python -m tinygan eval --checkpoint runs/a --n 100 2>&1 | tee log && echo done\n"
        "python benchmarks/bench_step.py --not-tinygan\n"
        "```\n\n"
        "[ok](there.md#some-section-with-code) ![missing](nowhere.png) [bad anchor](there.md#nope)\n"
        "`[in code](nowhere-either.md)` [self](#page) [web](https://example.org/x)\n"
    )
    found = commands(page)
    assert [(n, a[0]) for n, a in found] == [(4, "train"), (6, "sample"), (7, "eval")]
    assert "--no-such-option" in parse_problem(found[0][1])
    assert found[1][1][:3] == ["sample", "--checkpoint", "RUN"]
    assert "-n" in parse_problem(found[1][1])
    assert parse_problem(found[2][1]) is None
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    problems = link_problems(page)
    assert len(problems) == 2, problems
    assert "(nowhere.png) no such file" in problems[0]
    assert "no heading with anchor #nope" in problems[1]

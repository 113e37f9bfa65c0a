"""Every `genlab ...` command shown in README.md and docs/ parses against the CLI as written, and
every `python benchmarks/...` script it names exists. (Running them is the benchmarks' job.)"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from genlab.cli import parse
from genlab.errors import GenlabError

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# Usage lines and templates, not commands: [optional] parts, "...", MODEL, one-letter values (N).
PLACEHOLDER = re.compile(r"\[|\.\.\.| \| |<|MODEL\b|VERB|\s[A-Z](?=\s|$|,)")


def commands(text: str) -> list[str]:
    """The shell commands of a page: lines of ```bash blocks (continuations joined, comments and
    `&&` chains split) and inline `genlab ...` / `python benchmarks/...` code spans."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#.*$", "", line).strip()
            found += [part.strip() for part in line.split("&&") if part.strip()]
    found += re.findall(r"`((?:genlab|python benchmarks/)[^`]*)`", text)
    return found


def argv_of(command: str) -> list[str] | None:
    """The arguments after `genlab` (environment settings and the venv path dropped), or None
    for a command that is not genlab's, a usage line with placeholders, or a bare mention of a
    verb in prose ("`genlab eval` prints ...")."""
    words = [w for w in shlex.split(command) if not re.match(r"^[A-Z_]+=", w)]
    if not words or Path(words[0]).name != "genlab" or PLACEHOLDER.search(command):
        return None
    return words[1:] if len(words) > 2 or words[1:] == ["runs"] else None


# Models the docs define as worked examples (tests/tasks/test_worked_example.py runs them).
EXAMPLES = {name for page in PAGES for block in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)
            for name in re.findall(r'entry\(\s*name="(\w+)"', block)}  # fmt: skip
CASES = [(page.name, c) for page in PAGES for c in commands(page.read_text())]
GENLAB = [(page, c) for page, c in CASES
          if argv_of(c) is not None and not EXAMPLES & set(argv_of(c))]  # fmt: skip


def test_the_pages_show_commands():
    assert len(GENLAB) > 50 and any(page == "README.md" for page, _ in GENLAB)
    assert {"tiny_gauss"} == EXAMPLES


@pytest.mark.parametrize(("page", "command"), GENLAB)
def test_genlab_commands_parse(page, command):
    argv = argv_of(command)
    if "--help" in argv:
        return  # a help request exits on purpose
    try:
        parse(argv)
    except (SystemExit, GenlabError) as e:
        pytest.fail(f"{page}: `{command}` does not parse ({e})")


@pytest.mark.parametrize(("page", "command"), [(p, c) for p, c in CASES if "benchmarks/" in c])
def test_benchmark_scripts_named_exist(page, command):
    script = next(w for w in shlex.split(command) if w.startswith("benchmarks/"))
    assert (ROOT / script).is_file(), f"{page}: {script} does not exist"


def test_the_extraction_finds_chained_and_commented_commands():
    text = "```bash\nA=1 .venv/bin/genlab train vae \\\n  --steps 3 && genlab eval r  # note\n```\n"
    assert commands(text) == ["A=1 .venv/bin/genlab train vae    --steps 3", "genlab eval r"]
    assert argv_of(commands(text)[0]) == ["train", "vae", "--steps", "3"]

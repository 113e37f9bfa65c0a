"""The package's shape: imports at the top of files (the layers themselves are checked by
`lint-imports` in CI, from pyproject.toml's contracts), and tests that mirror the package."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "genlab"


def imports_inside_functions(path: Path) -> list[tuple[int, str]]:
    """(line, text) of each import not at a module's top level (nor under `if TYPE_CHECKING:`)
    that has no comment on its line or the line above saying why."""
    lines = path.read_text().splitlines()
    tree = ast.parse("\n".join(lines))
    allowed = {id(n) for n in tree.body}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            allowed |= {id(n) for n in node.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in allowed:
            here, above = lines[node.lineno - 1], lines[node.lineno - 2].strip()
            if "#" not in here and not above.startswith("#"):
                found.append((node.lineno, here.strip()))
    return found


def test_imports_sit_at_the_top_unless_a_comment_says_why():
    offenders = [f"{p.relative_to(ROOT)}:{line}: {text}" for p in sorted(PACKAGE.rglob("*.py"))
                 for line, text in imports_inside_functions(p)]  # fmt: skip
    assert not offenders, "\n".join(offenders)


def test_the_check_finds_an_import_inside_a_function(tmp_path):
    source = tmp_path / "m.py"
    source.write_text(
        "import os\n\n\ndef f():\n    import json\n\n    # optional\n    import csv\n"
    )
    assert imports_inside_functions(source) == [(5, "import json")]


def test_tests_mirror_the_package():
    """Every test file sits in the folder of the package part it tests (tests/agents/... for
    genlab/agents/...); only cross-cutting tests stay at the top."""
    parts = {p.name for p in PACKAGE.iterdir() if p.is_dir() and not p.name.startswith("_")}
    top = {
        "test_architecture.py",
        "test_cli.py",
        "test_readme.py",
        "test_bad_inputs.py",
        "test_tuning.py",
        "test_population.py",
    }  # genlab/tuning.py, population.py: whole trainings and evaluations, like the CLI
    for test in (ROOT / "tests").rglob("test_*.py"):
        folder = test.parent.relative_to(ROOT / "tests").parts
        if not folder:
            assert test.name in top, f"{test.name} belongs in the tests folder of what it tests"
        else:
            assert folder[0] in parts | {"benchmarks"}, f"tests/{folder[0]} mirrors no package"


def test_the_cli_imports_without_the_rl_extra():
    """The README's first command installs genlab without extras: importing the CLI must not
    pull in what only the rl extra brings (Box2D, pygame), which a world-models module uses."""
    import subprocess
    import sys

    code = "import sys, genlab.cli; print(sorted({'Box2D', 'pygame'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"

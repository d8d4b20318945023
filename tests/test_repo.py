"""Repository promises: README opens with the two set-up commands, and CI runs the README's test command.

Checked against: the README text itself and `.ci/run` (the line CI executes must be the README's second
command, character for character).
"""

from __future__ import annotations

import pathlib

REPO = pathlib.Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert text.startswith("# iuie\n\n```bash\n")
    main_job, tests = readme_commands()
    assert "pip install" in main_job and "iuie demo" in main_job
    assert "pip install" in tests and "[test]" in tests and "pytest" in tests


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert readme_commands()[1] in ci

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


def test_every_cli_command_imports_and_has_help(capsys):
    """`iuie --help` imports every sub-command module: a broken import or missing module fails here."""
    import pytest

    from iuie import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out

"""``iuie.t5x_compat`` (the shims T5X needs at current JAX and PyPI) and the ``iuie t5x`` launcher, without T5X.

Reference: the names T5X's source and PyPI's jestimator 0.3.3 import (``airio.core``'s classes in
``t5x/utils.py``; ``jax.experimental.pjit.PartitionSpec`` and ``jax.tree_map`` in
``jestimator/amos_helper.py``), JAX's own replacements (``jax.sharding.PartitionSpec``, ``jax.tree.map``), and
gin-config's package-resource reader. Shims change interpreter state, so each is tried in a subprocess.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

from iuie.commands import t5x_launcher

REPO = pathlib.Path(__file__).resolve().parents[2]


def _python(code: str, *, cwd: pathlib.Path = REPO, env: dict | None = None) -> subprocess.CompletedProcess:
    base = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def _ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_import_is_cheap_and_only_registers_the_hook():
    out = _ok(
        _python("""
        import sys
        import iuie.t5x_compat as c
        print(sorted(m for m in ("jax", "tensorflow", "t5x", "airio") if m in sys.modules))
        print(any(isinstance(f, c._T5XImportHook) for f in sys.meta_path))
    """)
    )
    assert out.split("\n")[:2] == ["[]", "True"]


def test_airio_stub_has_what_t5x_checks_against():
    out = _ok(
        _python("""
        import importlib.util
        if importlib.util.find_spec("airio") is not None:
            print("real airio")
            raise SystemExit
        from iuie import t5x_compat
        assert t5x_compat.install_airio_stub()
        import airio.core as airio
        import seqio, seqio_tasks
        task = seqio.get_mixture_or_task("iuie_ner_synthetic")
        for name in ("Task", "Mixture", "DatasetProviderBase", "AirIODatasetIterator"):
            assert not isinstance(task, getattr(airio, name)), name
        assert issubclass(airio.Task, airio.DatasetProviderBase)
        try:
            airio.dataset_providers.get_vocabularies(task)
        except NotImplementedError:
            print("stub")
        assert not t5x_compat.install_airio_stub()  # idempotent
    """)
    )
    assert out.strip() in ("stub", "real airio")


def test_jax_aliases_point_at_jax_replacements():
    out = _ok(
        _python("""
        import jax, jax.experimental.pjit
        from iuie import t5x_compat
        applied = t5x_compat.install_jax_aliases()
        assert jax.tree_map is jax.tree.map or "jax.tree_map" not in applied
        assert jax.experimental.pjit.PartitionSpec is jax.sharding.PartitionSpec or not applied
        assert jax.tree_map(lambda x: x + 1, {"a": 1}) == {"a": 2}
        from jax.experimental.pjit import PartitionSpec
        print(sorted(applied), t5x_compat.install_jax_aliases())
    """)
    )
    assert out.strip().endswith("[]")  # the second install changes nothing


def test_gin_reads_namespace_packages(tmp_path):
    (tmp_path / "nsconfigs" / "sub").mkdir(parents=True)
    (tmp_path / "nsconfigs" / "sub" / "x.gin").write_text("X = 1\n")
    out = _ok(
        _python(
            f"""
        import importlib.util  # gin's resource_reader uses it without importing it
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        from gin import resource_reader
        try:
            before = resource_reader.system_path_file_exists("nsconfigs/sub/x.gin")
        except TypeError:
            before = "TypeError"
        from iuie import t5x_compat
        t5x_compat.install_gin_namespace_packages()
        print(before, resource_reader.system_path_file_exists("nsconfigs/sub/x.gin"),
              resource_reader.system_path_file_exists("nsconfigs/sub/missing.gin"),
              resource_reader.system_path_file_exists("no_such_package/x.gin"))
    """,
            cwd=tmp_path.parent,
        )
    )
    before, *after = out.split()
    assert before in ("TypeError", "True")  # gin-config 0.5.0 raises; a fixed gin would find the file
    assert after == ["True", "False", "False"]


def test_pth_hook_installs_on_t5x_import_and_survives_a_missing_iuie(tmp_path):
    from iuie import t5x_compat

    path = t5x_compat.write_pth(str(tmp_path))
    assert pathlib.Path(path).read_text() == t5x_compat.PTH_LINE
    out = _ok(
        _python(f"""
        import site, sys
        site.addsitedir({str(tmp_path)!r})
        print(any(type(f).__name__ == "_T5XImportHook" for f in sys.meta_path), "jax" in sys.modules)
    """)
    )
    assert out.split() == ["True", "False"]
    # An environment where iuie was uninstalled after the hook: site.py must go on silently.
    out = _ok(
        _python(f"""
        import sys
        sys.modules["iuie"] = None  # import iuie now raises ImportError
        exec({t5x_compat.PTH_LINE!r})
        print("fine")
    """)
    )
    assert out.strip() == "fine"
    assert t5x_compat.remove_pth(str(tmp_path)) == path
    assert t5x_compat.remove_pth(str(tmp_path)) is None


def test_vocabulary_helpers(monkeypatch):
    """The gin helpers the experiment configs call (moved from t5x_compat to iuie.pipeline.vocab)."""
    from iuie import t5x_compat
    from iuie.pipeline import vocab

    monkeypatch.delenv(vocab.ENV_VOCAB, raising=False)
    size = vocab.get_vocabulary().vocab_size
    padded = vocab.vocabulary_size()
    assert padded % 128 == 0 and size <= padded < size + 128
    assert vocab.checked_vocabulary() == vocab.get_vocabulary()
    with pytest.raises(ValueError, match="IUIE_VOCAB"):
        vocab.checked_vocabulary(expected_size=32100)
    # The T5X shim module holds shims only.
    assert not hasattr(t5x_compat, "vocabulary") and not hasattr(t5x_compat, "vocabulary_size")


@pytest.mark.parametrize(
    "argv, expected",
    [
        ([], ["--gin_search_paths=.,ROOT"]),
        (["--gin_file=a.gin"], ["--gin_search_paths=.,ROOT", "--gin_file=a.gin"]),
        (["--gin_search_paths=/x,/y", "--gin_file=a.gin"], ["--gin_search_paths=/x,/y,ROOT", "--gin_file=a.gin"]),
        (["--gin_search_paths", "/x", "--gin.A=1"], ["--gin_search_paths=/x,ROOT", "--gin.A=1"]),
    ],
)
def test_launcher_adds_iuie_config_root_to_search_paths(argv, expected):
    assert t5x_launcher.with_search_path(argv, "ROOT") == expected


def test_launcher_config_root_holds_the_configs():
    assert (pathlib.Path(t5x_launcher.config_root()) / "t5x_configs" / "t5x" / "iuie.gin").is_file()


def test_launcher_check_says_whether_t5x_is_usable():
    done = subprocess.run(
        [sys.executable, "-m", "iuie.cli", "t5x", "check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3"),
    )
    if importlib.util.find_spec("t5x") is None:
        assert done.returncode == 1, done.stdout + done.stderr
        assert "docs/t5x.md" in done.stdout
    else:
        assert done.returncode == 0, done.stdout + done.stderr
        assert "t5x:" in done.stdout


def test_includes_resolve_from_an_absolute_gin_file_in_an_installed_layout(tmp_path):
    """``python -m t5x.train --gin_file=/abs/.../t5x_configs/t5x/tiny/finetune.gin`` from any folder, with iuie
    installed as a wheel (configs inside the package as ``iuie/t5x_configs``, no checkout on the path) and
    neither ``iuie t5x`` nor ``--gin_search_paths``: the nested ``include 't5x_configs/t5x/...'`` lines of
    tiny/finetune.gin -> tiny/model.gin -> iuie.gin must resolve. T5X is stood in for by an empty ``t5x``
    module and its own run and model gins by empty files on its search path, as T5X appends its root."""
    import shutil

    site = tmp_path / "site"
    shutil.copytree(REPO / "iuie", site / "iuie", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "t5x_configs", site / "iuie" / "t5x_configs")
    t5x_root = tmp_path / "t5x_checkout"
    for name in ("t5x/configs/runs/finetune.gin", "t5x/examples/t5/t5_1_1/tiny.gin"):
        (t5x_root / name).parent.mkdir(parents=True, exist_ok=True)
        (t5x_root / name).write_text("\n")
    top = site / "iuie" / "t5x_configs" / "t5x" / "tiny" / "finetune.gin"
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    done = _python(
        f"""
        import sys, types
        sys.path[:] = [p for p in sys.path if p not in ('', {str(REPO)!r})]
        sys.path.insert(0, {str(site)!r})
        sys.modules['t5x'] = types.ModuleType('t5x')  # a T5X binary is running
        import gin
        gin.add_config_file_search_path({str(t5x_root)!r})
        gin.parse_config_file({str(top)!r}, skip_unknown=True)  # skip T5X's own configurables
        import iuie
        print(iuie.__file__)
        print(gin.query_parameter('%MIXTURE_OR_TASK_NAME'), gin.query_parameter('%USE_CACHED_TASKS'))
        """,
        cwd=elsewhere,
        env={"PYTHONPATH": str(site)},
    )
    out = _ok(done).split("\n")
    assert out[0] == str(site / "iuie" / "__init__.py")  # the installed copy, not the checkout
    assert out[1] == "iuie_synthetic False"  # finetune.gin's macro, and iuie.gin's (two includes deep)

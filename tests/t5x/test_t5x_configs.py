"""The T5X experiment configs of ``t5x_configs/t5x/``, checked without T5X.

Reference: T5X's own config layout (``t5x/configs/runs/{finetune,eval,infer}.gin``,
``t5x/examples/t5/t5_1_1/<size>.gin``) and its published Flan-T5 checkpoints (T5X ``docs/models.md``); the
names these gins use must be registered by ``seqio_tasks``. Where ``t5x`` is importable, T5X's included
files must also exist in its checkout; ``test_t5x_binaries.py`` then parses and runs the configs for real.
"""

from __future__ import annotations

import importlib.util
import pathlib
import re

import pytest
import seqio

import seqio_tasks  # noqa: F401  (registers the Tasks and Mixtures)

REPO = pathlib.Path(__file__).resolve().parents[2]
CONFIGS = REPO / "t5x_configs" / "t5x"
GINS = sorted(CONFIGS.rglob("*.gin"))

# T5X's files our gins may include: its run gins and its T5 1.1 model gins.
T5X_GINS = {f"t5x/configs/runs/{run}.gin" for run in ("finetune", "eval", "infer")} | {
    f"t5x/examples/t5/t5_1_1/{size}.gin" for size in ("tiny", "small", "base", "large", "xl", "xxl")
}

# T5X's published Flan-T5 checkpoints (T5X docs/models.md, "Flan-T5 Checkpoints").
FLAN_T5_STEPS = {"small": 1198000, "base": 1184000, "large": 1164000, "xl": 1138000, "xxl": 1114000}
EXPERIMENTS = ("supervised_finetune", "zeroshot_finetune", "supervised_eval", "zeroshot_eval", "infer")

INCLUDE = re.compile(r"^include\s+['\"]([^'\"]+)['\"]", re.M)
# A quoted iuie name: every Task and Mixture iuie registers starts with "iuie_".
NAME = re.compile(r"['\"](iuie_[a-z0-9_]+)['\"]")
MACRO = re.compile(r"^([A-Z_]+)\s*=\s*(.+)$", re.M)


def _code(path: pathlib.Path) -> str:
    """The gin file without comments (names in comments are examples, not configuration)."""
    return "\n".join(line.split("#", 1)[0] for line in path.read_text(encoding="utf-8").splitlines())


def _t5x_root() -> pathlib.Path | None:
    spec = importlib.util.find_spec("t5x")
    if spec is None or not spec.origin:
        return None
    return pathlib.Path(spec.origin).resolve().parents[1]


def test_there_are_configs():
    assert (CONFIGS / "iuie.gin").is_file()
    assert len(GINS) >= 30, GINS


@pytest.mark.parametrize("gin_file", GINS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_include_exists(gin_file):
    t5x_root = _t5x_root()
    for path in INCLUDE.findall(_code(gin_file)):
        if path.startswith("t5x/"):
            assert path in T5X_GINS, f"{gin_file}: includes {path}, not one of T5X's run or T5 1.1 gins"
            if t5x_root is not None:
                assert (t5x_root / path).is_file(), f"{gin_file}: {path} is not in the T5X checkout {t5x_root}"
        else:
            assert path.startswith("t5x_configs/t5x/"), f"{gin_file}: include {path} is neither T5X's nor ours"
            assert (REPO / path).is_file(), f"{gin_file}: includes {path}, which does not exist"


@pytest.mark.parametrize("gin_file", GINS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_named_task_and_mixture_is_registered(gin_file):
    registered = set(seqio.TaskRegistry.names()) | set(seqio.MixtureRegistry.names())
    for name in NAME.findall(_code(gin_file)):
        assert name in registered, f"{gin_file}: {name} is not a registered seqio Task or Mixture"


def test_iuie_configurables_exist():
    from iuie import t5x_compat
    from iuie.pipeline import vocab

    for gin_file in GINS:
        for name in re.findall(r"@t5x_compat\.([a-z_]+)", _code(gin_file)):
            assert callable(getattr(t5x_compat, name, None)), f"{gin_file}: t5x_compat.{name} does not exist"
        for name in re.findall(r"@?vocab\.([a-z_]+)", _code(gin_file)):
            assert callable(getattr(vocab, name, None)), f"{gin_file}: vocab.{name} does not exist"


def _includes(path: pathlib.Path) -> list[str]:
    return INCLUDE.findall(_code(path))


@pytest.mark.parametrize("size", sorted(FLAN_T5_STEPS))
def test_each_size_has_the_instructuie_experiments(size):
    folder = CONFIGS / f"flan_t5_{size}"
    for name in EXPERIMENTS:
        path = folder / f"{name}.gin"
        assert path.is_file(), path
        includes = _includes(path)
        run = {"finetune": "finetune", "eval": "eval", "infer": "infer"}[name.split("_")[-1]]
        # T5X's layering: its run gin, its model gin for the size, then ours (which replace VOCABULARY).
        assert includes[:3] == [
            f"t5x/configs/runs/{run}.gin",
            f"t5x/examples/t5/t5_1_1/{size}.gin",
            "t5x_configs/t5x/flan_t5/common.gin",
        ], (path, includes)
    for protocol, mixture in (("supervised", "iuie_supervised_first10k"), ("zeroshot", "iuie_zeroshot_first10k")):
        path = folder / f"{protocol}_finetune.gin"
        macros = dict(MACRO.findall(_code(path)))
        step = FLAN_T5_STEPS[size]
        assert macros["INITIAL_CHECKPOINT_PATH"].strip() == (
            f"'gs://t5-data/pretrained_models/t5x/flan_t5_{size}/checkpoint_{step}'"
        ), path
        assert int(macros["TRAIN_STEPS"].replace("_", "")) > step, path
        assert f"t5x_configs/t5x/flan_t5/{protocol}.gin" in _includes(path)
        protocol_macros = dict(MACRO.findall(_code(CONFIGS / "flan_t5" / f"{protocol}.gin")))
        assert protocol_macros["MIXTURE_OR_TASK_NAME"].strip() == f"'{mixture}'"


def test_eval_mixtures_hold_what_the_protocols_evaluate():
    """The supervised eval Mixture has no zero-shot-only dataset; the zero-shot one only held-out ones."""
    from seqio_tasks import catalog

    heldout = {catalog.task_name(d.main_view, d.name) for d in catalog.zeroshot_heldout()}
    zeroshot_eval = {t.name for t in seqio.get_mixture_or_task("iuie_eval_zeroshot").tasks}
    assert zeroshot_eval and zeroshot_eval <= heldout
    zeroshot_train = {t.name for t in seqio.get_mixture_or_task("iuie_zeroshot_first10k").tasks}
    assert not zeroshot_train & heldout
    supervised_eval = {t.name for t in seqio.get_mixture_or_task("iuie_eval").tasks}
    assert all(t.metric_fns and "test" in t.splits for t in map(seqio.get_mixture_or_task, supervised_eval))


def test_tiny_experiment_is_the_synthetic_one():
    finetune = dict(MACRO.findall(_code(CONFIGS / "tiny" / "finetune.gin")))
    assert finetune["MIXTURE_OR_TASK_NAME"].strip() == "'iuie_synthetic'"
    assert finetune["INITIAL_CHECKPOINT_PATH"].split()[0] == "None"
    evaluate = dict(MACRO.findall(_code(CONFIGS / "tiny" / "eval.gin")))
    assert evaluate["MIXTURE_OR_TASK_NAME"].strip() == "'iuie_synthetic_eval'"
    for name in ("finetune", "eval", "infer"):
        assert "t5x_configs/t5x/tiny/model.gin" in _includes(CONFIGS / "tiny" / f"{name}.gin")

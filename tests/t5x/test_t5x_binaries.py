"""iuie's Tasks, Mixtures, metrics and configs under the real T5X binaries (t5x.train, t5x.eval, t5x.infer).

Reference: google-research/t5x's own binaries, installed from a source checkout (docs/t5x.md), run as
subprocesses exactly as a user runs them: ``t5x.train`` through ``iuie t5x train`` (the launcher), and
``python -m t5x.eval`` / ``python -m t5x.infer`` with nothing but the ``.pth`` hook of
``iuie t5x install-hook`` (simulated with ``site.addsitedir`` so the test environment is left untouched).
The experiment is ``t5x_configs/t5x/tiny/``: the tiny model on a small synthetic corpus, trained with data
parallelism over two fake CPU devices (``cpu_data_parallel.gin``).

The read-back test decodes T5X's checkpoint with iuie's own model and scores it with iuie's metrics
(:func:`iuie_evaluate`), and must reproduce the predictions and metrics ``t5x.eval`` reported.

Everything here skips where ``t5x`` is not importable (the project's own environment: T5X is not on PyPI);
``test_t5x_configs.py`` checks the configs without T5X.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
T5X_MISSING_REASON = (
    "t5x is not importable in this interpreter: T5X is not on PyPI; install it from a "
    "google-research/t5x source checkout as docs/t5x.md says to run the T5X binary tests"
)

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("t5x") is None, reason=T5X_MISSING_REASON),
    pytest.mark.slow,
]

STEPS = 40  # enough for peaked logits, so that T5X and iuie cannot differ on a near tie
EVAL_MIXTURE = "iuie_synthetic_eval"
EVAL_TASKS = (
    "iuie_ee_synthetic",
    "iuie_eea_synthetic",
    "iuie_eet_synthetic",
    "iuie_ner_synthetic",
    "iuie_re_synthetic",
)
FEATURE_LENGTHS = {"inputs": 256, "targets": 64}  # tiny/eval.gin's
NUM_EVAL_EXAMPLES = 16
CORPUS_SIZES = {"train": 400, "dev": 24, "test": 24}
TIMEOUT = 600


# --------------------------------------------------------------------------------------------------------
# Running the binaries
# --------------------------------------------------------------------------------------------------------


def _env(tmp: pathlib.Path, corpus: pathlib.Path, *, hook: bool = False, devices: int = 1) -> dict:
    """The environment of a T5X subprocess: the small corpus, quiet TF, and optionally the .pth hook."""
    from iuie import t5x_compat

    env = dict(os.environ)
    paths = [str(REPO)]
    if hook:
        # What `iuie t5x install-hook` does to site-packages, done in a folder of our own: the .pth file
        # in a site dir that sitecustomize adds, so `python -m t5x.eval` runs with only the hook.
        pth_dir = tmp / "pth"
        pth_dir.mkdir(exist_ok=True)
        t5x_compat.write_pth(str(pth_dir))
        custom = tmp / "sitecustomize"
        custom.mkdir(exist_ok=True)
        (custom / "sitecustomize.py").write_text(f"import site\nsite.addsitedir({str(pth_dir)!r})\n")
        paths.insert(0, str(custom))
    env["PYTHONPATH"] = os.pathsep.join(paths + [p for p in [env.get("PYTHONPATH")] if p])
    env["IUIE_SYNTHETIC_DIR"] = str(corpus)
    env["JAX_PLATFORMS"] = "cpu"
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    return env


def _run(cmd: list[str], *, cwd: pathlib.Path, env: dict, log: pathlib.Path) -> None:
    with open(log, "w", encoding="utf-8") as f:
        done = subprocess.run(cmd, cwd=cwd, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-6000:]
        raise AssertionError(f"{' '.join(cmd)} exited with {done.returncode}; log {log}:\n{tail}")


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> pathlib.Path:
    return tmp_path_factory.mktemp("t5x")


@pytest.fixture(scope="module")
def corpus(workdir) -> pathlib.Path:
    from iuie.ie import synthetic

    root = workdir / "synthetic"
    synthetic.generate(root, sizes=CORPUS_SIZES)
    return root


@pytest.fixture(scope="module")
def trained(workdir, corpus) -> pathlib.Path:
    """``iuie t5x train`` on tiny/finetune.gin + cpu_data_parallel.gin, run from outside the checkout (the
    launcher adds iuie's config root to the gin search path), on two fake CPU devices."""
    model_dir = workdir / "model"
    cmd = [
        sys.executable,
        "-m",
        "iuie.cli",
        "t5x",
        "train",
        "--gin_file=t5x_configs/t5x/tiny/finetune.gin",
        "--gin_file=t5x_configs/t5x/cpu_data_parallel.gin",
        f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.TRAIN_STEPS={STEPS}",
        f"--gin.EVAL_PERIOD={STEPS}",
        f"--gin.utils.SaveCheckpointConfig.period={STEPS}",
        "--gin.BATCH_SIZE=8",
    ]
    _run(cmd, cwd=workdir, env=_env(workdir, corpus, devices=2), log=workdir / "train.log")
    return model_dir


@pytest.fixture(scope="module")
def evaluated(workdir, corpus, trained) -> pathlib.Path:
    """Plain ``python -m t5x.eval`` (the .pth hook only) from the checkout, on the trained checkpoint."""
    out = workdir / "eval"
    cmd = [
        sys.executable,
        "-m",
        "t5x.eval",
        "--gin_file=t5x_configs/t5x/tiny/eval.gin",
        f"--gin.CHECKPOINT_PATH='{trained / f'checkpoint_{STEPS}'}'",
        f"--gin.EVAL_OUTPUT_DIR='{out}'",
        f"--gin.seqio.Evaluator.num_examples={NUM_EVAL_EXAMPLES}",
    ]
    _run(cmd, cwd=REPO, env=_env(workdir, corpus, hook=True), log=workdir / "eval.log")
    return out


def _t5x_metrics(eval_dir: pathlib.Path, task: str) -> dict:
    lines = (eval_dir / "inference_eval" / f"{task}-metrics.jsonl").read_text(encoding="utf-8").splitlines()
    return json.loads(lines[-1])


def _t5x_outputs(eval_dir: pathlib.Path, task: str) -> list[str]:
    path = eval_dir / "inference_eval" / f"{task}-{STEPS:06d}.jsonl"
    return [json.loads(line)["output"] for line in path.read_text(encoding="utf-8").splitlines()]


# --------------------------------------------------------------------------------------------------------
# iuie's side of the read-back
# --------------------------------------------------------------------------------------------------------


def iuie_evaluate(
    checkpoint: str, mixture: str, *, split: str, feature_lengths: dict, num_examples: int, batch_size: int = 8
) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """``({task: metrics}, {task: decoded predictions})`` of a T5X checkpoint evaluated by iuie.

    iuie's T5X reader (:func:`iuie.interop.t5x.load_t5x`) and config inference, iuie's network and greedy
    decoding (:class:`iuie.model.models.EncoderDecoderModel`), and seqio's Evaluator over the Tasks' own
    postprocessor and metric functions (:mod:`iuie.ie.metrics`), in float32 as the tiny experiment trains.

    A stand-in for ``python -m iuie.eval``, which does not exist yet: once it does, replace this function's
    body by running it on ``checkpoint`` (same Mixture, split, lengths and number of examples) and reading
    its metrics, and keep the assertions of :func:`test_iuie_reads_t5x_checkpoint`.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np
    import seqio

    import seqio_tasks  # noqa: F401  (registers the Tasks)
    from iuie.interop import t5x as t5x_interop
    from iuie.interop.hf import make_config
    from iuie.model import models
    from iuie.pipeline import vocab

    params = t5x_interop.load_t5x(checkpoint)
    fields = dict(t5x_interop.infer_config_fields(params), dtype="float32", dropout_rate=0.0)
    vocabulary = vocab.get_vocabulary()
    model = models.EncoderDecoderModel(config=make_config(fields), output_vocabulary=vocabulary, decode_method="greedy")
    predict = jax.jit(model.predict_batch)

    def predict_fn(dataset):
        out = []
        for indices, features in dataset.batch(batch_size).as_numpy_iterator():
            decodes = predict(params, {k: jnp.asarray(v) for k, v in features.items()})
            out.extend(zip(indices.tolist(), np.asarray(decodes).tolist()))
        return out

    evaluator = seqio.Evaluator(
        mixture,
        seqio.EncDecFeatureConverter(pack=False),
        eval_split=split,
        sequence_length=feature_lengths,
        num_examples=num_examples,
        use_memory_cache=False,
    )
    metrics, outputs = evaluator.evaluate(compute_metrics=True, predict_fn=predict_fn, score_fn=None)
    texts = {
        task: [vocabulary.decode(tokens) for tokens in next(iter(by_type.values()))]
        for task, by_type in outputs.items()
    }
    return metrics.result(), texts


# --------------------------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------------------------


def test_t5x_train_runs_the_tiny_experiment(trained):
    checkpoint = trained / f"checkpoint_{STEPS}"
    assert checkpoint.is_dir(), sorted(p.name for p in trained.iterdir())
    config = (trained / "config.gin").read_text(encoding="utf-8")
    # T5X's operative config: our Mixture, the shims' module, and the data-parallel partitioner.
    assert "MIXTURE_OR_TASK_NAME = 'iuie_synthetic'" in config
    assert "train_script.train.partitioner = @t5x_compat.data_parallel_partitioner()" in config
    # Training evaluation (teacher-forced loss) ran on the validation split of every Task of the Mixture.
    evaluated = {p.name for p in (trained / "training_eval").iterdir()}
    assert {f"iuie_{v}_synthetic" for v in ("ner", "es", "et", "re", "ep", "epr", "ee", "eet", "eea")} <= evaluated


def test_t5x_eval_scores_with_iuie_metrics_in_both_modes(evaluated):
    for task in EVAL_TASKS:
        metrics = _t5x_metrics(evaluated, task)
        assert metrics["step"] == STEPS
        for mode in ("strict", "reference"):
            assert metrics[f"{mode}/examples"] == NUM_EVAL_EXAMPLES, (task, metrics)
            assert 0.0 <= metrics[f"{mode}/f1"] <= 100.0, (task, metrics)
        assert "strict/hallucinated" in metrics
        if task == "iuie_ee_synthetic":
            assert {"strict/trigger_f1", "strict/argument_f1", "reference/accuracy"} <= set(metrics)
        if task == "iuie_eet_synthetic":
            assert "reference/accuracy" in metrics
        assert len(_t5x_outputs(evaluated, task)) == NUM_EVAL_EXAMPLES


def test_t5x_infer_writes_predictions(workdir, corpus, trained):
    out = workdir / "infer"
    cmd = [
        sys.executable,
        "-m",
        "t5x.infer",
        "--gin_file=t5x_configs/t5x/tiny/infer.gin",
        f"--gin.CHECKPOINT_PATH='{trained / f'checkpoint_{STEPS}'}'",
        f"--gin.INFER_OUTPUT_DIR='{out}'",
    ]
    _run(cmd, cwd=REPO, env=_env(workdir, corpus, hook=True), log=workdir / "infer.log")
    files = sorted(out.glob("iuie_ner_synthetic-predict.jsonl-*-of-*"))
    files = [f for f in files if not f.name.endswith(".COMPLETED")]
    assert files, sorted(p.name for p in out.iterdir())
    rows = [json.loads(line) for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == CORPUS_SIZES["test"]
    assert all(isinstance(r["prediction"], str) and "inputs_pretokenized" in r["inputs"] for r in rows)


def test_iuie_reads_t5x_checkpoint(trained, evaluated, corpus):
    from iuie.pipeline import seqio_data

    seqio_data.set_options(synthetic_dir=corpus)
    try:
        metrics, texts = iuie_evaluate(
            str(trained / f"checkpoint_{STEPS}"),
            EVAL_MIXTURE,
            split="test",
            feature_lengths=FEATURE_LENGTHS,
            num_examples=NUM_EVAL_EXAMPLES,
        )
    finally:
        seqio_data.reset_options()
    assert sorted(metrics) == sorted(EVAL_TASKS)
    for task in EVAL_TASKS:
        assert texts[task] == _t5x_outputs(evaluated, task), task
        reported = _t5x_metrics(evaluated, task)
        assert metrics[task] == pytest.approx({k: reported[k] for k in metrics[task]}), task


def test_every_experiment_gin_parses_under_t5x(tmp_path):
    """Each experiment gin of t5x_configs/t5x, with the binary it is for as ``__main__``, parses under T5X's
    gin (every include found, every configurable and parameter known) and names registered Tasks."""
    script = textwrap.dedent("""
        import importlib, json, pathlib, sys
        from iuie import t5x_compat
        t5x_compat.install()
        import gin, seqio
        import t5x
        REQUIRED = {
            "train": ["MODEL_DIR='/tmp/unused'"],
            "eval": ["CHECKPOINT_PATH='/tmp/unused'", "EVAL_OUTPUT_DIR='/tmp/unused'"],
            "infer": ["CHECKPOINT_PATH='/tmp/unused'", "INFER_OUTPUT_DIR='/tmp/unused'"],
        }
        RUNS = {"finetune.gin": "train", "eval.gin": "eval", "infer.gin": "infer"}
        t5x_root = str(pathlib.Path(t5x.__file__).resolve().parents[1])
        results = {}
        for spec in json.loads(sys.argv[1]):
            files = spec.split("+")
            text = pathlib.Path(files[0]).read_text()
            binary = next(b for run, b in RUNS.items() if f"t5x/configs/runs/{run}" in text)
            sys.modules["__main__"] = importlib.import_module(f"t5x.{binary}")
            gin.clear_config(clear_constants=True)
            gin.add_config_file_search_path(t5x_root)
            gin.add_config_file_search_path(".")
            gin.parse_config_files_and_bindings(files, REQUIRED[binary], finalize_config=False)
            name = gin.query_parameter("%MIXTURE_OR_TASK_NAME")
            seqio.get_mixture_or_task(name)  # raises for an unregistered name
            results[spec] = {"binary": binary, "mixture": name,
                             "lengths": gin.query_parameter("%TASK_FEATURE_LENGTHS")}
        print("RESULTS " + json.dumps(results))
    """)
    root = REPO / "t5x_configs" / "t5x"
    experiments = sorted(
        str(p.relative_to(REPO)) for p in root.rglob("*.gin") if "t5x/configs/runs/" in p.read_text(encoding="utf-8")
    )
    specs = experiments + [
        "t5x_configs/t5x/tiny/finetune.gin+t5x_configs/t5x/cpu_data_parallel.gin",
        "t5x_configs/t5x/flan_t5_base/supervised_finetune.gin+t5x_configs/t5x/optimizer_adamw.gin",
    ]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO)] + [os.environ.get("PYTHONPATH", "")]),
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(specs)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-6000:]
    line = next(line for line in done.stdout.splitlines() if line.startswith("RESULTS "))
    results = json.loads(line[len("RESULTS ") :])
    assert sorted(results) == sorted(specs)
    assert len(experiments) == 28, experiments  # 5 sizes x 5 + tiny finetune, eval, infer
    for spec, result in results.items():
        if "/flan_t5_" in spec:
            assert result["lengths"] == {"inputs": 512, "targets": 50}, spec


def test_cpu_data_parallel_partitioner_splits_the_batch():
    """T5X's CPU mesh puts two fake devices on 'model'; iuie's partitioner puts them on 'data'."""
    script = textwrap.dedent("""
        from iuie import t5x_compat
        t5x_compat.install()
        from t5x import partitioning
        default = partitioning.PjitPartitioner(num_partitions=1,
                                               logical_axis_rules=partitioning.standard_logical_axis_rules())
        ours = t5x_compat.data_parallel_partitioner()
        print(dict(default.mesh.shape), dict(ours.mesh.shape), ours.get_data_layout(8).batch_size)
    """)
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO)] + [os.environ.get("PYTHONPATH", "")]),
        JAX_PLATFORMS="cpu",
        TF_CPP_MIN_LOG_LEVEL="2",
        XLA_FLAGS="--xla_force_host_platform_device_count=2",
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )
    assert done.returncode == 0, done.stderr[-4000:]
    assert done.stdout.strip().splitlines()[-1] == "{'data': 1, 'model': 2} {'data': 2, 'model': 1} 8"

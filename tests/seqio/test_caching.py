"""seqio's Apache Beam cache job on iuie Tasks, and training input read from the cache.

Checked against seqio itself: the job is seqio's own ``seqio.scripts.cache_tasks_main`` on Beam's
DirectRunner (run as a subprocess, as a user runs ``seqio_cache_tasks``), and the uncached reference is
the same Task read by seqio on the fly. Cached and uncached reads must agree example for example on every
feature (the pass-through ``record`` and ``index`` included), and the packed training batches that seqio's
``EncDecFeatureConverter(pack=True)`` builds from them must be identical, array for array.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from iuie.ie import synthetic
from iuie.pipeline import caching

TASKS = ("iuie_ner_synthetic", "iuie_re_synthetic")


def test_cache_command_has_the_flags_iuie_needs(tmp_path):
    argv = caching.cache_command(["iuie_ner_.*"], tmp_path, min_shards=2, pipeline_options=("--runner=FlinkRunner",))
    assert argv[:3] == [sys.executable, "-m", "seqio.scripts.cache_tasks_main"]
    assert "--module_import=seqio_tasks" in argv and f"--output_cache_dir={tmp_path}" in argv
    assert "--pipeline_options=--runner=FlinkRunner" in argv and "--min_shards=2" in argv
    with pytest.raises(ValueError, match="comma"):
        caching.cache_command(["t"], tmp_path, pipeline_options=("--a=1,2",))
    with pytest.raises(ValueError, match="at least one"):
        caching.cache_command([], tmp_path)


def test_cache_print_command(capsys, tmp_path):
    from iuie import cli

    assert cli.main(["cache", "iuie_ner_synthetic", "--output-dir", str(tmp_path), "--print-command"]) == 0
    out = capsys.readouterr().out
    assert "seqio.scripts.cache_tasks_main" in out and "--tasks=iuie_ner_synthetic" in out


@pytest.fixture(scope="module")
def cached(tmp_path_factory):
    pytest.importorskip("apache_beam", reason="the Beam cache job needs apache-beam (pip install -e '.[beam]')")
    root = tmp_path_factory.mktemp("cache")
    corpus = root / "synthetic"
    synthetic.generate(corpus, sizes={"train": 30, "dev": 5, "test": 5})
    out = root / "cache"
    caching.run_cache_job(list(TASKS), out, env={"IUIE_SYNTHETIC_DIR": str(corpus)}, min_shards=1, timeout=900)
    return corpus, out


@pytest.fixture
def cache_env(cached, monkeypatch):
    corpus, out = cached
    monkeypatch.setenv("IUIE_SYNTHETIC_DIR", str(corpus))
    import seqio_tasks  # noqa: F401  (registers the Tasks)

    caching.use_cache_dir(out)
    return out


def test_beam_job_caches_the_tasks(cache_env):
    assert set(TASKS) <= set(caching.completed_tasks(cache_env))


@pytest.mark.parametrize("task_name", TASKS)
def test_cached_examples_equal_uncached(cache_env, task_name):
    import seqio

    task = seqio.get_mixture_or_task(task_name)
    assert task.supports_caching and task.cache_dir and str(cache_env) in task.cache_dir
    for split in ("train", "test"):
        cached, uncached = caching.cached_examples(task_name, split), caching.uncached_examples(task_name, split)
        assert len(cached) == len(uncached) > 0
        assert "record" in cached[0] and "index" in cached[0]  # the pass-through features survive the cache
        for a, b in zip(cached, uncached):
            assert set(a) == set(b)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{task_name} {split} {key}")


def test_packed_batches_from_the_cache_are_identical(cache_env):
    import seqio

    lengths = {"inputs": 256, "targets": 64}
    converter = seqio.EncDecFeatureConverter(pack=True)
    for task_name in TASKS:
        task = seqio.get_mixture_or_task(task_name)
        like = task.get_dataset(lengths, split="train", use_cached=False, shuffle=False)
        batches = []
        for examples in (
            caching.cached_examples(task_name, "train", lengths),
            caching.uncached_examples(task_name, "train", lengths),
        ):
            ds = converter(caching.dataset_from_examples(examples, like), lengths).batch(4)
            batches.append(list(ds.as_numpy_iterator()))
        assert len(batches[0]) == len(batches[1]) > 0
        for a, b in zip(*batches):
            assert set(a) == set(b)
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=f"{task_name} {key}")

"""Pre-tokenised Tasks: seqio's Apache Beam cache job on iuie Tasks, and reading its output back.

Every iuie Task has a ``seqio.CacheDatasetPlaceholder`` after ``tokenize`` (``seqio_tasks/tasks.py``): what
comes before it (reading the layout, formatting the view, tokenising) runs once in the Beam job; what
comes after it (EOS, trimming, packing) runs at training time as before. The job is seqio's own
``seqio_cache_tasks`` (module ``seqio.scripts.cache_tasks_main``), unchanged; this module only builds its
command line with the flags iuie needs and runs it:

* ``--module_import=seqio_tasks``: registers the Tasks in the job's process *and on every Beam worker*
  (seqio re-imports the modules inside each worker's ``DoFn.setup``);
* the data roots travel as environment variables (``IUIE_DATA_DIR``, ``IUIE_SYNTHETIC_DIR``, ``IUIE_VOCAB``):
  the local runners inherit them; on Dataflow, Flink or Spark workers they must be set in the worker
  environment (docs/scaling.md, "Beam cache").

Every feature of the cached examples is written, the pass-through ones included (``record``, the gold record
as JSON, and ``index``, ``split``, ``dataset``, ...), so metrics computed from a cached Task see exactly what an
uncached one sees.

Reading a cached Task: add the cache folder to seqio's global cache dirs (``IUIE_SEQIO_CACHE_DIRS=dir``
before ``seqio_tasks`` is imported, :func:`use_cache_dir`, or ``seqio.add_global_cache_dirs([dir])``), then ``task.get_dataset(..., use_cached=True)`` or
``seqio.get_dataset(name, ..., use_cached=True)`` (the trainer's ``USE_CACHED_TASKS = True`` passes exactly
that). seqio reads the TFRecord shards and runs only the preprocessors after the placeholder. The order of
examples within the shards is the Beam runner's; :func:`cached_examples` returns them sorted by their
``index`` feature (the record's position in its split file), the order an uncached ``shuffle=False`` read
yields, so a consumer that orders by index (iuie's index-based input pipeline) gets identical batches.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# The module that registers iuie's Tasks and Mixtures; named here as a string: iuie.pipeline sits below
# seqio_tasks in the import layers (.importlinter), and Beam workers import it by name anyway.
TASKS_MODULE = "seqio_tasks"
CACHE_MAIN = "seqio.scripts.cache_tasks_main"
DEFAULT_PIPELINE_OPTIONS = ("--runner=DirectRunner",)
# The environment variables that locate iuie's data; a Beam worker needs the same values.
DATA_ENV = ("IUIE_DATA_DIR", "IUIE_SYNTHETIC_DIR", "IUIE_VOCAB", "IUIE_VOCAB_EXTRA_IDS")


def cache_command(
    tasks: Sequence[str],
    output_cache_dir: str | os.PathLike,
    *,
    pipeline_options: Sequence[str] = DEFAULT_PIPELINE_OPTIONS,
    min_shards: int = 64,
    max_shards: int = 0,
    excluded_tasks: Sequence[str] = (),
    module_imports: Sequence[str] = (TASKS_MODULE,),
    overwrite: bool = False,
    python: str = sys.executable,
) -> list[str]:
    """The ``seqio_cache_tasks`` command line (as ``python -m seqio.scripts.cache_tasks_main``) for ``tasks``.

    ``tasks``: seqio's regexes of Task names (a Mixture's name caches its Tasks). ``pipeline_options``: the
    Beam options, e.g. ``("--runner=DataflowRunner", "--project=...", ...)``; seqio splits its flag on
    commas, so each option is one element here and none may contain a comma.
    """
    if not tasks:
        raise ValueError("cache_command needs at least one Task name or regex")
    for option in pipeline_options:
        if "," in option:
            raise ValueError(f"Beam option {option!r} contains a comma, which seqio's --pipeline_options splits on")
    argv = [python, "-m", CACHE_MAIN, f"--tasks={','.join(tasks)}", f"--output_cache_dir={os.fspath(output_cache_dir)}"]
    argv += [f"--module_import={m}" for m in module_imports]
    argv += [f"--pipeline_options={','.join(pipeline_options)}", f"--min_shards={min_shards}"]
    if max_shards:
        argv.append(f"--max_shards={max_shards}")
    if excluded_tasks:
        argv.append(f"--excluded_tasks={','.join(excluded_tasks)}")
    if overwrite:
        argv.append("--overwrite")
    argv.append("--alsologtostderr")
    return argv


def run_cache_job(
    tasks: Sequence[str],
    output_cache_dir: str | os.PathLike,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    **kwargs: Any,
) -> subprocess.CompletedProcess:
    """Runs seqio's Beam cache job for ``tasks`` (:func:`cache_command`); raises ``CacheJobError`` on failure.

    ``env``: extra environment (e.g. ``{"IUIE_DATA_DIR": ...}``) on top of this process's.
    """
    argv = cache_command(tasks, output_cache_dir, **kwargs)
    full_env = {**os.environ, **(env or {})}
    done = subprocess.run(argv, env=full_env, capture_output=True, text=True, timeout=timeout)
    if done.returncode:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise CacheJobError(f"seqio_cache_tasks exited with {done.returncode}: {' '.join(argv)}\n{tail}")
    return done


class CacheJobError(RuntimeError):
    """The Beam cache job failed; the message holds its command and the end of its log."""


def completed_tasks(output_cache_dir: str | os.PathLike) -> list[str]:
    """Names of the Task folders under ``output_cache_dir`` that seqio marked COMPLETED."""
    root = os.fspath(output_cache_dir)
    if not os.path.isdir(root):
        return []
    return sorted(d for d in os.listdir(root) if os.path.isfile(os.path.join(root, d, "COMPLETED")))


ENV_CACHE_DIRS = "IUIE_SEQIO_CACHE_DIRS"


def use_cache_dirs_from_env() -> list[str]:
    """Adds the comma-separated folders of ``$IUIE_SEQIO_CACHE_DIRS`` to seqio's cache dirs (``seqio_tasks``
    calls it on import, so the trainer, the evaluator and Beam workers all see the same caches)."""
    dirs = [d for d in os.environ.get(ENV_CACHE_DIRS, "").split(",") if d.strip()]
    for d in dirs:
        use_cache_dir(d.strip())
    return dirs


def use_cache_dir(output_cache_dir: str | os.PathLike) -> None:
    """Makes seqio look for cached Tasks in ``output_cache_dir`` (``seqio.add_global_cache_dirs``)."""
    import seqio

    path = os.fspath(output_cache_dir)
    if path not in seqio.get_global_cache_dirs():
        seqio.add_global_cache_dirs([path])


def cached_examples(
    task_name: str, split: str, sequence_length: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """The cached examples of ``task_name`` (``use_cached=True``) as numpy dicts, sorted by ``index``."""
    return _examples(task_name, split, sequence_length, use_cached=True)


def uncached_examples(
    task_name: str, split: str, sequence_length: Mapping[str, int] | None = None
) -> list[dict[str, Any]]:
    """The same Task read on the fly (``use_cached=False``, ``shuffle=False``), sorted by ``index``."""
    return _examples(task_name, split, sequence_length, use_cached=False)


def _examples(task_name, split, sequence_length, *, use_cached) -> list[dict[str, Any]]:
    import seqio

    task = seqio.get_mixture_or_task(task_name)
    ds = task.get_dataset(sequence_length, split=split, use_cached=use_cached, shuffle=False, num_epochs=1)
    out = list(ds.as_numpy_iterator())
    return sorted(out, key=_index_key) if out and "index" in out[0] else out


def _index_key(example: Mapping[str, Any]) -> int:
    return int(example["index"])


def dataset_from_examples(examples: Iterable[Mapping[str, Any]], like):
    """A ``tf.data.Dataset`` of ``examples`` with the element spec of ``like`` (a Task's dataset)."""
    import tensorflow as tf

    examples = list(examples)
    spec = like.element_spec
    return tf.data.Dataset.from_generator(lambda: iter(examples), output_signature=spec)

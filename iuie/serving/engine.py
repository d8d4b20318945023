"""The model side of ``iuie serve``: one checkpoint, Extractors per batch-row bucket, compiled at start-up.

A :class:`Job` is one request: texts, a task, its labels (and roles for EE), constrained or not.
:meth:`Engine.run` takes the jobs the :class:`~iuie.serving.batcher.Batcher` gathered and decodes them
together: jobs that share the model's input prefix (task, labels, roles, constrained) become one
``Extractor.extract`` call over all their texts, ordered by length so that each decode batch pads little,
and the results are handed back per job. Jobs with another prefix make another call in the same batch.

Compiled shapes stay few: the decode's rows are padded to the smallest of ``row_buckets`` (1, 2, 4, ... up
to ``max_rows``) that holds the call's texts (an Extractor per bucket, all over the same device arrays), with
all-zero padding rows that the decode counts as ended from its first step (``EncoderDecoderModel``), and its
input length to the Extractor's length buckets; :meth:`Engine.warm_up` compiles every (rows, length) pair
before the server takes a request. Long texts are read in the Extractor's windows.

``max_rows`` (the largest decode) is apart from ``max_batch`` (the most texts one batch gathers): a batch of
32 texts decodes as four calls of 8 rows when that is where a text costs least. On CPU the demo model's
cost per text falls from 1 to 4-8 rows and rises again past 8 (bench/batch_decode_scaling.py,
docs/serving.md), hence :func:`default_max_rows`.

A job whose extraction raises fails alone: when a shared call fails, its jobs are retried one by one, so
only the culprit gets the error (:class:`ExtractionInputError` for input the model cannot take, e.g. labels
whose options alone fill the input budget; anything else is an internal error).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Sequence
from typing import Any

from iuie.extraction.extractor import TASKS, Extraction, Extractor, InputTooLongError, WindowWarning
from iuie.interop.reader import trained_lengths

log = logging.getLogger("iuie.serve")


class ExtractionInputError(ValueError):
    """The model cannot take this input (a 422: the message names the field)."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


@dataclasses.dataclass(frozen=True)
class Job:
    """One request's work: ``labels`` are the types (ner, re) or event types (ee, with ``roles``)."""

    texts: tuple[str, ...]
    task: str
    labels: tuple[str, ...]
    roles: tuple[str, ...] = ()
    constrained: bool = False

    @property
    def prefix(self) -> tuple:
        """What the model input shares across texts: jobs with equal prefixes decode in one call."""
        return (self.task, self.labels, self.roles, self.constrained)

    def extractor_labels(self) -> Any:
        return [list(self.labels), list(self.roles)] if self.task == "ee" else list(self.labels)


def default_row_buckets(max_rows: int) -> tuple[int, ...]:
    """1, 2, 4, ... up to ``max_rows`` (always included): a call pads at most to twice its texts, so a lone
    request does not pay for a full batch (each bucket is one more compiled shape per input length)."""
    sizes, size = [], 1
    while size < max_rows:
        sizes.append(size)
        size *= 2
    return (*sizes, max_rows)


CPU_MAX_ROWS = 8  # the demo model's decode cost per text on CPU is lowest at 4-8 rows (docs/serving.md)


def default_max_rows(max_batch: int, platform: str | None = None) -> int:
    """The largest decode: :data:`CPU_MAX_ROWS` on CPU, else ``max_batch`` (never more than ``max_batch``)."""
    if platform is None:
        import jax

        platform = jax.default_backend()
    return min(max_batch, CPU_MAX_ROWS) if platform == "cpu" else max_batch


class Engine:
    """Extractors over one checkpoint, one per (row bucket, constrained); :meth:`run` decodes a batch of jobs."""

    def __init__(
        self,
        extractors: dict[tuple[int, bool], Extractor],
        *,
        checkpoint: str = "",
        trained: dict[str, int] | None = None,
        max_batch: int | None = None,
    ):
        if not extractors:
            raise ValueError("at least one extractor is needed")
        self.extractors = extractors
        self.row_buckets = tuple(sorted({rows for rows, _ in extractors}))
        # Texts one batch may gather (the Batcher's limit); decodes take at most row_buckets[-1] rows each.
        self.max_batch = int(max_batch) if max_batch is not None else self.row_buckets[-1]
        self.checkpoint = checkpoint
        self.trained = trained
        self.compiled: list[tuple[int, bool, int]] = []
        self.warm_up_seconds = 0.0
        any_extractor = next(iter(extractors.values()))
        self.config = any_extractor.config
        self.vocabulary = any_extractor.vocabulary
        self.max_input_tokens = any_extractor.max_input_tokens
        self.max_decode_length = any_extractor.max_decode_length
        self.parameters = _count(any_extractor.params)

    @classmethod
    def build(
        cls,
        params: Any,
        config: Any,
        vocabulary: Any,
        *,
        max_batch: int = 32,
        max_rows: int | None = None,
        row_buckets: Sequence[int] | None = None,
        constrained: bool = True,
        checkpoint: str = "",
        trained: dict[str, int] | None = None,
        **extractor_options: Any,
    ) -> Engine:
        """Extractors for ``row_buckets`` (default :func:`default_row_buckets` of ``max_rows``, itself
        :func:`default_max_rows` by default), unconstrained and, with ``constrained=True``, constrained too;
        the parameters are put on the device once and shared. Batches gather up to ``max_batch`` texts."""
        import jax

        if max_rows is None:
            max_rows = max(row_buckets) if row_buckets else default_max_rows(max_batch)
        max_rows = min(int(max_rows), max_batch)
        params = jax.device_put(params)
        buckets = sorted(set(row_buckets or default_row_buckets(max_rows)) | {max_rows})
        buckets = [b for b in buckets if 1 <= b <= max_rows]
        modes = (False, True) if constrained else (False,)
        extractors = {
            (rows, mode): Extractor(params, config, vocabulary, batch_size=rows, constrained=mode, **extractor_options)
            for rows in buckets
            for mode in modes
        }
        return cls(extractors, checkpoint=checkpoint, trained=trained, max_batch=max_batch)

    @classmethod
    def from_checkpoint(
        cls, path: str | os.PathLike, vocabulary: Any = None, *, max_input_tokens: int | None = None, **options: Any
    ) -> Engine:
        """An engine over any checkpoint the Extractor reads. ``max_input_tokens`` defaults to the input
        length the run was trained with (:func:`iuie.interop.reader.trained_lengths`: its ``run_info.json``
        or ``config.gin``), else 512."""
        from iuie.extraction.extractor import load_checkpoint
        from iuie.interop.hf import make_config
        from iuie.pipeline import vocab as vocab_lib

        params, fields, _ = load_checkpoint(path)
        config = make_config({**fields, "dtype": "float32", "dropout_rate": 0.0})
        if vocabulary is None or isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = vocab_lib.get_vocabulary(vocabulary)
        trained = trained_lengths(path)
        if max_input_tokens is None:
            max_input_tokens = (trained or {}).get("inputs", 512)
        return cls.build(
            params,
            config,
            vocabulary,
            checkpoint=os.fspath(path),
            trained=trained,
            max_input_tokens=max_input_tokens,
            **options,
        )

    @property
    def constrained_available(self) -> bool:
        return any(mode for _, mode in self.extractors)

    # -- compiling ------------------------------------------------------------------------------------

    def warm_up(self) -> float:
        """Compiles every (rows, input length) shape of every extractor; returns the seconds it took."""
        start = time.perf_counter()
        for (rows, mode), extractor in sorted(self.extractors.items()):
            shortest = shortest_prompt(extractor)
            # A bucket below the shortest possible model input is never used: not compiled.
            buckets = extractor.length_buckets()
            lengths = [b for b in buckets if b >= shortest] or buckets[-1:]
            for length in extractor.warm_up(lengths):
                self.compiled.append((rows, mode, length))
        self.warm_up_seconds = time.perf_counter() - start
        log.info("compiled %d decode shapes in %.1fs", len(self.compiled), self.warm_up_seconds)
        return self.warm_up_seconds

    # -- decoding -------------------------------------------------------------------------------------

    def _extractor(self, texts: int, constrained: bool) -> Extractor:
        rows = next((b for b in self.row_buckets if b >= texts), self.row_buckets[-1])
        return self.extractors[(rows, constrained)]

    def _extract(self, job_texts: Sequence[str], job: Job) -> list[Extraction]:
        if job.constrained and not self.constrained_available:
            raise ExtractionInputError("constrained", "constrained decoding is switched off on this server")
        order = sorted(range(len(job_texts)), key=lambda i: len(job_texts[i]))  # similar lengths share a decode
        texts = [job_texts[i] for i in order]
        # Decodes of at most max_rows texts, each padded to its own bucket (a remainder of 1 past 8 texts
        # decodes as 1 row, not 8). The free rows of a bucket are all-zero padding (iuie.model.batch_decode):
        # ended from the decode's first step, so the loop stops with the real rows and none reaches a result.
        results: list[Extraction] = []
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", WindowWarning)  # cuts are reported per result ("cut")
                for begin in range(0, len(texts), self.row_buckets[-1]):
                    chunk = texts[begin : begin + self.row_buckets[-1]]
                    extractor = self._extractor(len(chunk), job.constrained)
                    results += extractor.extract(chunk, job.task, job.extractor_labels())
        except InputTooLongError as e:
            raise ExtractionInputError("labels", str(e)) from None
        out: list[Extraction | None] = [None] * len(job_texts)
        for position, index in enumerate(order):
            out[index] = results[position]
        return out  # type: ignore[return-value]

    def run(self, jobs: Sequence[Job]) -> list[list[Extraction] | Exception]:
        """One result list per job (or the exception that job raised), in order."""
        results: list[list[Extraction] | Exception | None] = [None] * len(jobs)
        groups: dict[tuple, list[int]] = {}
        for index, job in enumerate(jobs):
            groups.setdefault(job.prefix, []).append(index)
        for members in groups.values():
            texts = [t for i in members for t in jobs[i].texts]
            try:
                extracted = self._extract(texts, jobs[members[0]])
            except Exception as e:
                if len(members) == 1:
                    results[members[0]] = _logged(e, jobs[members[0]])
                    continue
                for i in members:  # find the culprit: each job alone
                    try:
                        results[i] = self._extract(jobs[i].texts, jobs[i])
                    except Exception as alone:
                        results[i] = _logged(alone, jobs[i])
                continue
            position = 0
            for i in members:
                results[i] = extracted[position : position + len(jobs[i].texts)]
                position += len(jobs[i].texts)
        return results  # type: ignore[return-value]

    # -- description ----------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        config = self.config
        return {
            "checkpoint": self.checkpoint,
            "parameters": self.parameters,
            "model": {
                "emb_dim": config.emb_dim,
                "num_heads": config.num_heads,
                "head_dim": config.head_dim,
                "mlp_dim": config.mlp_dim,
                "num_encoder_layers": config.num_encoder_layers,
                "num_decoder_layers": config.num_decoder_layers,
                "vocab_size": config.vocab_size,
            },
            "vocabulary": {
                "pieces": int(self.vocabulary.tokenizer.get_piece_size()),
                "extra_ids": int(getattr(self.vocabulary, "extra_ids", 0) or 0),
            },
            "trained_lengths": self.trained,
            "max_input_tokens": self.max_input_tokens,
            "max_decode_length": self.max_decode_length,
            "tasks": {name: view for name, view in TASKS.items()},
            "constrained_available": self.constrained_available,
            "row_buckets": list(self.row_buckets),
            "max_batch": self.max_batch,
            "length_buckets": next(iter(self.extractors.values())).length_buckets(),
            "compiled_shapes": len(self.compiled),
            "warm_up_seconds": round(self.warm_up_seconds, 2),
        }


def shortest_prompt(extractor: Extractor) -> int:
    """Tokens of the shortest input any request can make: an empty text with a one-letter label, over the
    tasks (the instruction and options come first in every view)."""
    from iuie.ie.formats import format_view
    from iuie.ie.records import Labels, Record

    sizes = []
    for view in TASKS.values():
        labels = Labels.from_json([["x"], []] if view == "EE" else ["x"], view)
        inputs = format_view(view, Record(sentence=""), labels, extractor.instructions.choose(view)).inputs
        sizes.append(len(extractor.vocabulary.encode(inputs)) + 1)
    return min(sizes)


def _logged(error: Exception, job: Job) -> Exception:
    if not isinstance(error, ExtractionInputError):
        log.error("extraction failed (task %s, %d texts): %r", job.task, len(job.texts), error, exc_info=error)
    return error


def _count(params: Any) -> int:
    import jax

    return int(sum(int(x.size) for x in jax.tree.leaves(params)))

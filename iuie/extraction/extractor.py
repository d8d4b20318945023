"""The Python API: zero-shot extraction from any checkpoint, with character offsets into the user's text.

::

    from iuie.extraction.extractor import Extractor
    extractor = Extractor.from_checkpoint("/tmp/iuie_demo")          # iuie MODEL_DIR, HF, T5X or iuie folder
    [doc] = extractor.extract(["Anna Berg lives in Oslo ."], task="ner", labels=["person", "location"])
    doc.entities   # (Entity(name='Anna Berg', type='person', start=0, end=9), ...)

Results use the one result vocabulary of :mod:`iuie.ie.records` (``Entity``, ``Relation``, ``Event``,
``Argument``; JSON in docs/extract.md).

Zero-shot by construction: the label list goes into the view's options exactly as the model was trained
to read them (:mod:`iuie.ie.formats`), so any names may be asked for. Tasks: ``ner`` (the NER view), ``re``
(RE), ``ee`` (EE; labels ``[event types, roles]`` or ``{event type: [roles]}``).

**Windows.** A document is split into sentences (:func:`split_sentences`: a sentence ends after ``.``,
``!`` or ``?`` followed by white space, or at a line break) and consecutive sentences are packed into
windows whose *formatted* model input (instruction, options, window text, EOS) fits ``max_input_tokens``
(from a checkpoint: by default the input length it was trained with, :meth:`Extractor.from_checkpoint`).
Each window is a verbatim slice of the document, so offsets found in it shift back by the window's start.
A single sentence over the budget is read as its words (at characters if one word does not fit): this is
counted and reported with a :class:`WindowWarning`, or raises :class:`InputTooLongError` with
``strict=True``. Consecutive windows overlap by up to ``window_overlap`` tokens of text (default: a quarter
of a window's room for text; 0: no overlap): the next window starts at the first sentence start in that
reach, else at a word start, so a name cut by one window's edge is read whole by the next; what two windows
find is merged (:mod:`iuie.extraction.merging`, counted in ``Extraction.merged``). An output that reaches
``max_decode_length`` without EOS is parsed as far as it goes and also reported.

**Offsets.** All predicted mentions of one window's output are aligned together with
:func:`iuie.ie.views.locate` (as ``iuie.infer`` does: exact first unused occurrence, then the case- and
white-space-insensitive fallback), so a relation ``meet: Anna, Anna`` over ``Anna met Anna`` takes both
occurrences; an aligned mention's ``name`` is the document's own ``text[start:end]``. A mention found nowhere
(a hallucination) is kept with ``start = end = None`` and counted in ``Extraction.unaligned``: never dropped
silently.

**Checkpoints.** An iuie training run (``MODEL_DIR``, its ``checkpoints/`` or one step folder: only the
``params`` of the saved train state are read), or a Hugging Face, T5X or exported iuie folder: the reader
every binary uses. The network config is read off the parameter shapes
or the folder's own config (:func:`iuie.interop.reader.read_params`), so no gin file is needed.

**Speed.** Batches are padded to ``batch_size`` rows and the input length to a few buckets, so the decode is
jit-compiled once per bucket. ``constrained=True`` turns on constrained decoding (off by default, as in the
paper) on the device: the batch's grammars are compiled into integer tables (:mod:`iuie.extraction.compiled`,
built in a background thread while the previous batch decodes) and run inside the decode loop
(:mod:`iuie.model.grammar_mask`). ``constrained="host"`` runs the same grammar on the host through
``jax.pure_callback`` at every step (:mod:`iuie.extraction.constrained`, the reference; slower). Constrained
mentions start and end at word boundaries unless ``word_boundaries=False`` (any substring of the text).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from iuie.extraction import merging
from iuie.ie import views
from iuie.ie.formats import format_view
from iuie.ie.instructions import DEFAULT_INSTRUCTIONS, InstructionSet, instruction_set
from iuie.ie.parsing import parse
from iuie.ie.records import Entity, Event, Labels, Record, Relation, structures_from_json

TASKS = {"ner": "NER", "re": "RE", "ee": "EE"}
# The window length when a checkpoint records no trained input length (a Hugging Face folder, an export).
DEFAULT_MAX_INPUT_TOKENS = 512
# Extractor(constrained=...): off, on the device (the default of True), or on the host (the reference).
CONSTRAINT_MODES = {False: None, None: None, True: "device", "device": "device", "host": "host"}
# Input lengths are padded up to one of these (or to max_input_tokens): one compilation per bucket.
_MIN_BUCKET = 32

log = logging.getLogger("iuie.extraction")


class InputTooLongError(ValueError):
    """A sentence does not fit the input budget and ``strict=True`` forbids cutting it."""


class WindowWarning(UserWarning):
    """Something was cut: a sentence longer than the input budget, or an output longer than the decode
    budget. The message gives the counts."""


# --------------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Extraction:
    """What was found in one input text.

    ``windows``: the character ranges the text was read in; ``outputs``: the model's raw output per window;
    ``unaligned``: mentions found nowhere in their window (kept in the lists with no offsets);
    ``malformed``: output pieces the parser could not read; ``cut``: windows made by cutting an over-long
    sentence plus outputs that hit the decode budget; ``merged``: results found twice by overlapping windows
    (or as a fragment at a window's edge) and reported once (:mod:`iuie.extraction.merging`).
    """

    text: str
    task: str
    entities: tuple[Entity, ...] = ()
    relations: tuple[Relation, ...] = ()
    events: tuple[Event, ...] = ()
    windows: tuple[tuple[int, int], ...] = ()
    outputs: tuple[str, ...] = ()
    unaligned: int = 0
    malformed: int = 0
    cut: int = 0
    merged: int = 0

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text, "task": self.task}
        if self.task == "ner":
            out["entities"] = [e.to_json() for e in self.entities]
        elif self.task == "re":
            out["relations"] = [r.to_json() for r in self.relations]
        else:
            out["events"] = [e.to_json() for e in self.events]
        out.update(
            windows=[list(w) for w in self.windows],
            outputs=list(self.outputs),
            unaligned=self.unaligned,
            malformed=self.malformed,
            cut=self.cut,
            merged=self.merged,
        )
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Extraction:
        """Reads :meth:`to_json` output back (RecordError naming the field for a bad structure)."""
        sections = structures_from_json(obj)
        return cls(
            str(obj["text"]),
            str(obj["task"]),
            sections["entities"],
            sections["relations"],
            sections["events"],
            tuple(tuple(w) for w in obj.get("windows", ())),
            tuple(obj.get("outputs", ())),
            int(obj.get("unaligned", 0)),
            int(obj.get("malformed", 0)),
            int(obj.get("cut", 0)),
            int(obj.get("merged", 0)),
        )


# --------------------------------------------------------------------------------------------------------
# Sentences and windows
# --------------------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?]+(?=\s)|\n")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Sentence ``(start, end)`` character ranges, white space trimmed, in order.

    Deliberately simple and predictable: a sentence ends after a run of ``.``, ``!`` or ``?`` that is
    followed by white space, and at every line break. Abbreviations ("Dr. Berg") therefore split too, which
    costs nothing but context: windows pack several sentences together anyway.
    """
    spans = []
    pos = 0
    for match in _SENTENCE_END.finditer(text):
        spans.append((pos, match.end()))
        pos = match.end()
    spans.append((pos, len(text)))
    out = []
    for start, end in spans:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            out.append((start, end))
    return out


@dataclasses.dataclass
class _Window:
    document: int
    start: int
    end: int
    text: str
    tokens: list[int]
    cut: bool = False


# --------------------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------------------


def load_checkpoint(path: str | os.PathLike) -> tuple[dict, dict[str, Any], str]:
    """``(params, config fields, format)`` of any checkpoint :class:`Extractor` reads, through the one
    reader :func:`iuie.interop.reader.read_params` (host numpy, float32; a relative path is read from the
    working directory).

    Raises FileNotFoundError for a missing path and ``iuie.interop.hf.CheckpointError`` (a ValueError) for a
    folder that holds no checkpoint.
    """
    from iuie.interop import reader

    read = reader.read_params(path)
    return read.params, read.fields, read.source.format


# --------------------------------------------------------------------------------------------------------
# The extractor
# --------------------------------------------------------------------------------------------------------


def _labels_for(task: str, labels: Any) -> tuple[Labels, Any]:
    """``(Labels of the view, the raw option list for parsing)``; ValueError for empty or malformed lists."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    if isinstance(labels, str):
        labels = [part.strip() for part in labels.split(",")]
    if task == "ee":
        if isinstance(labels, Mapping):
            types = [str(t) for t in labels]
            roles = list(dict.fromkeys(str(r) for rs in labels.values() for r in rs))
        elif (
            isinstance(labels, (list, tuple)) and len(labels) == 2 and all(isinstance(x, (list, tuple)) for x in labels)
        ):
            types, roles = [str(t) for t in labels[0]], [str(r) for r in labels[1]]
        else:
            types, roles = [str(t) for t in labels], []
        types = [t for t in types if t.strip()]
        if not types:
            raise ValueError("the label list is empty: name at least one event type")
        raw = [types, [r for r in roles if r.strip()]]
        return Labels.from_json(raw, "EE"), raw
    names = [str(label) for label in labels if str(label).strip()]
    if not names:
        raise ValueError(f"the label list is empty: name at least one {'entity' if task == 'ner' else 'relation'} type")
    return Labels.from_json(names, TASKS[task]), names


class _TablePrefetch:
    """Grammar tables of the batches :func:`iuie.model.batch_decode.decode_rows` will ask for (consecutive
    chunks of ``batch_size`` rows), each built in a background thread while the batch before it decodes."""

    def __init__(self, compiler: Any, grammars: Sequence[Any], batch_size: int):
        from concurrent.futures import ThreadPoolExecutor

        self.compiler, self.grammars, self.batch_size = compiler, grammars, batch_size
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="iuie-grammar-tables")
        self.pending: dict[int, Any] = {}
        self._submit(0)

    def _submit(self, start: int) -> None:
        if start < len(self.grammars) and start not in self.pending:
            chunk = self.grammars[start : start + self.batch_size]
            self.pending[start] = self.pool.submit(self.compiler.tables, chunk, self.batch_size)

    def get(self, rows: Sequence[int]) -> dict[str, np.ndarray]:
        start = rows[0] if rows else len(self.grammars)
        if list(rows) != list(range(start, start + len(rows))):
            raise ValueError("grammar tables are prefetched for consecutive batches only")
        self._submit(start)
        tables = self.pending.pop(start).result()
        self._submit(start + self.batch_size)
        return tables

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class Extractor:
    """Extraction with one model and vocabulary; build it with :meth:`from_checkpoint`."""

    def __init__(
        self,
        params: Any,
        config: Any,
        vocabulary: Any,
        *,
        max_input_tokens: int = 512,
        max_decode_length: int = 50,
        batch_size: int = 16,
        constrained: bool | str = False,
        instructions: InstructionSet | str | None = None,
        strict: bool = False,
        window_overlap: int | None = None,
        word_boundaries: bool = True,
    ):
        import jax

        from iuie.model.models import EncoderDecoderModel

        if max_input_tokens < 8 or max_decode_length < 1 or batch_size < 1:
            raise ValueError("max_input_tokens >= 8, max_decode_length >= 1 and batch_size >= 1 are needed")
        if window_overlap is not None and window_overlap < 0:
            raise ValueError(f"window_overlap must be >= 0 tokens (0: windows do not overlap), not {window_overlap}")
        self.config = config
        self.vocabulary = vocabulary
        self.max_input_tokens = int(max_input_tokens)
        self.max_decode_length = int(max_decode_length)
        self.batch_size = int(batch_size)
        if constrained not in CONSTRAINT_MODES:
            raise ValueError(f"constrained must be one of {CONSTRAINT_MODES}, not {constrained!r}")
        self.constraint_mode = CONSTRAINT_MODES[constrained]
        self.constrained = self.constraint_mode is not None
        # Constrained mentions start and end at word boundaries (iuie.extraction.constrained, module docstring).
        self.word_boundaries = bool(word_boundaries)
        self.strict = bool(strict)
        self.window_overlap = None if window_overlap is None else int(window_overlap)
        # Where max_input_tokens came from (from_checkpoint: the trained length or the fallback).
        self.window_source = "given"
        if isinstance(instructions, InstructionSet):
            self.instructions = instructions
        else:
            self.instructions = instruction_set(instructions) if instructions else DEFAULT_INSTRUCTIONS
        pieces = vocabulary.tokenizer.get_piece_size() + int(getattr(vocabulary, "extra_ids", 0) or 0)
        if pieces > config.vocab_size:
            raise ValueError(
                f"the vocabulary has {pieces} ids but the model only {config.vocab_size}: "
                "wrong vocabulary for this checkpoint (set IUIE_VOCAB or pass vocabulary=)"
            )
        self.model = EncoderDecoderModel(config=config, input_vocabulary=vocabulary, output_vocabulary=vocabulary)
        self.eos_id = self.model.eos_id
        self.params = jax.device_put(params)
        self._constrainer = None
        self._compiler = None
        if self.constraint_mode == "host":
            from iuie.extraction.constrained import Constrainer

            self._constrainer = Constrainer(vocabulary, config.vocab_size, self.eos_id)
        elif self.constraint_mode == "device":
            from iuie.extraction.compiled import Compiler

            self._compiler = Compiler(vocabulary, config.vocab_size, self.eos_id)
        self._decode = jax.jit(self._decode_batch)
        self.last_stats: dict[str, int] = {}

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike,
        vocabulary: Any = None,
        *,
        max_input_tokens: int | None = None,
        max_decode_length: int = 50,
        batch_size: int = 16,
        constrained: bool | str = False,
        instructions: InstructionSet | str | None = None,
        strict: bool = False,
        window_overlap: int | None = None,
        word_boundaries: bool = True,
        dtype: str = "float32",
    ) -> Extractor:
        """An extractor for a checkpoint in any format (module docstring); ``vocabulary``: a seqio
        SentencePiece vocabulary or a model file path (default :func:`iuie.pipeline.vocab.get_vocabulary`).

        ``max_input_tokens=None``: the input length the checkpoint was trained with
        (:func:`iuie.interop.reader.read_trained_lengths`), else ``DEFAULT_MAX_INPUT_TOKENS`` (logged)."""
        from iuie.interop import reader
        from iuie.interop.hf import make_config
        from iuie.pipeline import vocab as vocab_lib

        params, fields, _ = load_checkpoint(path)
        source = "given"
        if max_input_tokens is None:
            found = reader.read_trained_lengths(path)
            if found is not None:
                max_input_tokens, source = found[0]["inputs"], f"trained length, {found[1]}"
            else:
                max_input_tokens, source = DEFAULT_MAX_INPUT_TOKENS, "default: no trained length recorded"
                log.info(
                    "%s records no trained input length (no %s or %s with task_feature_lengths): windows of %d tokens",
                    os.fspath(path),
                    reader.RUN_INFO_FILE,
                    reader.OPERATIVE_CONFIG_FILE,
                    max_input_tokens,
                )
        config = make_config({**fields, "dtype": dtype, "dropout_rate": 0.0})
        if vocabulary is None or isinstance(vocabulary, (str, os.PathLike)):
            vocabulary = vocab_lib.get_vocabulary(vocabulary)
        extractor = cls(
            params,
            config,
            vocabulary,
            max_input_tokens=max_input_tokens,
            max_decode_length=max_decode_length,
            batch_size=batch_size,
            constrained=constrained,
            instructions=instructions,
            strict=strict,
            window_overlap=window_overlap,
            word_boundaries=word_boundaries,
        )
        extractor.window_source = source
        return extractor

    # -- the model ------------------------------------------------------------------------------------

    def _decode_batch(self, params, tokens, grammar):
        """``grammar``: the host version's example keys, or the device version's tables (or None)."""
        mask_fn = None
        if self._constrainer is not None:
            mask_fn = self._constrainer.logits_mask_fn(grammar)
        elif self._compiler is not None:
            from iuie.model.grammar_mask import GrammarMask

            mask_fn = GrammarMask(grammar, self.eos_id)
        return self.model.predict_batch(
            params, {"encoder_input_tokens": tokens}, max_decode_length=self.max_decode_length, logits_mask_fn=mask_fn
        )

    def _bucket(self, length: int) -> int:
        from iuie.model.batch_decode import bucket_length

        return bucket_length(length, self.max_input_tokens, _MIN_BUCKET)

    def _run(self, windows: Sequence[_Window], grammars: Sequence[Any] | None) -> list[tuple[str, bool]]:
        """``(output text, reached the decode budget)`` per window, in order."""
        from iuie.model import batch_decode

        tables = _TablePrefetch(self._compiler, grammars, self.batch_size) if self._compiler is not None else None

        def decode(tokens, rows: list[int]):
            if tables is not None:
                return self._decode(self.params, tokens, tables.get(rows))
            keys = np.full((self.batch_size,), -1, np.int32)
            keys[: len(rows)] = np.arange(len(rows))
            if self._constrainer is not None:
                self._constrainer.register({slot: grammars[row] for slot, row in enumerate(rows)})
            return self._decode(self.params, tokens, keys)

        try:
            decodes = batch_decode.decode_rows(
                decode,
                [w.tokens for w in windows],
                batch_size=self.batch_size,
                length_of=self._bucket,
                on_batch=self._progress,
            )
        finally:
            if tables is not None:
                tables.close()
        out = []
        for row in decodes:
            ids = row.tolist()
            finished = self.eos_id in ids
            ids = ids[: ids.index(self.eos_id)] if finished else ids
            ids = [i for i in ids if i != 0]
            out.append((self.vocabulary.decode(ids), not finished))
        return out

    # -- inputs ---------------------------------------------------------------------------------------

    def _encode(self, view: str, labels: Labels, instruction: str, text: str) -> list[int]:
        inputs = format_view(view, Record(sentence=text), labels, instruction).inputs
        return list(self.vocabulary.encode(inputs)) + [self.eos_id]

    def _windows(
        self, document: int, text: str, view: str, labels: Labels, instruction: str, stats: dict[str, int]
    ) -> list[_Window]:
        budget = self.max_input_tokens

        def window(start: int, end: int) -> _Window | None:
            tokens = self._encode(view, labels, instruction, text[start:end])
            return _Window(document, start, end, text[start:end], tokens) if len(tokens) <= budget else None

        empty = self._encode(view, labels, instruction, "")
        if len(empty) >= budget:
            raise InputTooLongError(
                f"the instruction and options alone take {len(empty)} tokens, over the input "
                f"budget of {budget}: shorten the label list or raise max_input_tokens"
            )
        overlap = self.overlap_tokens(budget - len(empty))
        stats["overlap_tokens"] = overlap
        units = self._units(document, text, window, stats)
        if not units:  # an empty or all-white-space text still gets one (empty) window, hence one answer
            return [_Window(document, 0, 0, "", empty)]
        out: list[_Window] = []
        i, start = 0, units[0][0]
        while i < len(units):
            # Greedy: from ``start`` take units i, i+1, ... while the window fits (unit i always does:
            # ``_next_start`` checked it).
            best, j = window(start, units[i][1]), i + 1
            while j < len(units) and (grown := window(start, units[j][1])) is not None:
                best, j = grown, j + 1
            assert best is not None
            best.cut = any(cut for s, e, cut in units[:j] if e > best.start)
            out.append(best)
            if j < len(units):
                start = self._next_start(best, units, j, overlap, window)
            i = j
        return out

    def overlap_tokens(self, room: int) -> int:
        """The tokens of text consecutive windows share: ``window_overlap``, or a quarter of ``room`` (the
        tokens a window has for text, after the instruction and options)."""
        if self.window_overlap is None:
            return room // 4
        if self.window_overlap >= room:
            raise ValueError(
                f"window_overlap={self.window_overlap} leaves no room: a window of max_input_tokens="
                f"{self.max_input_tokens} has {room} tokens for text after the instruction and options"
            )
        return self.window_overlap

    def _units(self, document: int, text: str, window: Callable, stats: dict[str, int]) -> list[tuple[int, int, bool]]:
        """``(start, end, cut)`` pieces windows are packed from: the sentences, and the words of a sentence over
        the budget (``cut``; a word over the budget as its longest character prefixes that fit)."""
        units: list[tuple[int, int, bool]] = []
        for start, end in split_sentences(text):
            if window(start, end) is not None:
                units.append((start, end, False))
                continue
            stats["cut_sentences"] += 1
            if self.strict:
                raise InputTooLongError(
                    f"text {document}: the sentence at characters {start}-{end} does not fit the input "
                    f"budget of {self.max_input_tokens} tokens (strict mode does not cut sentences)"
                )
            for match in re.finditer(r"\S+", text[start:end]):
                pos, word_end = start + match.start(), start + match.end()
                if window(pos, word_end) is not None:
                    units.append((pos, word_end, True))
                    continue
                while pos < word_end:  # one word over the budget: the longest character prefixes that fit
                    lo, hi = pos + 1, word_end
                    if window(pos, lo) is None:
                        raise InputTooLongError(f"no single character at {pos} fits the input budget")
                    while lo < hi:
                        mid = (lo + hi + 1) // 2
                        lo, hi = (mid, hi) if window(pos, mid) is not None else (lo, mid - 1)
                    units.append((pos, lo, True))
                    pos = lo
        return units

    def _next_start(
        self, previous: _Window, units: Sequence[tuple[int, int, bool]], j: int, overlap: int, window: Callable
    ) -> int:
        """Where the window after ``previous`` starts, its first new unit being ``units[j]``: as far back into
        ``previous`` as ``overlap`` tokens of text reach, at a sentence start if one is in reach (a window
        that starts mid-sentence sees the rest of a name only), else at a word start; never at or before
        ``previous.start``, and only as far back as still lets ``units[j]`` fit."""
        if overlap <= 0:
            return units[j][0]
        words = [previous.start + m.start() for m in re.finditer(r"\S+", previous.text)][1:]
        reach = units[j][0]
        for pos in reversed(words):  # the tail's tokens grow as its start moves back
            if len(self.vocabulary.encode(previous.text[pos - previous.start :])) > overlap:
                break
            reach = pos
        sentences = [s for s, _, cut in units[:j] if not cut and reach <= s < units[j][0]]
        first = sentences[0] if sentences else reach
        for pos in [first, *(w for w in words if w > first), units[j][0]]:
            if window(pos, units[j][1]) is not None:
                return pos
        return units[j][0]

    # -- outputs --------------------------------------------------------------------------------------

    @staticmethod
    def _read(task: str, view: str, window: _Window, output: str, raw_labels: Any):
        """``(entities, relations, events, malformed, unaligned)`` of one window's output, offsets in the document."""
        parsed = parse(view, output, raw_labels, sentence=window.text)
        located, unaligned = views.locate(view, parsed.items, window.text, shift=window.start)
        entities = [s for s in located if isinstance(s, Entity)]
        relations = [s for s in located if isinstance(s, Relation)]
        events = [s for s in located if isinstance(s, Event)]
        return entities, relations, events, parsed.malformed, unaligned

    # -- the API --------------------------------------------------------------------------------------

    def extract(
        self,
        texts: Sequence[str] | str,
        task: str = "ner",
        labels: Any = (),
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[Extraction]:
        """One :class:`Extraction` per text (a single string is one text), in order.

        ``labels``: the option names (a list, or one comma-separated string); for ``ee`` also
        ``[types, roles]`` or ``{type: [roles]}``. ``progress(done, total)`` is called after each batch
        (windows, not texts). Counts of what was cut, misaligned or malformed are in :attr:`last_stats`.
        """
        task = str(task).lower()
        labels_obj, raw_labels = _labels_for(task, labels)
        if isinstance(texts, str):
            texts = [texts]
        view = TASKS[task]
        instruction = self.instructions.choose(view)
        stats = {
            "texts": len(texts),
            "windows": 0,
            "cut_sentences": 0,
            "cut_outputs": 0,
            "unaligned": 0,
            "malformed": 0,
            "merged": 0,
            "overlap_tokens": 0,
        }
        windows: list[_Window] = []
        for index, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {index} is a {type(text).__name__}, not a string")
            windows.extend(self._windows(index, text, view, labels_obj, instruction, stats))
        stats["windows"] = len(windows)
        grammars = None
        if self.constrained:
            from iuie.extraction.constrained import grammar_for

            # A {type: roles} map narrows each event's roles to its type's (the Labels of the view keep
            # only the flat role list the model reads).
            options = labels if task == "ee" and isinstance(labels, Mapping) else labels_obj
            grammars = [grammar_for(view, w.text, options, word_boundaries=self.word_boundaries) for w in windows]
        self._progress = progress
        try:
            outputs = self._run(windows, grammars)
        finally:
            self._progress = None

        per_doc: list[dict[str, list]] = [{"e": [], "r": [], "v": [], "w": [], "o": []} for _ in texts]
        counts = [[0, 0, 0] for _ in texts]  # unaligned, malformed, cut
        for window, (output, hit_budget) in zip(windows, outputs):
            entities, relations, events, malformed, unaligned = self._read(task, view, window, output, raw_labels)
            doc = per_doc[window.document]
            doc["e"] += [(len(doc["w"]), e) for e in entities]
            doc["r"] += relations
            doc["v"] += events
            doc["w"].append((window.start, window.end))
            doc["o"].append(output)
            counts[window.document][0] += unaligned
            counts[window.document][1] += malformed
            counts[window.document][2] += int(window.cut) + int(hit_budget)
            stats["unaligned"] += unaligned
            stats["malformed"] += malformed
            stats["cut_outputs"] += int(hit_budget)
        results = []
        for text, d, c in zip(texts, per_doc, counts):
            entities, merged_e = merging.merge_entities(d["e"], d["w"], len(text))
            relations, merged_r = merging.merge_relations(d["r"])
            events, merged_v = merging.merge_events(d["v"])
            merged = merged_e + merged_r + merged_v
            stats["merged"] += merged
            results.append(
                Extraction(
                    text,
                    task,
                    tuple(entities),
                    tuple(relations),
                    tuple(events),
                    tuple(d["w"]),
                    tuple(d["o"]),
                    *c,
                    merged,
                )
            )
        self.last_stats = stats
        if stats["cut_sentences"] or stats["cut_outputs"]:
            warnings.warn(
                f"{stats['cut_sentences']} sentence(s) longer than the input budget of "
                f"{self.max_input_tokens} tokens were cut into pieces, and {stats['cut_outputs']} of "
                f"{stats['windows']} output(s) reached max_decode_length={self.max_decode_length} "
                "without ending (parsed as far as they go)",
                WindowWarning,
                stacklevel=2,
            )
        return results

    _progress: Callable[[int, int], None] | None = None

    # -- compiling ahead of use (servers) ----------------------------------------------------------------

    def length_buckets(self) -> list[int]:
        """The padded input lengths a batch can have (up to ``max_input_tokens``): one compilation each."""
        sizes, size = [], _MIN_BUCKET
        while size < self.max_input_tokens:
            sizes.append(size)
            size *= 2
        return [*sizes, self.max_input_tokens]

    def warm_up(self, lengths: Sequence[int] | None = None) -> list[int]:
        """Compiles the decode for every length bucket (or the given lengths) at this ``batch_size``, so that
        no later call pays for a compilation (``iuie serve`` does this at start-up). Returns the lengths."""
        lengths = list(lengths) if lengths is not None else self.length_buckets()
        # No grammar: padding rows decode unconstrained. The device version compiles again for each new
        # size of the grammar tables (padded to powers of two), which depends on the options and the texts.
        grammar: Any = np.full((self.batch_size,), -1, np.int32)
        if self._constrainer is not None:
            self._constrainer.register({})
        if self._compiler is not None:
            grammar = self._compiler.tables([], self.batch_size)
        for length in lengths:
            np.asarray(self._decode(self.params, np.zeros((self.batch_size, int(length)), np.int32), grammar))
        return lengths

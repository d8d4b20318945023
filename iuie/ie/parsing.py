"""Model output text back to structures, one rule set per task view. :func:`parse` never raises on any text.

The formats being read are those of ``shared/FORMATS.md`` (every target starts with one space):

====  ====================================================  =======================================
view  text                                                  items
====  ====================================================  =======================================
NER   `` type: mention; type: mention``                     ``(type, mention)``
ET    as NER                                                ``(type, mention)``
ES    `` mention, mention``                                 ``(mention,)``
RE    `` relation: head, tail; relation: head, tail``       ``(relation, head, tail)``
EPR   as RE                                                 ``(relation, head, tail)``
EP    `` head, tail; head, tail``                           ``(head, tail)``
EE    `` ( type: trigger, arg: role, arg: role) , ( ...)``  ``(type, trigger, ((role, arg), ...))``
EET   `` type: trigger; type: trigger``                     ``(type, trigger)``
EEA   `` arg: role; arg: role``                             ``(role, arg)``
====  ====================================================  =======================================

``None`` (any case, any surrounding whitespace) and empty text give no items. ``Parsed.malformed`` counts the
pieces that could not be read; they give no item.

Rules:

1. **Input.** ``str`` as is; ``bytes`` decoded as UTF-8 (bad bytes replaced); ``None`` is empty text; anything
   else goes through ``str()``. ``Parsed.text`` keeps the decoded text unchanged (the reference metric reads it).
2. **Spaces.** Whitespace around every separator (``;``, ``,``, ``:``, ``(``, ``)``) is optional and ignored;
   mentions and types are stripped (types also have inner whitespace runs collapsed). A piece that is empty
   (a doubled or trailing separator) or is ``None`` is skipped without counting as malformed.
3. **Items.** NER, ET, RE, EPR, EP, EET and EEA items are separated by ``;``. Without ``sentence`` every
   ``;`` separates, and a piece that cannot be read as an item (no ``:``; for RE/EPR/EP no ``,`` either;
   an empty mention) is malformed. That is how output cut mid-item reads: the complete items are kept, the
   broken one is counted. Mentions may hold ``;`` (``"Simon &amp; Schuster"``), so with ``sentence`` the
   pieces are re-joined where that reads better, by the segmentation of rule 7 with every ``;`` canonical
   and these segment costs: 0 when the segment reads as an item whose mentions all occur verbatim in the
   sentence, 1 per mention found only by the alignment fallback, 1 for a type or role outside the given
   ``labels``, 2 per mention not in the sentence, 2 for a segment that does not read, 1 for an empty one
   (``None`` costs 0); a cost of 2 or more is multiplied by the number of pieces the segment spans. A type
   holding ``;`` never reads (it is two pieces glued together).
4. **Type first** (NER, ET, RE, EPR, EET, EE). With ``labels``, the longest option that the item starts with,
   followed by ``:``, is the type (compared ignoring case and runs of whitespace; the option's own spelling is
   returned), so options holding ``:``, ``,`` or ``;`` (``"per:title"``) read whole. Otherwise, or when no
   option matches (the model invented a type: it is kept), the type is the text before the first ``:``, so
   mentions may hold ``:`` (``"Cosmos : A Personal Voyage"``).
5. **Role last** (EEA, EE arguments). With ``labels``, the longest option ending the argument after a ``:``
   is the role; otherwise the text after the last ``:`` (so ``"09:15 AM UTC: time"`` reads right).
6. **Two mentions joined by ``,``** (RE/EPR head and tail, EP pairs, EE trigger and first argument). Every
   ``,`` is a candidate split point; both parts must be non-empty. Preferred, in order: the lowest cost of
   the two parts against ``sentence`` (when given; 0 verbatim, 1 by the fallback, 2 absent); a *canonical*
   comma, one not preceded by whitespace (targets write ``"head, tail"``, while tokenised corpora write
   commas inside mentions as ``" , "``: ``"Richmond , Va"``); the leftmost. ``"Washington, D.C., USA"`` is
   thus ambiguous without a sentence (it reads as ``Washington`` / ``D.C., USA``) and resolved by one.
7. **ES** mentions are separated by ``,`` and may hold commas. Without ``sentence`` the text is split at
   canonical commas only. With it, the segmentation (a choice of commas to split at) is chosen with the
   least total segment cost, then the fewest deviations from the canonical split (one per canonical comma
   not split and per non-canonical comma split). A segment costs 0 when it occurs verbatim in the sentence,
   1 when only the fallback finds it or it is empty, and 2 per canonical piece it spans when it does not
   occur (so gluing hallucinations together is never cheaper than leaving them apart). So
   ``"A, Richmond , Va, R'lyeh,, B"`` reads as ``A`` / ``Richmond , Va`` / ``R'lyeh,`` / ``B`` (a mention
   ending in a comma is WNUT-17 annotation noise). A mention that is itself ``"X, Y"`` with both parts in
   the sentence stays ambiguous and reads as two mentions. When the canonical split costs 0 it is taken
   directly; beyond 64 separators only the canonical split is used (the search is quadratic).
8. **EE.** Events are the parenthesised groups joined by ``,`` (``") , ("``, also without the comma). A
   boundary ``)…(`` counts only where an event head follows (``type:``; with ``labels`` an option followed
   by ``:``), so mentions holding parentheses (``"SFMTA (The San Francisco ...)"``) stay whole; it also
   counts where neither ``:`` nor ``)`` follows it (a next event cut short before its type). A missing
   ``(`` before the first event is tolerated; an event without its closing ``)`` at the end of the text
   (output cut short) is malformed and dropped. Inside an event: the type (rule 4), then the arguments
   are found from their roles: each ``: role`` followed by ``,`` or the end closes one argument (with
   ``labels`` only options count as roles, otherwise any text without ``:``, ``,`` or parentheses). The text
   before the first argument holds the trigger and the first argument's text, split by rule 6. ``, None``
   (no argument) or nothing after the trigger gives no arguments. Leftover text after the last argument
   (other than ``None``) is malformed.
9. **Quotes in events.** The reference writes ``'`` in EE/EET types and triggers as ``#$%#``; EE and EET read
   ``#$%#`` back as ``'`` everywhere in the text.

``labels`` is the option list of the example: a :class:`iuie.ie.records.Labels`, a list of strings (types for
NER/ET/RE/EPR/EET/EE, roles for EEA), the EE ``[types, roles]`` pair, or the EET/EEA ``{type: [roles]}``
mapping; ES and EP ignore it. ``sentence`` (the input sentence) is optional and only chooses between
readings (rules 3, 6, 7); whether a text occurs in it is decided by :mod:`iuie.ie.alignment` (verbatim, else
its documented fallback). Without it the parse depends on the text alone.

``parse(view, text, labels=None, *, sentence=None)``: ``sentence`` is an addition to the contract in
docs/architecture.md (keyword-only, optional), used by :mod:`iuie.ie.metrics` in strict mode.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from iuie.ie import views
from iuie.ie.alignment import exact_occurrences, fallback_occurrences
from iuie.ie.records import Labels

NONE_TEXT = "none"
SINGLE_QUOTE_SUBSTITUTE = "#$%#"
# Above this many separators the segmentation is not searched (the search is quadratic in them).
MAX_SEGMENTATION_POINTS = 64


@dataclasses.dataclass(frozen=True)
class Parsed:
    """What :func:`parse` read. ``items`` per view are listed in the module docstring."""

    view: str
    text: str
    items: tuple[tuple[Any, ...], ...] = ()
    malformed: int = 0


# --------------------------------------------------------------------------------------------------------
# Options (labels) as regular expressions
# --------------------------------------------------------------------------------------------------------


def _label_key(label: str) -> str:
    return " ".join(label.split()).casefold()


def _alternation(labels: Sequence[str]) -> str:
    """A regex alternative per label, longest first, whitespace runs matching any whitespace."""
    parts = []
    for label in sorted(labels, key=len, reverse=True):
        tokens = label.split()
        if tokens:
            parts.append(r"\s+".join(re.escape(t) for t in tokens))
    return "|".join(parts)


@dataclasses.dataclass(frozen=True)
class _Options:
    types: tuple[str, ...]
    roles: tuple[str, ...]

    @functools.cached_property
    def _canonical(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for label in self.types + self.roles:
            out.setdefault(_label_key(label), label)
        return out

    def canonical(self, matched: str) -> str:
        exact = " ".join(matched.split())
        if exact in self.types or exact in self.roles:
            return exact
        return self._canonical.get(_label_key(matched), exact)

    @functools.cached_property
    def type_head(self) -> re.Pattern | None:
        """An option followed by ``:`` at the start of an item."""
        alt = _alternation(self.types)
        return re.compile(rf"\s*({alt})\s*:", re.IGNORECASE) if alt else None

    @functools.cached_property
    def item_type_heads(self) -> re.Pattern | None:
        """Type heads at item starts (after ``;``), to keep a ``;`` inside an option from splitting it."""
        if not any(";" in t for t in self.types):
            return None
        alt = _alternation(self.types)
        return re.compile(rf"(?:^|(?<=;))\s*(?:{alt})\s*:", re.IGNORECASE)

    @functools.cached_property
    def role_tail(self) -> re.Pattern | None:
        """``: role`` ending an argument."""
        alt = _alternation(self.roles)
        return re.compile(rf":\s*({alt})\s*$", re.IGNORECASE) if alt else None

    @functools.cached_property
    def item_role_tails(self) -> re.Pattern | None:
        if not any(";" in r for r in self.roles):
            return None
        alt = _alternation(self.roles)
        return re.compile(rf":\s*(?:{alt})\s*(?=;|$)", re.IGNORECASE)

    @functools.cached_property
    def role_marker(self) -> re.Pattern:
        """``: role`` closing an EE argument: followed by ``,`` or the end of the event."""
        alt = _alternation(self.roles)
        if alt:
            return re.compile(rf":\s*({alt})\s*(?=,|$)", re.IGNORECASE)
        return _ANY_ROLE_MARKER


_ANY_ROLE_MARKER = re.compile(r":\s*([^:,()]+?)\s*(?=,|$)")
_ANY_EVENT_HEAD = re.compile(r"\s*[^(),:]+:")
_EVENT_BOUNDARY = re.compile(r"\)\s*,?\s*\(")
_TRAILING_NONE = re.compile(r",\s*none\s*$", re.IGNORECASE)
_NO_OPTIONS = _Options((), ())


@functools.lru_cache(maxsize=256)
def _options(types: tuple[str, ...], roles: tuple[str, ...]) -> _Options:
    return _Options(types, roles)


def _str_tuple(values: Any) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        return ()
    return tuple(v.strip() for v in values if isinstance(v, str) and v.strip())


def _read_labels(view: views.View, labels: Any) -> _Options:
    """The types and roles of ``labels`` in any accepted shape (see the module docstring); never raises."""
    if labels is None or view.options is None:  # untyped views: options play no part
        return _NO_OPTIONS
    try:
        if isinstance(labels, Labels):
            types, roles = _str_tuple(labels.types), _str_tuple(labels.all_roles)
        elif isinstance(labels, Mapping):
            types = _str_tuple(labels.keys())
            roles = tuple(dict.fromkeys(r for v in labels.values() for r in _str_tuple(v)))
        elif (
            isinstance(labels, Sequence)
            and not isinstance(labels, (str, bytes))
            and len(labels) == 2
            and all(isinstance(x, Sequence) and not isinstance(x, (str, bytes)) for x in labels)
        ):
            types, roles = _str_tuple(labels[0]), _str_tuple(labels[1])
        else:
            flat = _str_tuple(labels)
            types, roles = ((), flat) if view.options == "roles" else (flat, ())
    except Exception:  # a foreign object with a hostile interface: parse without options
        return _NO_OPTIONS
    if view.options == "roles":
        types = ()
    return _options(types, roles)


# --------------------------------------------------------------------------------------------------------
# Small readers
# --------------------------------------------------------------------------------------------------------


def to_text(value: Any) -> str:
    """Text from model output or a seqio feature: str, bytes, a numpy bytes scalar or 0-d array, or None.

    Never raises: what cannot be read as text becomes its ``str()`` (or the empty string)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8", errors="replace")
    if hasattr(value, "item") and callable(value.item):
        try:
            return to_text(value.item())
        except (TypeError, ValueError):
            pass
    try:
        return str(value)
    except Exception:
        return ""


def _is_none(piece: str) -> bool:
    return piece.strip().casefold() == NONE_TEXT


def _clean(text: str) -> str:
    return " ".join(text.split())


def _type_first(piece: str, opts: _Options) -> tuple[str, str] | None:
    """``type: rest`` -> (type, rest); rule 4."""
    if opts.type_head is not None:
        m = opts.type_head.match(piece)
        if m:
            return opts.canonical(m.group(1)), piece[m.end() :]
    i = piece.find(":")
    if i < 0:
        return None
    label = _clean(piece[:i])
    # A ";" before the first ":" means two pieces were glued (rule 3): not a type.
    return (label, piece[i + 1 :]) if label and ";" not in label else None


def _role_last(piece: str, opts: _Options) -> tuple[str, str] | None:
    """``argument: role`` -> (role, argument); rule 5."""
    if opts.role_tail is not None:
        m = opts.role_tail.search(piece)
        if m:
            argument = piece[: m.start()].strip()
            return (opts.canonical(m.group(1)), argument) if argument else None
    i = piece.rfind(":")
    if i < 0:
        return None
    role, argument = _clean(piece[i + 1 :]), piece[:i].strip()
    return (role, argument) if role and argument and ";" not in role else None


def _cost(sentence: str | None, mention: str) -> int:
    """How badly a mention fits the sentence: 0 verbatim, 1 only by the alignment fallback, 2 not at all."""
    if sentence is None:
        return 0
    if exact_occurrences(sentence, mention):
        return 0
    return 1 if fallback_occurrences(sentence, mention) else 2


def _split_pair(text: str, sentence: str | None) -> tuple[str, str] | None:
    """``first, second`` -> (first, second) at the best comma; rule 6."""
    if sentence is not None and text.count(",") > MAX_SEGMENTATION_POINTS:
        sentence = None  # runaway output: each candidate costs two alignments
    best, best_key = None, None
    for i, ch in enumerate(text):
        if ch != ",":
            continue
        first, second = text[:i].strip(), text[i + 1 :].strip()
        if not first or not second:
            continue
        key = (_cost(sentence, first) + _cost(sentence, second), 0 if not text[i - 1].isspace() else 1)
        if best_key is None or key < best_key:
            best, best_key = (first, second), key
            if key == (0, 0):
                break
    return best


def _segment(
    text: str, points: Sequence[int], canonical: Sequence[bool], segment_cost: Callable[[str], int]
) -> list[int]:
    """The split points to cut at: least total segment cost, then fewest deviations from the canonical cuts.

    A deviation is a canonical point left uncut or a non-canonical point cut. Dynamic programming over the
    points: quadratic, hence the caller's cap.
    """
    n = len(points)
    bounds = [-1] + list(points) + [len(text)]
    canonical_cuts = [p for p, ok in zip(points, canonical) if ok]
    cut_bounds = [-1] + canonical_cuts + [len(text)]
    if all(segment_cost(text[a + 1 : b]) == 0 for a, b in zip(cut_bounds, cut_bounds[1:])):
        return canonical_cuts  # cost (0, 0): nothing can beat it, and it is the usual case
    best: list[tuple[tuple[int, int], list[int]] | None] = [None] * (n + 2)
    best[0] = ((0, 0), [])
    for j in range(1, n + 2):
        for i in range(j):
            if best[i] is None:
                continue
            segment = text[bounds[i] + 1 : bounds[j]]
            inside = sum(canonical[i : j - 1])
            deviations = inside + (1 if j <= n and not canonical[j - 1] else 0)
            # A segment that does not read or fit costs as much as the canonical pieces it spans: gluing
            # junk together must not look cheaper than leaving it apart.
            cost = segment_cost(segment)
            if cost >= 2:
                cost *= 1 + inside
            (c0, d0), cuts = best[i]
            cost = (c0 + cost, d0 + deviations)
            if best[j] is None or cost < best[j][0]:
                best[j] = (cost, cuts + ([bounds[j]] if j <= n else []))
    return best[n + 1][1]


# --------------------------------------------------------------------------------------------------------
# Views with items separated by ";"
# --------------------------------------------------------------------------------------------------------

# An item reader returns (item, mentions) or None when the piece cannot be read.
ItemReader = Callable[[str, _Options, "str | None"], "tuple[tuple, tuple[str, ...]] | None"]


def _read_typed_mention(piece: str, opts: _Options, sentence: str | None):
    head = _type_first(piece, opts)
    if head is None:
        return None
    mention = head[1].strip()
    return ((head[0], mention), (mention,)) if mention else None


def _read_relation(piece: str, opts: _Options, sentence: str | None):
    head = _type_first(piece, opts)
    if head is None:
        return None
    pair = _split_pair(head[1], sentence)
    return ((head[0],) + pair, pair) if pair else None


def _read_pair(piece: str, opts: _Options, sentence: str | None):
    pair = _split_pair(piece, sentence)
    return (pair, pair) if pair else None


def _read_argument(piece: str, opts: _Options, sentence: str | None):
    read = _role_last(piece, opts)
    return (read, (read[1],)) if read else None


def _protected(text: str, pattern: re.Pattern | None) -> list[tuple[int, int]]:
    return [m.span() for m in pattern.finditer(text)] if pattern is not None else []


def _parse_items(
    text: str, opts: _Options, sentence: str | None, read: ItemReader, protect: re.Pattern | None = None
) -> tuple[list[tuple], int]:
    """Rules 2-3: split at ``;`` (outside options holding one), read each piece."""
    protected = _protected(text, protect)
    points = [i for i, ch in enumerate(text) if ch == ";" and not any(a <= i < b for a, b in protected)]
    if sentence is not None and 0 < len(points) <= MAX_SEGMENTATION_POINTS:

        def segment_cost(segment: str) -> int:
            if not segment.strip():
                return 1
            if _is_none(segment):
                return 0
            got = read(segment, opts, sentence)
            if got is None:
                return 2
            # With options, a type or role outside them is a worse reading than one inside.
            unknown = bool(opts.types or opts.roles) and got[0][0] not in opts.types + opts.roles
            return unknown + sum(_cost(sentence, m) for m in got[1])

        points = _segment(text, points, [True] * len(points), segment_cost)
    items: list[tuple] = []
    malformed = 0
    bounds = [-1] + list(points) + [len(text)]
    for a, b in zip(bounds, bounds[1:]):
        piece = text[a + 1 : b]
        if not piece.strip() or _is_none(piece):
            continue
        got = read(piece, opts, sentence)
        if got is None:
            malformed += 1
        else:
            items.append(got[0])
    return items, malformed


# --------------------------------------------------------------------------------------------------------
# ES: mentions separated by ","
# --------------------------------------------------------------------------------------------------------


def _parse_spans(text: str, sentence: str | None) -> tuple[list[tuple], int]:
    """Rule 7."""
    commas = [i for i, ch in enumerate(text) if ch == ","]
    canonical = [i > 0 and not text[i - 1].isspace() for i in commas]
    if sentence is None or len(commas) > MAX_SEGMENTATION_POINTS:
        cuts = [c for c, ok in zip(commas, canonical) if ok]
    else:

        def segment_cost(segment: str) -> int:
            if not segment.strip():
                return 1
            return 0 if _is_none(segment) else _cost(sentence, segment)

        cuts = _segment(text, commas, canonical, segment_cost)
    bounds = [-1] + cuts + [len(text)]
    items = []
    for a, b in zip(bounds, bounds[1:]):
        mention = text[a + 1 : b].strip()
        if mention and not _is_none(mention):
            items.append((mention,))
    return items, 0


# --------------------------------------------------------------------------------------------------------
# EE: parenthesised events
# --------------------------------------------------------------------------------------------------------


def _parse_events(text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    """Rule 8."""
    s = text.strip()
    head = opts.type_head or _ANY_EVENT_HEAD

    def starts_event(pos: int) -> bool:
        # ... or a next event cut short before its type was complete ("... , ( di").
        return head.match(s, pos) is not None or not any(c in s[pos:] for c in ":)")

    cuts = [m for m in _EVENT_BOUNDARY.finditer(s) if starts_event(m.end())]
    bounds = [0] + [p for m in cuts for p in m.span()] + [len(s)]
    items: list[tuple] = []
    malformed = 0
    for k in range(0, len(bounds), 2):
        chunk = s[bounds[k] : bounds[k + 1]]
        if k == 0:
            chunk = chunk.lstrip()
            if chunk.startswith("("):
                chunk = chunk[1:]
        if k + 2 == len(bounds):
            chunk = chunk.rstrip(" \t\r\n,")
            if not chunk.endswith(")"):
                if chunk.strip() and not _is_none(chunk):
                    malformed += 1  # cut short: no closing parenthesis
                continue
            chunk = chunk[:-1]
        if not chunk.strip():
            continue
        event, bad = _read_event(chunk, opts, sentence)
        malformed += bad
        if event is not None:
            items.append(event)
    return items, malformed


def _read_event(chunk: str, opts: _Options, sentence: str | None) -> tuple[tuple | None, int]:
    head = _type_first(chunk, opts)
    if head is None:
        return None, 1
    event_type, rest = head
    markers = list(opts.role_marker.finditer(rest))
    if not markers:
        trigger = _TRAILING_NONE.sub("", rest).strip()
        return ((event_type, trigger, ()), 0) if trigger else (None, 1)
    first = _split_pair(rest[: markers[0].start()], sentence)
    if first is None:
        return None, 1
    trigger, name = first
    malformed = 0
    arguments = [(opts.canonical(markers[0].group(1)), name)]
    for previous, marker in zip(markers, markers[1:]):
        name = rest[previous.end() : marker.start()].strip().lstrip(",").strip()
        if name:
            arguments.append((opts.canonical(marker.group(1)), name))
        else:
            malformed += 1
    leftover = rest[markers[-1].end() :].strip().lstrip(",").strip()
    if leftover and not _is_none(leftover):
        malformed += 1
    return (event_type, trigger, tuple(arguments)), malformed


# --------------------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------------------


def parse(view: str, text: Any, labels: Any = None, *, sentence: str | None = None) -> Parsed:
    """Reads model output ``text`` for ``view`` (rules in the module docstring).

    Never raises for any ``text``, ``labels`` or ``sentence``; an unknown ``view`` name is a programming error
    and raises ValueError.
    """
    entry = views.get(view)  # UnknownViewError (a ValueError) for an unknown name
    name = entry.name
    raw = to_text(text)
    if not isinstance(sentence, str):
        sentence = None
    try:
        items, malformed = _parse(entry, raw, _read_labels(entry, labels), sentence)
    except Exception as e:  # pragma: no cover - the fuzz tests find none; a bug here must not stop an eval
        warnings.warn(
            f"iuie.ie.parsing: {type(e).__name__}: {e} while parsing {view} output {raw[:200]!r}; "
            "read as one malformed piece",
            RuntimeWarning,
            stacklevel=2,
        )
        items, malformed = [], 1
    return Parsed(name, raw, tuple(items), malformed)


def _parse(view: views.View, text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    if view.quote_substitute:
        text = text.replace(SINGLE_QUOTE_SUBSTITUTE, "'")
    if not text.strip() or _is_none(text):
        return [], 0
    return view.function("parser")(text, opts, sentence)


# The view parsers named in iuie.ie.views.TABLE: ``(text, options, sentence) -> (items, malformed)``.


def parse_typed_mentions(text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    """NER, ET, EET: ``type: mention`` items (rules 3-4)."""
    return _parse_items(text, opts, sentence, _read_typed_mention, opts.item_type_heads)


def parse_relations(text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    """RE, EPR: ``relation: head, tail`` items (rules 3, 4, 6)."""
    return _parse_items(text, opts, sentence, _read_relation, opts.item_type_heads)


def parse_pairs(text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    """EP: ``head, tail`` items (rules 3, 6)."""
    return _parse_items(text, opts, sentence, _read_pair)


def parse_arguments(text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    """EEA: ``argument: role`` items (rules 3, 5)."""
    return _parse_items(text, opts, sentence, _read_argument, opts.item_role_tails)


def parse_spans(text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    """ES: mentions separated by ``,`` (rule 7)."""
    return _parse_spans(text, sentence)


def parse_events(text: str, opts: _Options, sentence: str | None) -> tuple[list[tuple], int]:
    """EE: parenthesised events (rule 8)."""
    return _parse_events(text, opts, sentence)

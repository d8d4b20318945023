"""Constrained decoding: at each step only tokens that keep the output on the view's grammar are allowed.

InstructUIE decodes freely (the paper's setting, and iuie's default). With constraints on, the decoded text
can only be a sentence of the task view's answer grammar, with the label names taken from the example's
options and every mention a non-empty substring of the example's input sentence that does not start with
white space (a blank mention would read as nothing) and, by default, neither starts nor ends inside a word
(see *Word boundaries* below):

====  ==========================================================================================
view  grammar (``M`` = a substring of the sentence, ``L`` / ``R`` / ``T`` / ``A`` = an option)
====  ==========================================================================================
NER   ``" None"`` or ``" " L ": " M ("; " L ": " M)*``
RE    ``" None"`` or ``" " R ": " M ", " M ("; " R ": " M ", " M)*``
EE    ``" None"`` or ``E ("," E)*`` with ``E = " ( " T ": " M ", " ("None" | " " M ": " A ("," " " M ": " A)*) ") "``
====  ==========================================================================================

(exactly the target strings of :mod:`iuie.ie.formats`). EE roles: with options ``{type: roles}`` (or an
:class:`iuie.ie.records.Labels` with a per-type role map) only the roles of the event type chosen for the
event may follow its trigger; with ``[types, roles]`` (no map) any role of the options.

**Word boundaries** (``word_boundaries=True``, the default). A mention may start and end only where the
sentence has a word boundary: at its ends, or between two characters that are not both word characters
(letters or digits of a script written with spaces; every CJK character, East Asian width W or F, is a word
of its own). Without this rule a model may stop a mention after any piece (``Quanta P`` for ``Quanta
Phone``, ``S`` for the first letter of ``Since``), and it did: in the demo model's constrained answers on
unseen names, most of the remaining errors were such cut words. On the real shared data 49 of 171,643 gold
mentions (0.03%; CASIE's ``encrypted file`` inside ``encrypted files``, semeval-RE's ``moles`` inside
``dovesmoles``) start or end inside a word, which this rule cannot generate; ``word_boundaries=False`` allows
any substring.

**The grammar is checked on characters, not on tokens.** A token is allowed when the text decoded so far,
followed by the token's text, is still a prefix of some sentence of the grammar. So the rule does not depend
on how the vocabulary would tokenise a mention: SentencePiece writes ``"Anna"`` as ``▁A nna`` after a space
and differently at the start of a text, and both spellings (and any other) are accepted as long as the
characters match the sentence. The decoded text is the concatenation of the pieces' texts (``▁`` read as a
space) less one leading space that SentencePiece's decoder strips (the dummy prefix), so up to two leading
spaces are tolerated before the answer. Byte-fallback pieces count as their character for printable ASCII;
other byte pieces, ``<unk>``, padding and sentinel ids are never allowed (a sentence character that the
vocabulary can only spell with non-ASCII bytes cannot appear in a constrained mention). End of sequence is
allowed only where the text is a complete answer.

**How it runs.** Per example, the grammar is a small nondeterministic automaton over characters: its states
are (node, progress), where a mention node's progress is the set of sentence positions the mention typed so
far can end at. For a set of states, the allowed tokens are found by walking a character trie of the whole
vocabulary and pruning every branch the automaton rejects, so the cost is proportional to the live branches,
not to the vocabulary size; masks are memoised per state set. This runs on the host: the ``logits_mask_fn``
given to :meth:`iuie.model.models.EncoderDecoderModel.predict_batch` calls it through :func:`jax.pure_callback`
with the step's prefixes and each row's example key, so the decode function is jit-compiled once and the
examples of each batch are registered (:meth:`Constrainer.register`) before it runs. This host version is
the reference (``Extractor(constrained="host")``); ``constrained=True`` compiles the same automaton into
per-example move tables (:mod:`iuie.extraction.compiled`, one state per sentence position per mention node)
that :mod:`iuie.model.grammar_mask` steps inside the decode loop, with no host call per step and masks equal
to these (tested). ``bench/constrained_decoding.py`` measures both against free decoding.
"""

from __future__ import annotations

import dataclasses
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from iuie.ie import views

# Grammar kinds; iuie.ie.views.TABLE names the kind of each view that has one (its ``grammar`` field).
VIEWS = tuple(dict.fromkeys(v.grammar for v in views.TABLE if v.grammar))
# Node kinds of the answer grammar.
_LIT, _CHOICE, _MENTION, _END = "lit", "choice", "mention", "end"
_MAX_SHARED = 20000


@dataclasses.dataclass
class _Node:
    kind: str
    text: str = ""  # _LIT
    options: tuple[str, ...] = ()  # _CHOICE
    nexts: tuple[int, ...] = ()


class Grammar:
    """The answer grammar of one example as a character automaton.

    States are hashable tuples: ``(node, offset)`` inside a literal, ``(node, typed)`` inside a choice of
    options, ``(node, positions)`` inside a mention (``positions``: frozenset of sentence indices where the
    mention typed so far ends; ``None`` before its first character), and ``(END,)``.
    """

    def __init__(
        self,
        view: str,
        sentence: str,
        labels: Sequence[str],
        roles: Sequence[str] | Mapping[str, Sequence[str]] = (),
        *,
        word_boundaries: bool = True,
    ):
        if view not in VIEWS:
            raise ValueError(f"constrained decoding supports the views {VIEWS}, not {view!r}")
        self.view = view
        self.sentence = sentence
        # Sentence positions (0 .. n) where a mention may start (before the character there) and end.
        self.boundaries = boundary_positions(sentence, word_boundaries)
        self.nodes: list[_Node] = []
        self._char_positions: dict[str, frozenset[int]] = {}
        for i, ch in enumerate(sentence):
            if i in self.boundaries:  # a mention's first character: only at a word start
                self._char_positions.setdefault(ch, set()).add(i + 1)  # type: ignore[attr-defined]
        self._char_positions = {c: frozenset(p) for c, p in self._char_positions.items()}
        labels = tuple(dict.fromkeys(label for label in labels if label))
        if isinstance(roles, Mapping):
            # EE roles narrowed per event type: after "( T: trigger, " only T's own roles may follow.
            per_type = {t: tuple(dict.fromkeys(r for r in roles.get(t, ()) if r)) for t in labels}
            roles = tuple(sorted(per_type.items()))
        else:
            roles = tuple(dict.fromkeys(role for role in roles if role))
        # Equal for grammars of equal structure: their node ids, hence their non-mention states, coincide.
        self.signature = (view, labels, roles)
        starts = self._build(view, labels, roles)
        self.initial = self._closure([self._enter(n) for n in starts])
        self._steps: dict[tuple[frozenset, str], frozenset] = {}

    # -- construction ---------------------------------------------------------------------------------

    def _add(self, kind: str, text: str = "", options: tuple[str, ...] = ()) -> int:
        self.nodes.append(_Node(kind, text, options))
        return len(self.nodes) - 1

    def _link(self, node: int, *nexts: int) -> None:
        self.nodes[node].nexts = tuple(nexts)

    def _build(self, view: str, labels: tuple[str, ...], roles: tuple[str, ...]) -> list[int]:
        lit, choice, mention = (
            (lambda t: self._add(_LIT, t)),
            (lambda o: self._add(_CHOICE, options=o)),
            (lambda: self._add(_MENTION)),
        )
        end = self._add(_END)
        self.end = end
        # Up to two leading spaces: the target's own space and SentencePiece's dummy prefix.
        space1, space2 = lit(" "), lit(" ")
        none = lit("None")
        self._link(none, end)
        if view in ("NER", "RE"):
            label = choice(labels)
            colon = lit(": ")
            self._link(label, colon)
            semi = lit("; ")
            if view == "NER":
                m = mention()
                self._link(colon, m)
                self._link(m, semi, end)
            else:
                head, comma, tail = mention(), lit(", "), mention()
                self._link(colon, head)
                self._link(head, comma)
                self._link(comma, tail)
                self._link(tail, semi, end)
            self._link(semi, label)
            body = [none, label]
        else:
            event = lit("( ")  # the item's own leading space is one of the optional leading spaces
            close, close_space, event_sep, event_space = lit(")"), lit(" "), lit(","), lit(" ")
            narrowed = bool(roles) and isinstance(roles[0], tuple)
            # One branch per event type when roles are narrowed (the state then remembers the type), else
            # one shared branch for every type and role.
            branches = [((t,), rs) for t, rs in roles] if narrowed else [(labels, roles)]
            etypes = []
            for types, type_roles in branches:
                etype, colon, trigger, comma = choice(types), lit(": "), mention(), lit(", ")
                no_args, arg_space, arg, arg_colon = lit("None"), lit(" "), mention(), lit(": ")
                role, arg_sep = choice(type_roles), lit(",")
                etypes.append(etype)
                self._link(etype, colon)
                self._link(colon, trigger)
                self._link(trigger, comma)
                self._link(comma, no_args, arg_space)
                self._link(no_args, close)
                self._link(arg_space, arg)
                self._link(arg, arg_colon)
                self._link(arg_colon, role)
                self._link(role, close, arg_sep)
                self._link(arg_sep, arg_space)
            self._link(event, *etypes)
            self._link(close, close_space, end)
            self._link(close_space, event_sep, end)
            self._link(event_sep, event_space)
            self._link(event_space, event)
            body = [none, event]
        self._link(space1, space2, *body)
        self._link(space2, *body)
        return [space1, *body]

    # -- automaton ------------------------------------------------------------------------------------

    def _enter(self, node: int) -> tuple:
        kind = self.nodes[node].kind
        if kind == _END:
            return (node,)
        if kind == _LIT:
            return (node, 0)
        if kind == _CHOICE:
            return (node, "")
        return (node, None)

    def _done(self, state: tuple) -> bool:
        """Whether the state has finished its node (so the next nodes may start)."""
        node = self.nodes[state[0]]
        if node.kind == _LIT:
            return state[1] == len(node.text)
        if node.kind == _CHOICE:
            return state[1] in node.options
        if node.kind == _MENTION:
            return bool(state[1]) and not state[1].isdisjoint(self.boundaries)
        return False

    def _closure(self, states: Iterable[tuple]) -> frozenset:
        out: set[tuple] = set()
        todo = list(states)
        while todo:
            state = todo.pop()
            if state in out:
                continue
            out.add(state)
            if self._done(state):
                todo.extend(self._enter(n) for n in self.nodes[state[0]].nexts)
        return frozenset(out)

    def _advance(self, state: tuple, ch: str) -> tuple | None:
        node = self.nodes[state[0]]
        if node.kind == _LIT:
            k = state[1]
            return (state[0], k + 1) if k < len(node.text) and node.text[k] == ch else None
        if node.kind == _CHOICE:
            typed = state[1] + ch
            return (state[0], typed) if any(o.startswith(typed) for o in node.options) else None
        if node.kind == _MENTION:
            if state[1] is None:
                # A mention starts at a non-space character: a blank mention reads as nothing (malformed).
                positions = frozenset() if ch.isspace() else self._char_positions.get(ch, frozenset())
            else:
                positions = frozenset(p + 1 for p in state[1] if p < len(self.sentence) and self.sentence[p] == ch)
            return (state[0], positions) if positions else None
        return None

    def step(self, states: frozenset, ch: str) -> frozenset:
        """The states after one more character (empty: the character leaves the grammar)."""
        key = (states, ch)
        cached = self._steps.get(key)
        if cached is None:
            moved = [s for s in (self._advance(state, ch) for state in states) if s is not None]
            cached = self._closure(moved) if moved else frozenset()
            self._steps[key] = cached
        return cached

    def run(self, text: str, states: frozenset | None = None) -> frozenset:
        states = self.initial if states is None else states
        for ch in text:
            if not states:
                break
            states = self.step(states, ch)
        return states

    def depends_on_sentence(self, states: frozenset) -> bool:
        """Whether the allowed continuations of ``states`` depend on the sentence (a mention is open)."""
        return any(self.nodes[state[0]].kind == _MENTION for state in states)

    def accepts(self, states: frozenset) -> bool:
        return any(state[0] == self.end for state in states)


def is_word_character(ch: str) -> bool:
    """A letter or digit of a script written with spaces between words (CJK characters are words alone)."""
    return ch.isalnum() and unicodedata.east_asian_width(ch) not in ("W", "F")


def boundary_positions(sentence: str, word_boundaries: bool = True) -> frozenset[int]:
    """Positions ``0 .. len(sentence)`` between characters where a mention may start or end: every one
    without ``word_boundaries``, else those not between two word characters (module docstring)."""
    n = len(sentence)
    if not word_boundaries:
        return frozenset(range(n + 1))
    inside = [is_word_character(ch) for ch in sentence]
    return frozenset(i for i in range(n + 1) if i in (0, n) or not (inside[i - 1] and inside[i]))


class _Trie:
    """A character trie of the vocabulary's piece texts: node = (children dict, token ids ending here)."""

    def __init__(self, texts: Mapping[int, str]):
        self.root: tuple[dict, list] = ({}, [])
        for token, text in texts.items():
            node = self.root
            for ch in text:
                node = node[0].setdefault(ch, ({}, []))
            node[1].append(token)


def piece_texts(vocabulary: Any) -> dict[int, str]:
    """Token id -> the text it adds to a decoded string, for every id constrained decoding may choose.

    ``▁`` is a space; printable-ASCII byte pieces are their character; control, unknown, other byte pieces
    and ids past the SentencePiece model (T5's sentinels) are left out.
    """
    sp = vocabulary.tokenizer
    texts = {}
    for token in range(sp.get_piece_size()):
        if sp.is_control(token) or sp.is_unknown(token) or sp.is_unused(token):
            continue
        piece = sp.id_to_piece(token)
        if sp.is_byte(token):
            value = int(piece[3:-1], 16)
            if 0x20 <= value < 0x7F:
                texts[token] = chr(value)
            continue
        text = piece.replace("\u2581", " ")
        if text:
            texts[token] = text
    return texts


class Constrainer:
    """Builds the ``logits_mask_fn`` of constrained decoding for one vocabulary and one model output size.

    Use: ``fn = constrainer.logits_mask_fn(keys)`` inside the jitted decode (``keys``: int32 ``[batch]``, one
    per example, traced), and ``constrainer.register({key: Grammar, ...})`` before each call of the jitted
    function, so the host side knows each row's grammar.
    """

    def __init__(self, vocabulary: Any, logits_size: int, eos_id: int = 1):
        self.texts = piece_texts(vocabulary)
        self.logits_size = int(logits_size)
        self.eos_id = int(eos_id)
        self._trie = _Trie({t: s for t, s in self.texts.items() if t < self.logits_size})
        self._grammars: dict[int, Grammar] = {}
        self._masks: dict[tuple[int, frozenset], np.ndarray] = {}
        # Sentence-independent masks, kept across batches (bounded: cleared past _MAX_SHARED entries).
        self._shared_masks: dict[tuple[tuple, frozenset], np.ndarray] = {}
        self._states: dict[tuple[int, tuple[int, ...]], frozenset] = {}

    def register(self, grammars: Mapping[int, Grammar]) -> None:
        """Set the grammars of the next batch (keys as passed to the jitted function); clears the caches."""
        self._grammars = dict(grammars)
        self._masks.clear()
        if len(self._shared_masks) > _MAX_SHARED:
            self._shared_masks.clear()
        self._states.clear()

    def states_after(self, key: int, tokens: Sequence[int]) -> frozenset:
        """The grammar states after ``tokens`` (memoised per prefix: each step extends the last one)."""
        tokens = tuple(tokens)
        cached = self._states.get((key, tokens))
        if cached is not None:
            return cached
        grammar = self._grammars[key]
        previous = self.states_after(key, tokens[:-1]) if tokens else None
        if previous is None:
            states = grammar.initial
        else:
            states = grammar.run(self.texts.get(tokens[-1], "\0"), previous) if previous else previous
        self._states[(key, tokens)] = states
        return states

    def allowed(self, key: int, tokens: Sequence[int]) -> np.ndarray:
        """Boolean ``[logits_size]``: the tokens that may follow ``tokens`` for example ``key``."""
        states = self.states_after(key, tokens)
        grammar = self._grammars[key]
        # Masks whose walk never enters a mention (inside labels and separators) do not depend on the
        # sentence: they are shared by every example with the same options. Whether a walk enters a mention
        # depends only on the grammar's structure, so the shared cache is looked up first.
        shared_key = (grammar.signature, states)
        mask = self._shared_masks.get(shared_key)
        if mask is None:
            mask = self._masks.get((key, states))
        if mask is not None:
            return mask
        mask = np.zeros(self.logits_size, bool)
        uses_sentence = grammar.depends_on_sentence(states)
        stack = [(self._trie.root, states)]
        while stack:
            (children, _), here = stack.pop()
            for ch, child in children.items():
                after = grammar.step(here, ch)
                if not after:
                    continue
                uses_sentence = uses_sentence or grammar.depends_on_sentence(after)
                if child[1]:
                    mask[child[1]] = True
                if child[0]:
                    stack.append((child, after))
        if grammar.accepts(states) or not mask.any():
            # Stopping is allowed at a complete answer, and forced where nothing else could follow (a dead
            # end, e.g. an empty option list), so the decode never runs on masked-out garbage.
            mask[self.eos_id] = True
        if uses_sentence:
            self._masks[(key, states)] = mask
        else:
            self._shared_masks[shared_key] = mask
        return mask

    def _host_masks(self, step: np.ndarray, sequences: np.ndarray, keys: np.ndarray) -> np.ndarray:
        step = int(step)
        sequences = np.asarray(sequences)
        keys = np.asarray(keys)
        rows = sequences.shape[0]
        per_example = max(rows // max(len(keys), 1), 1)
        out = np.ones((rows, self.logits_size), bool)
        for row in range(rows):
            key = int(keys[row // per_example])
            if key < 0 or key not in self._grammars:
                continue  # padding rows: unconstrained
            prefix = sequences[row, :step].tolist()
            if self.eos_id in prefix:
                continue  # finished: whatever follows is discarded
            out[row] = self.allowed(key, prefix)
        return out

    def logits_mask_fn(self, keys):
        """The ``(step, sequences, logits) -> logits`` hook for :mod:`iuie.model.decoding` (call inside jit)."""
        import jax
        import jax.numpy as jnp

        from iuie.model.decoding import NEG_INF

        def mask_fn(step, sequences, logits):
            shape = jax.ShapeDtypeStruct(logits.shape, jnp.bool_)
            allowed = jax.pure_callback(self._host_masks, shape, step, sequences, keys)
            return jnp.where(allowed, logits, jnp.asarray(NEG_INF, logits.dtype))

        return mask_fn


def grammar_for(view: str, sentence: str, labels: Any, *, word_boundaries: bool = True) -> Grammar:
    """The grammar of a view from its options: a list of names (NER, RE), ``[types, roles]`` or
    ``{type: roles}`` (EE), or an :class:`iuie.ie.records.Labels`. The view's grammar kind is read from
    :data:`iuie.ie.views.TABLE`; ValueError for a view without one. ``word_boundaries``: see
    :class:`Grammar` (module docstring)."""
    kind = views.get(view).grammar
    if kind is None:
        raise ValueError(f"constrained decoding supports the views {VIEWS}, not {view!r}")
    words = {"word_boundaries": word_boundaries}
    types = getattr(labels, "types", None)
    if types is not None:
        per_type = getattr(labels, "roles", None)
        if kind == "EE" and per_type:
            return Grammar(kind, sentence, types, {t: labels.roles_for(t) for t in types}, **words)
        return Grammar(kind, sentence, types, getattr(labels, "all_roles", ()), **words)
    if kind == "EE":
        if isinstance(labels, Mapping):
            return Grammar(kind, sentence, list(labels), {str(t): list(rs) for t, rs in labels.items()}, **words)
        types, roles = labels
        return Grammar(kind, sentence, list(types), list(roles), **words)
    return Grammar(kind, sentence, list(labels), **words)

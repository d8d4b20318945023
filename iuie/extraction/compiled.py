"""The answer grammars of a batch compiled into integer tables for :mod:`iuie.model.grammar_mask`.

The host grammar (:class:`iuie.extraction.constrained.Grammar`) is a nondeterministic character automaton and
its masks are unions over its states, so it splits into *single* states, each with its own token moves:

* structure states (inside a literal or an option name, the end state, and "a mention is about to start"):
  they do not depend on the sentence, so their moves are found once per grammar signature (view and
  options) by walking the vocabulary's character trie, and kept across batches;
* mention states ``(mention node, p)``: the mention typed so far ends at sentence position ``p`` (one state per
  position; the host's set of positions is the union of these).

A token move is a triple ``(source state, token, destination state)``; a token with several destinations (the
host's set of states) is several triples. Moves of mention states come from a table of the sentence's
substrings (start positions of every substring up to the longest piece), so a mention may be spelled by any
pieces whose characters match the sentence, exactly as on the host. A token that crosses from structure
into a mention (``" Anna"`` after ``":"``: the space ends the separator, ``Anna`` starts the mention) or out of
one (a mention's last letters then a separator) is split at the crossing and each side looked up in its own
table. Destinations are closed like the host's state sets: a finished mention also activates the states
that may follow it.

On the device, the state of a row is a boolean vector over its single states (:mod:`iuie.model.grammar_mask`);
a token is allowed when some active state has a move on it, and the next vector is the set of destinations of
the chosen token's moves from active states: the same set the host computes, so the masks are equal step by
step (tested against :class:`iuie.extraction.constrained.Constrainer`).

Two choices keep the moves few: a finished mention does not repeat what may follow it in every move (the
``after`` pairs activate it from the mention state), and a mention about to start has no states of its own
(the moves of mention state ``(k, p)`` also apply while ``k``'s fresh state is active and no space is at ``p``).

Table layout of one row (``n`` = sentence length, ``K`` = mention nodes): indices ``0 .. S-1`` are the
structure states of the signature, ``S + k * (n + 1) + p`` the mention states; one more index, never active,
absorbs the padding moves. Shapes are padded up to powers of two, never below the largest padded before,
so that few decode shapes compile.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from iuie.extraction.constrained import _MENTION, Constrainer, Grammar


def _pad_size(n: int, minimum: int = 16) -> int:
    size = minimum
    while size < n:
        size *= 2
    return size


class _Skeleton:
    """The sentence-independent part of the grammars of one signature: structure states and their moves."""

    def __init__(self, grammar: Grammar, texts: dict[int, str], trie: Any):
        # The same options over an empty sentence: node ids coincide with every grammar of the signature
        # and no mention can consume a character, so walks over it see the structure only.
        self.grammar = g = Grammar(grammar.view, "", *_options_of(grammar))
        self.texts = texts
        self.trie = trie
        self.mentions = [i for i, node in enumerate(g.nodes) if node.kind == _MENTION]
        self.mention_slot = {node: slot for slot, node in enumerate(self.mentions)}
        self.index: dict[tuple, int] = {}
        self.states: list[tuple] = []
        # Structure states a finished mention activates (the host's closure), per mention node.
        self.after = {k: g._closure([g._enter(n) for n in g.nodes[k].nexts]) for k in self.mentions}
        for state in g.initial:
            self.state_id(state)
        for k in self.mentions:
            self.state_id((k, None))
            for state in self.after[k]:
                self.state_id(state)
        self.end_id = self.state_id((g.end,))
        self._moves: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int, int]]]] = {}
        self._runs: dict[tuple[frozenset, str], tuple[frozenset, tuple[tuple[int, int], ...]]] = {}
        self._splits: dict[tuple[int, str], tuple[int, ...]] = {}
        self._subtree: dict[int, list[int]] = {}
        self._token_splits: dict[int, list[tuple[int, int]]] = {}
        self._crossings: tuple[int, dict] = (-1, {})
        self._static: tuple[int, np.ndarray] | None = None

    def state_id(self, state: tuple) -> int:
        sid = self.index.get(state)
        if sid is None:
            sid = self.index[state] = len(self.states)
            self.states.append(state)
        return sid

    def _fresh(self, states: frozenset) -> list[int]:
        return [s[0] for s in states if s[0] in self.mention_slot and s[1] is None]

    def _tokens_below(self, node: Any) -> list[int]:
        key = id(node)
        out = self._subtree.get(key)
        if out is None:
            out = []
            stack = [node]
            while stack:
                children, tokens = stack.pop()
                out.extend(tokens)
                stack.extend(children.values())
            self._subtree[key] = out
        return out

    def moves(self, sid: int) -> tuple[list[tuple[int, int]], list[tuple[int, int, int]]]:
        """``(structure moves [(token, destination id)], crossings [(token, chars, mention node)])`` of one
        structure state: a crossing means that after the token's first ``chars`` characters a mention starts
        and consumes the rest of the token."""
        cached = self._moves.get(sid)
        if cached is not None:
            return cached
        g = self.grammar
        state = self.states[sid]
        moves: list[tuple[int, int]] = []
        crossings: list[tuple[int, int, int]] = []
        if state[0] not in self.mention_slot:  # a fresh mention's moves depend on the sentence
            stack = [(self.trie.root, frozenset([state]), 0)]
            while stack:
                (children, _), here, depth = stack.pop()
                for ch, child in children.items():
                    after = g.step(here, ch)
                    if not after:
                        continue
                    for token in child[1]:
                        moves.extend((token, self.state_id(s)) for s in after)
                    if child[0]:
                        for k in self._fresh(after):
                            ending_here = set(child[1])
                            crossings.extend(
                                (t, depth + 1, k) for t in self._tokens_below(child) if t not in ending_here
                            )
                        stack.append((child, after, depth + 1))
        self._moves[sid] = (moves, crossings)
        return self._moves[sid]

    def run(self, states: frozenset, text: str) -> tuple[frozenset, tuple[tuple[int, int], ...]]:
        """Structure states after ``text`` from ``states`` and the crossings ``(chars, mention node)`` on the way."""
        key = (states, text)
        cached = self._runs.get(key)
        if cached is None:
            crossings = [(0, k) for k in self._fresh(states)] if text else []
            here = states
            for i, ch in enumerate(text):
                here = self.grammar.step(here, ch)
                if not here:
                    break
                if i + 1 < len(text):
                    crossings.extend((i + 1, k) for k in self._fresh(here))
            cached = self._runs[key] = (here if here else frozenset(), tuple(crossings))
        return cached

    def splits(self, k: int, text: str) -> tuple[int, ...]:
        """Where a mention of node ``k`` may end inside ``text`` (``1 <= j < len``) with the structure after the
        mention consuming the rest: the splits to check against the sentence."""
        key = (k, text)
        cached = self._splits.get(key)
        if cached is None:
            out = []
            for j in range(1, len(text)):
                dest, crossings = self.run(self.after[k], text[j:])
                if dest or crossings:
                    out.append(j)
            cached = self._splits[key] = tuple(out)
        return cached

    def crossings(self, known: int) -> dict[tuple[int, str], list[tuple[int, int]]]:
        """The crossings of the first ``known`` structure states (their moves computed, which may add
        states), grouped by ``(mention node, rest of the token)``: ``[(structure id, token), ...]``."""
        if self._crossings[0] != known:
            groups: dict[tuple[int, str], list[tuple[int, int]]] = {}
            for sid in range(known):
                for t, chars, k in self.moves(sid)[1]:
                    groups.setdefault((k, self.texts[t][chars:]), []).append((sid, t))
            self._crossings = (known, groups)
        return self._crossings[1]

    def token_splits(self, k: int) -> list[tuple[int, int]]:
        """``(token, j)`` for every token some mention of node ``k`` may end inside (see :meth:`splits`)."""
        cached = self._token_splits.get(k)
        if cached is None:
            cached = self._token_splits[k] = [(t, j) for t, text in self.texts.items() for j in self.splits(k, text)]
        return cached

    def static_moves(self) -> np.ndarray:
        """All structure-to-structure moves of the states known so far, ``[moves, 3]`` (src, token, dst),
        after closing the state set under them."""
        done = 0
        while done < len(self.states):  # moves() may add states; close the set
            self.moves(done)
            done += 1
        if self._static is None or self._static[0] != len(self.states):
            rows = [(sid, t, d) for sid in range(len(self.states)) for t, d in self._moves[sid][0]]
            self._static = (len(self.states), np.asarray(rows, np.int32).reshape(-1, 3))
        return self._static[1]


def _options_of(grammar: Grammar) -> tuple[Any, Any]:
    _, labels, roles = grammar.signature
    if roles and isinstance(roles[0], tuple):
        return labels, {t: rs for t, rs in roles}
    return labels, roles


@dataclasses.dataclass
class _Row:
    """The moves of one example, before padding."""

    moves: np.ndarray  # [m, 3] int32 (src, token, dst)
    initial: np.ndarray  # int32 ids of the initially active states
    end: int
    size: int  # number of states
    fresh_of: np.ndarray  # [size] int32: the fresh state of a mention state's node (-1: not a mention state)
    startable: np.ndarray  # [size] bool: a mention may start at this mention state's position
    after: np.ndarray  # [pairs, 2] int32: (mention state, state it activates once the mention is typed)


class _Example:
    """Builds the sentence-dependent moves of one grammar on top of its skeleton.

    Destinations are ints: a structure id (``>= 0``), or ``-(1 + slot * (n + 1) + p)`` for the mention state
    ``(mention node of that slot, p)``, made absolute once the number of structure states is final."""

    def __init__(
        self,
        skeleton: _Skeleton,
        sentence: str,
        by_text: dict[str, list[int]],
        longest: int,
        boundaries: frozenset[int],
    ):
        self.sk = skeleton
        self.s = sentence
        self.n = len(sentence)
        # Where a mention may start and end (the host grammar's ``boundaries``: word boundaries by default).
        self.bounds = boundaries
        self.by_text = by_text
        self.longest = longest
        self.positions: dict[str, list[int]] = {}
        for p in range(self.n):
            for end in range(p + 1, min(p + longest, self.n) + 1):
                self.positions.setdefault(sentence[p:end], []).append(p)
        self._fresh_cache: dict[tuple[int, str], list[int]] = {}
        self._after_ids = {k: [skeleton.state_id(st) for st in skeleton.after[k]] for k in skeleton.mentions}

    def mention_id(self, k: int, p: int) -> int:
        return -(1 + self.sk.mention_slot[k] * (self.n + 1) + p)

    def _starts(self, text: str) -> list[int]:
        if len(text) <= self.longest:
            return self.positions.get(text, [])
        out, start = [], self.s.find(text)
        while start >= 0:
            out.append(start)
            start = self.s.find(text, start + 1)
        return out

    def _struct(self, states: frozenset, text: str) -> list[int]:
        dest, crossings = self.sk.run(states, text)
        out = [self.sk.state_id(st) for st in dest]
        for chars, k in crossings:
            out.extend(self.fresh(k, text[chars:]))
        return out

    def _finished(self, k: int, end: int) -> list[int]:
        # What may follow a finished mention is activated on the device from the mention state itself
        # (the ``after`` pairs of the tables), not repeated in every move.
        return [self.mention_id(k, end)]

    def at(self, k: int, p: int, text: str) -> list[int]:
        """Destinations of mention ``k`` continuing at sentence position ``p`` with ``text``."""
        out = self._finished(k, p + len(text)) if self.s.startswith(text, p) else []
        for j in self.sk.splits(k, text):
            if p + j in self.bounds and self.s.startswith(text[:j], p):
                out.extend(self._struct(self.sk.after[k], text[j:]))
        return out

    def fresh(self, k: int, text: str) -> list[int]:
        """Destinations of a mention of node ``k`` starting with ``text`` (at a non-space character)."""
        key = (k, text)
        cached = self._fresh_cache.get(key)
        if cached is None:
            cached = []
            if text and not text[0].isspace():
                starts = set(self._starts(text))
                for j in self.sk.splits(k, text):
                    starts.update(self._starts(text[:j]))
                for p in sorted(starts & self.bounds):
                    cached.extend(self.at(k, p, text))
            self._fresh_cache[key] = cached
        return cached

    def build(self, initial: frozenset) -> _Row:
        sk = self.sk
        src: list[int] = []
        tok: list[int] = []
        dst: list[int] = []

        def emit(sources: list[int], tokens: list[int], dests: list[int]) -> None:
            for a in sources:
                for t in tokens:
                    src.extend([a] * len(dests))
                    tok.extend([t] * len(dests))
                    dst.extend(dests)

        # Moves of the mention state (k, p) serve two states of the host: the mention typed so far ends at p,
        # and (where the sentence has no space at p) a mention about to start at p, which the device derives
        # from the fresh state (``fresh_of`` / ``startable`` in the tables).
        for k in sk.mentions:
            # A mention continuing (or starting) with a whole token: the substrings of the sentence that
            # are pieces, at each position.
            for text, starts in self.positions.items():
                tokens = self.by_text.get(text)
                if not tokens:
                    continue
                for p in starts:
                    emit([self.mention_id(k, p)], tokens, self._finished(k, p + len(text)))
            # A token whose first characters end the mention and the rest is structure (rare: ``o;``).
            for t, j in sk.token_splits(k):
                head = sk.texts[t][:j]
                dests = self._struct(sk.after[k], sk.texts[t][j:])
                for p in self._starts(head) if dests else ():
                    if p + len(head) in self.bounds:
                        emit([self.mention_id(k, p)], [t], dests)
        # Tokens that cross from a structure state into a mention: the sentence decides where the rest goes.
        # Usually the rest must be a substring of the sentence, so only those are looked up.
        while True:
            known = len(sk.states)
            for (k, rest), pairs in sk.crossings(known).items():
                if rest not in self.positions and not sk.splits(k, rest) and len(rest) <= self.longest:
                    continue
                dests = self.fresh(k, rest)
                for sid, t in pairs if dests else ():
                    emit([sid], [t], dests)
            if len(sk.states) == known:  # the crossings' destinations may be new structure states
                break
        static = sk.static_moves()
        base = len(sk.states)
        dynamic = np.asarray([src, tok, dst], np.int32).T.reshape(-1, 3)
        for column in (0, 2):
            ids = dynamic[:, column]
            dynamic[:, column] = np.where(ids < 0, base - 1 - ids, ids)
        all_moves = np.concatenate([static, dynamic])
        initial_ids = np.asarray(sorted(sk.state_id(st) for st in initial), np.int32)
        size = base + len(sk.mentions) * (self.n + 1)
        fresh_of = np.full((size,), -1, np.int32)
        startable = np.zeros((size,), bool)
        after = []
        spaces = np.asarray([ch.isspace() for ch in self.s] + [True], bool)  # nothing starts at the end
        bounds = np.zeros((self.n + 1,), bool)
        bounds[sorted(self.bounds)] = True
        for slot, k in enumerate(sk.mentions):
            block = slice(base + slot * (self.n + 1), base + (slot + 1) * (self.n + 1))
            fresh_of[block] = sk.index[(k, None)]
            startable[block] = ~spaces & bounds
            # A typed mention ends at 1..n, where a mention may end.
            positions = np.arange(block.start + 1, block.stop)[bounds[1:]]
            for state in self._after_ids[k]:
                after.append(np.stack([positions, np.full_like(positions, state)], axis=1))
        after_pairs = np.concatenate(after).astype(np.int32) if after else np.zeros((0, 2), np.int32)
        return _Row(all_moves, initial_ids, sk.end_id, size, fresh_of, startable, after_pairs)


class Compiler:
    """Compiles grammars into the tables of :class:`iuie.model.grammar_mask.GrammarTables` (host numpy).

    Shares the vocabulary pieces and the character trie of a :class:`Constrainer` (the host version), so
    both allow the same tokens; structure moves are cached per grammar signature across batches.
    """

    def __init__(self, vocabulary: Any, logits_size: int, eos_id: int = 1):
        self.host = Constrainer(vocabulary, logits_size, eos_id)
        self.texts = {t: s for t, s in self.host.texts.items() if t < self.host.logits_size}
        self.by_text: dict[str, list[int]] = {}
        for token, text in self.texts.items():
            self.by_text.setdefault(text, []).append(token)
        self.longest = max((len(s) for s in self.texts.values()), default=1)
        self._skeletons: dict[tuple, _Skeleton] = {}
        self._high = (0, 0, 0)  # the largest (states, moves, after pairs) padded so far

    def skeleton(self, grammar: Grammar) -> _Skeleton:
        sk = self._skeletons.get(grammar.signature)
        if sk is None:
            sk = self._skeletons[grammar.signature] = _Skeleton(grammar, self.texts, self.host._trie)
        return sk

    def row(self, grammar: Grammar) -> _Row:
        sk = self.skeleton(grammar)
        return _Example(sk, grammar.sentence, self.by_text, self.longest, grammar.boundaries).build(grammar.initial)

    def tables(self, grammars: Sequence[Grammar | None], rows: int) -> dict[str, np.ndarray]:
        """Padded tables for a batch of ``rows`` rows; ``grammars[i]`` is row i's (None or missing: a padding
        row, decoded unconstrained).

        Returns numpy arrays: ``src``, ``token``, ``dst`` ``[rows, moves]`` int32; ``initial`` and ``startable``
        ``[rows, states]`` bool, ``fresh_of`` ``[rows, states]`` int32; ``after_src``, ``after_dst``
        ``[rows, pairs]`` int32; ``end`` ``[rows]`` int32, ``constrained`` ``[rows]`` bool.
        """
        built = [self.row(g) if g is not None else None for g in list(grammars)[:rows]]
        built += [None] * (rows - len(built))
        states = _pad_size(1 + max((r.size for r in built if r is not None), default=0))
        moves = _pad_size(max((len(r.moves) for r in built if r is not None), default=1))
        # Never smaller than before: the decode compiles once per table shape, so shapes only grow (at most
        # a few compilations per extractor instead of one whenever a batch crosses a power of two).
        pairs = _pad_size(max((len(r.after) for r in built if r is not None), default=1))
        states, moves, pairs = max(states, self._high[0]), max(moves, self._high[1]), max(pairs, self._high[2])
        self._high = (states, moves, pairs)
        dead = states - 1  # never active: padding moves start and end there
        src = np.full((rows, moves), dead, np.int32)
        token = np.zeros((rows, moves), np.int32)
        dst = np.full((rows, moves), dead, np.int32)
        initial = np.zeros((rows, states), bool)
        startable = np.zeros((rows, states), bool)
        fresh_of = np.full((rows, states), dead, np.int32)
        after_src = np.full((rows, pairs), dead, np.int32)
        after_dst = np.full((rows, pairs), dead, np.int32)
        end = np.full((rows,), dead, np.int32)
        constrained = np.zeros((rows,), bool)
        for i, r in enumerate(built):
            if r is None:
                continue
            m = len(r.moves)
            src[i, :m], token[i, :m], dst[i, :m] = r.moves[:, 0], r.moves[:, 1], r.moves[:, 2]
            initial[i, r.initial] = True
            startable[i, : r.size] = r.startable
            fresh_of[i, : r.size] = np.where(r.fresh_of >= 0, r.fresh_of, dead)
            after_src[i, : len(r.after)], after_dst[i, : len(r.after)] = r.after[:, 0], r.after[:, 1]
            end[i] = r.end
            constrained[i] = True
        return {
            "src": src,
            "token": token,
            "dst": dst,
            "initial": initial,
            "startable": startable,
            "fresh_of": fresh_of,
            "after_src": after_src,
            "after_dst": after_dst,
            "end": end,
            "constrained": constrained,
        }

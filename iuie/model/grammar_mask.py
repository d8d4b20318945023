"""Grammar-constrained decoding inside the compiled decode loop: an automaton over integer tables, in jnp.

A stateful ``logits_mask_fn`` for :mod:`iuie.model.decoding` (``init_state`` / ``__call__``): per example, a
nondeterministic automaton given as a list of moves ``(src, token, dst)`` over ``states`` single states (the
tables :mod:`iuie.extraction.compiled` builds from the answer grammar and the input sentence). A row's state
is the boolean vector of its active single states, carried in the decode loop (and reordered with the beams
in beam search). At each step:

* the row's state is advanced by the token chosen last: ``active'[dst] |= active[src] & (token == chosen)``
  (a scatter over the moves), then ``active'[after_dst] |= active'[after_src]`` (a finished mention activates
  what may follow it). A mention about to start is not a state of its own: the moves of mention state
  ``(k, p)`` also apply while the fresh state of ``k`` is active and a mention may start at ``p``
  (``fresh_of`` / ``startable``), which keeps the moves few;
* the allowed tokens are ``allowed[token] |= active[src]`` (another scatter), plus end of sequence where the
  ``end`` state is active or nothing else is allowed (a dead end must still stop);
* ``logits = where(allowed, logits, NEG_INF)``.

A row whose example is not ``constrained`` (batch padding) and a row that has emitted EOS are left free,
exactly like the host version (:mod:`iuie.extraction.constrained`). Every operation is per row (vmapped), so
a batch sharded over a mesh's data axis stays local to its devices; nothing calls the host.

A leaf module by role (pure jnp over integer tables); it imports only :mod:`iuie.model.decoding`'s constants.
"""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp
from jax import lax

from iuie.model.decoding import EOS_ID, NEG_INF

Array = jax.Array
TABLE_FIELDS = (
    "src",
    "token",
    "dst",
    "initial",
    "startable",
    "fresh_of",
    "after_src",
    "after_dst",
    "end",
    "constrained",
)


def _sources(active: Array, t: dict[str, Array]) -> Array:
    """The states whose moves apply: the active ones, and each mention state where a mention may start
    while its node's fresh state is active (a mention about to start at that position)."""
    return active | (active[t["fresh_of"]] & t["startable"])


def _advance(active: Array, t: dict[str, Array], chosen: Array) -> Array:
    hit = _sources(active, t)[t["src"]] & (t["token"] == chosen)
    moved = jnp.zeros_like(active).at[t["dst"]].max(hit)
    # A typed mention may be finished: what may follow it becomes active too (the host's closure).
    return moved.at[t["after_dst"]].max(moved[t["after_src"]])


def _allowed(active: Array, t: dict[str, Array], vocab: int) -> Array:
    return jnp.zeros((vocab,), jnp.bool_).at[t["token"]].max(_sources(active, t)[t["src"]])


_ROW_FIELDS = ("src", "token", "dst", "startable", "fresh_of", "after_src", "after_dst")


class GrammarMask:
    """The hook; ``tables``: the arrays of :meth:`iuie.extraction.compiled.Compiler.tables` (examples leading:
    ``src``, ``token``, ``dst`` ``[batch, moves]``, ``initial`` ``[batch, states]``, ``end`` and ``constrained``
    ``[batch]``), as jnp arrays or tracers."""

    def __init__(self, tables: Mapping[str, Array], eos_id: int = EOS_ID):
        missing = [f for f in TABLE_FIELDS if f not in tables]
        if missing:
            raise ValueError(f"grammar tables lack {missing}")
        self.tables = {f: jnp.asarray(tables[f]) for f in TABLE_FIELDS}
        self.eos_id = int(eos_id)
        self.batch = self.tables["initial"].shape[0]

    def init_state(self) -> dict[str, Array]:
        return {"active": self.tables["initial"], "ended": jnp.zeros((self.batch,), jnp.bool_)}

    def _rows(self, rows: int) -> dict[str, Array]:
        if rows % self.batch:
            raise ValueError(f"{rows} decode rows for a batch of {self.batch} grammar tables")
        n = rows // self.batch
        return {f: (t if n == 1 else jnp.repeat(t, n, axis=0)) for f, t in self.tables.items()}

    def __call__(self, step: Array, sequences: Array, logits: Array, state: dict[str, Array]):
        t = self._rows(logits.shape[0])
        chosen = lax.dynamic_index_in_dim(sequences, jnp.maximum(step - 1, 0), axis=1, keepdims=False)
        moved = step > 0
        rows = {f: t[f] for f in _ROW_FIELDS}
        advanced = jax.vmap(_advance)(state["active"], rows, chosen)
        active = jnp.where(moved, advanced, state["active"])
        ended = state["ended"] | (moved & (chosen == self.eos_id))
        allowed = jax.vmap(_allowed, in_axes=(0, 0, None))(active, rows, logits.shape[-1])
        at_end = jnp.take_along_axis(active, t["end"][:, None], axis=1)[:, 0]
        eos_ok = at_end | ~jnp.any(allowed, axis=-1)
        allowed = allowed.at[:, self.eos_id].set(allowed[:, self.eos_id] | eos_ok)
        allowed = allowed | (ended | ~t["constrained"])[:, None]
        logits = jnp.where(allowed, logits, jnp.asarray(NEG_INF, logits.dtype))
        return logits, {"active": active, "ended": ended}

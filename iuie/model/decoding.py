"""Autoregressive decoding as pure, jit-compatible functions: temperature sampling (temperature 0 = greedy) and
beam search, both driven by a ``tokens_to_logits`` callback that owns the model and its key/value cache.

The calling convention follows T5X's ``t5x/decoding.py`` so either side's decode functions can be swapped in:

* ``inputs`` ``[batch, max_decode_len]`` int: a right-shifted decoder prompt, like ``decoder_input_tokens``.
  ``inputs[:, 0]`` is the start slot (ignored); a non-zero ``inputs[:, t + 1]`` forces output token ``t``
  (teacher forcing); zeros are generated. All zeros = decode from scratch.
* ``tokens_to_logits(DecodingState) -> (logits [rows, vocab], new_cache)``. Rows are example-major: with
  ``num_decodes`` = n, row ``r`` belongs to example ``r // n``. Every cache leaf must have the rows (batch) as
  its leading axis: the functions expand and reorder the cache with plain ``jax.tree.map``.
* Outputs ``[batch, num_decodes, max_decode_len]`` sequences (no start token; 0 after EOS) and
  ``[batch, num_decodes]`` scores, sorted by *increasing* score: the best decode is ``[:, -1]``.
* Decoding stops early once every row has produced ``eos_id`` (1 for T5) or ``max_decode_len`` tokens.

``logits_mask_fn`` (the hook constrained decoding uses): ``(step, sequences, logits) -> logits``, called once
per step before any token is chosen:

* ``step``: scalar int32, the index of the token being chosen (0 for the first generated token);
* ``sequences``: ``[rows, max_decode_len]`` int32, the tokens chosen so far for each row (positions
  ``>= step`` are 0). In beam search these are the live beams' prefixes;
* ``logits``: ``[rows, vocab]`` float32 next-token logits;
* returns logits of the same shape, e.g. with disallowed tokens set to ``NEG_INF``. Scores (log-probabilities)
  are computed from the returned logits, i.e. under the constrained, renormalised distribution.

A hook may also carry per-row state through the decode loop (a grammar's automaton state, so that nothing is
recomputed from the whole prefix at each step): an object with ``init_state() -> PyTree`` (leaves with the
*examples* as leading axis; expanded to one row per decode like the cache) and ``__call__(step, sequences,
logits, state) -> (logits, new_state)``. At step ``t`` the state is the one the hook returned at step ``t - 1``
for the row's parent: beam search reorders it with the beams, exactly like the cache, so a hook that advances
its state by ``sequences[:, t - 1]`` (the token chosen last) sees each beam's own prefix.

A leaf module: it imports nothing from iuie.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
from jax import lax

Array = jax.Array
PyTree = Any

EOS_ID = 1
# A large finite negative log-probability: finite so that sums and divisions of dead beams never produce NaN.
NEG_INF = -1.0e7
# Temperatures at or below this are treated as 0 (greedy): 1/temperature would overflow.
MIN_TEMPERATURE = 1e-4

BEAM_SEMANTICS = ("t5x", "hf")


@flax.struct.dataclass
class DecodingState:
    """What ``tokens_to_logits`` receives at each step.

    Attributes:
      cur_index: scalar int32, the position of ``cur_token`` in the decoder input (0 = the start token); the
        logits it returns are for output token ``cur_index``.
      sequences: ``[rows, max_decode_len]`` tokens chosen so far (0 where not chosen yet).
      cur_token: ``[rows, 1]`` the current decoder input token.
      cache: the model's cache pytree (rows leading).
    """

    cur_index: Array
    sequences: Array
    cur_token: Array
    cache: PyTree


TokensToLogits = Callable[[DecodingState], tuple[Array, PyTree]]
# (step, sequences, logits) -> logits, or a stateful hook (see the module docstring).
LogitsMaskFn = Callable[..., Any]


def _mask_state_init(logits_mask_fn: LogitsMaskFn | None, num_decodes: int) -> PyTree:
    if logits_mask_fn is None or not hasattr(logits_mask_fn, "init_state"):
        return ()
    return jax.tree.map(lambda x: expand_rows(x, num_decodes), logits_mask_fn.init_state())


def _apply_mask(
    logits_mask_fn: LogitsMaskFn | None, step: Array, sequences: Array, logits: Array, mask_state: PyTree
) -> tuple[Array, PyTree]:
    if logits_mask_fn is None:
        return logits, mask_state
    if hasattr(logits_mask_fn, "init_state"):
        return logits_mask_fn(step, sequences, logits, mask_state)
    return logits_mask_fn(step, sequences, logits), mask_state


def expand_rows(x: Array, n: int) -> Array:
    """``[batch, ...]`` -> ``[batch * n, ...]``, each row repeated n times in place: [a, b] -> [a, a, b, b]."""
    return x if n == 1 else jnp.repeat(x, n, axis=0)


def _sort_ascending(sequences: Array, scores: Array) -> tuple[Array, Array]:
    order = jnp.argsort(scores, axis=-1)
    return jnp.take_along_axis(sequences, order[..., None], axis=1), jnp.take_along_axis(scores, order, axis=1)


# ----------------------------------------------------------------------------------------------------------------
# Temperature sampling and greedy decoding
# ----------------------------------------------------------------------------------------------------------------


@flax.struct.dataclass
class _SampleState:
    step: Array  # scalar int32: tokens chosen so far
    sequences: Array  # [rows, max_len]
    cur_token: Array  # [rows, 1]
    cache: PyTree
    ended: Array  # [rows] bool
    log_prob: Array  # [rows] float32
    rng: Array
    mask_state: PyTree = ()  # the logits_mask_fn's state (rows leading), () for a stateless hook


def _topk_mask(logits: Array, k: int) -> Array:
    kth = lax.top_k(logits, k)[0][..., -1:]
    return jnp.where(logits < kth, NEG_INF, logits)


def temperature_sample(
    inputs: Array,
    cache: PyTree,
    tokens_to_logits: TokensToLogits,
    *,
    eos_id: int = EOS_ID,
    decode_rng: Array | None = None,
    num_decodes: int = 1,
    temperature: float | Array = 1.0,
    topk: int = 0,
    logits_mask_fn: LogitsMaskFn | None = None,
    max_decode_len: int | None = None,
    finished: Array | None = None,
) -> tuple[Array, Array]:
    """Samples ``num_decodes`` continuations per example; temperature 0 is greedy (argmax) decoding.

    Args:
      inputs: ``[batch, length]`` right-shifted prompt (see the module docstring); its length bounds the output.
      cache: the model cache for ``batch`` rows; expanded here to ``batch * num_decodes`` rows.
      tokens_to_logits: the model step.
      eos_id: end-of-sequence id; a row stops at its first generated EOS (forced prompt tokens never stop it).
      decode_rng: PRNG key for sampling (``jax.random.key(0)`` when None).
      num_decodes: independent samples per example.
      temperature: a Python float (0 picks greedy at trace time) or a traced scalar.
      topk: if > 0, sample only among the k most likely tokens.
      logits_mask_fn: optional hook, see the module docstring.
      max_decode_len: generate at most this many tokens (default: ``inputs.shape[1]``).
      finished: optional ``[batch]`` bool: examples that count as ended before the first step (padding rows
        a caller added to fill a fixed batch shape). They generate only zeros with log-probability 0, and the
        loop stops as soon as the other rows have ended instead of running to ``max_decode_len`` for rows
        whose output nobody reads.

    Returns:
      ``(sequences [batch, num_decodes, max_decode_len], log_probs [batch, num_decodes])`` sorted by increasing
      log-probability. ``log_probs`` sums the model's log-softmax (after ``logits_mask_fn``, before
      temperature and top-k) over generated, non-forced tokens.
    """
    batch = inputs.shape[0]
    length = inputs.shape[1] if max_decode_len is None else max_decode_len
    # Forced tokens: forced[:, t] != 0 forces output token t.
    forced = jnp.zeros((batch, length), jnp.int32)
    n_in = min(inputs.shape[1] - 1, length)
    if n_in > 0:
        forced = forced.at[:, :n_in].set(inputs[:, 1 : 1 + n_in].astype(jnp.int32))
    forced = expand_rows(forced, num_decodes)
    rows = batch * num_decodes
    if decode_rng is None:
        decode_rng = jax.random.key(0)
    greedy_static = isinstance(temperature, (int, float)) and temperature <= MIN_TEMPERATURE

    def choose(logits, rng):
        if greedy_static:
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)

        def sample(_):
            scaled = logits / jnp.maximum(temperature, MIN_TEMPERATURE)
            if topk:
                scaled = _topk_mask(scaled, topk)
            return jax.random.categorical(rng, scaled, axis=-1).astype(jnp.int32)

        def greedy(_):
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)

        return lax.cond(jnp.asarray(temperature) > MIN_TEMPERATURE, sample, greedy, None)

    def cond_fn(state: _SampleState) -> Array:
        return (state.step < length) & ~jnp.all(state.ended)

    def body_fn(state: _SampleState) -> _SampleState:
        rng, step_rng = jax.random.split(state.rng)
        logits, new_cache = tokens_to_logits(
            DecodingState(cur_index=state.step, sequences=state.sequences, cur_token=state.cur_token, cache=state.cache)
        )
        logits = logits.astype(jnp.float32)
        logits, mask_state = _apply_mask(logits_mask_fn, state.step, state.sequences, logits, state.mask_state)
        sampled = choose(logits, step_rng)
        forced_now = lax.dynamic_index_in_dim(forced, state.step, axis=1, keepdims=False)
        is_forced = forced_now != 0
        token = jnp.where(is_forced, forced_now, sampled)
        token = jnp.where(state.ended, 0, token)
        token_log_prob = jnp.take_along_axis(jax.nn.log_softmax(logits), sampled[:, None], axis=-1)[:, 0]
        log_prob = state.log_prob + jnp.where(is_forced | state.ended, 0.0, token_log_prob)
        sequences = lax.dynamic_update_index_in_dim(state.sequences, token, state.step, axis=1)
        ended = state.ended | ((token == eos_id) & ~is_forced)
        return _SampleState(state.step + 1, sequences, token[:, None], new_cache, ended, log_prob, rng, mask_state)

    init = _SampleState(
        step=jnp.array(0, jnp.int32),
        sequences=jnp.zeros((rows, length), jnp.int32),
        cur_token=jnp.zeros((rows, 1), jnp.int32),
        cache=jax.tree.map(lambda x: expand_rows(x, num_decodes), cache),
        ended=(
            jnp.zeros((rows,), jnp.bool_)
            if finished is None
            else expand_rows(jnp.asarray(finished, jnp.bool_).reshape(batch), num_decodes)
        ),
        log_prob=jnp.zeros((rows,), jnp.float32),
        rng=decode_rng,
        mask_state=_mask_state_init(logits_mask_fn, num_decodes),
    )
    final = lax.while_loop(cond_fn, body_fn, init)
    sequences = final.sequences.reshape(batch, num_decodes, length)
    log_probs = final.log_prob.reshape(batch, num_decodes)
    return _sort_ascending(sequences, log_probs)


def greedy_decode(inputs: Array, cache: PyTree, tokens_to_logits: TokensToLogits, **kwargs) -> tuple[Array, Array]:
    """Greedy decoding: ``temperature_sample`` with temperature 0.

    Used only by tests (tests/model/test_decoding.py, tests/interop/test_network_parity.py), as the named
    reference point for greedy output; ``models.EncoderDecoderModel`` calls ``temperature_sample`` directly.
    """
    kwargs.pop("temperature", None)
    return temperature_sample(inputs, cache, tokens_to_logits, temperature=0.0, **kwargs)


# ----------------------------------------------------------------------------------------------------------------
# Beam search
# ----------------------------------------------------------------------------------------------------------------


def length_penalty(alpha: float, length: Array, semantics: str = "t5x") -> Array:
    """The divisor of a finished beam's summed log-probability.

    't5x': T5X's (GNMT's) brevity penalty ``((5 + length) / 6) ** alpha``; 'hf': Hugging Face's
    ``length ** alpha`` (``length_penalty`` in ``generate``). ``length`` counts generated tokens, EOS included.
    """
    length = jnp.asarray(length, jnp.float32)
    if semantics == "t5x":
        return jnp.power((5.0 + length) / 6.0, alpha)
    return jnp.power(length, alpha)


@flax.struct.dataclass
class _BeamState:
    step: Array  # scalar int32: tokens generated so far
    live_seqs: Array  # [batch, beams, max_len], best first
    live_log_probs: Array  # [batch, beams]
    finished_seqs: Array  # [batch, beams, max_len], best first
    finished_scores: Array  # [batch, beams]
    finished_flags: Array  # [batch, beams] whether the slot holds a real finished sequence
    cache: PyTree  # rows = batch * beams, beam-major within each example
    mask_state: PyTree = ()  # the logits_mask_fn's state, rows like the cache


def _gather(x: Array, indices: Array) -> Array:
    """x ``[batch, n, ...]`` gathered along axis 1 at ``[batch, m]`` indices -> ``[batch, m, ...]``."""
    idx = indices.reshape(indices.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


def beam_search(
    inputs: Array,
    cache: PyTree,
    tokens_to_logits: TokensToLogits,
    *,
    eos_id: int = EOS_ID,
    num_decodes: int = 4,
    alpha: float = 0.6,
    semantics: str = "t5x",
    logits_mask_fn: LogitsMaskFn | None = None,
    max_decode_len: int | None = None,
    decode_rng: Array | None = None,
) -> tuple[Array, Array]:
    """Beam search with ``num_decodes`` beams.

    Each step extends every live beam by every token, keeps the best ``2 * beams`` candidates (so ``beams``
    non-finished ones survive even if many pick EOS), moves candidates ending in EOS to the finished set (scored
    ``log_prob / length_penalty``) and keeps the best ``beams`` others alive. Search stops when no live beam can
    still beat the worst of a full finished set (a sound bound for any ``alpha``), or at ``max_decode_len``.

    ``semantics`` picks one of two conventions that agree on the above and differ in three details:

    ==============================  =====================================  =====================================
    detail                          't5x' (T5X ``decoding.beam_search``)   'hf' (transformers ``generate``)
    ==============================  =====================================  =====================================
    length penalty                  ``((5 + L) / 6) ** alpha``             ``L ** alpha``
    which EOS candidates finish     any of the top ``2 * beams``           only those ranked in the top ``beams``
    beams still live at max length  returned only if nothing finished      join the finished set (scored as such)
    ==============================  =====================================  =====================================

    With ``semantics='hf'`` the result equals ``generate(num_beams=beams, do_sample=False,
    length_penalty=alpha, early_stopping='never', max_new_tokens=max_decode_len)`` token for token (tested); HF's
    other ``early_stopping`` modes (True, and the default False with ``alpha != 0``) stop on a heuristic that can
    end the search before the best sequence is found and are not reproduced.

    Args:
      inputs: ``[batch, length]`` right-shifted prompt (see the module docstring); forced tokens are not scored.
      cache: model cache for ``batch`` rows; expanded here to ``batch * num_decodes``.
      tokens_to_logits: the model step.
      eos_id: end-of-sequence id.
      num_decodes: beam size.
      alpha: length penalty exponent (0 = rank by summed log-probability).
      semantics: 't5x' or 'hf', see above.
      logits_mask_fn: optional hook, see the module docstring.
      max_decode_len: at most this many tokens (default ``inputs.shape[1]``).
      decode_rng: unused (beam search is deterministic); accepted for a uniform decode-function signature.

    Returns:
      ``(sequences [batch, beams, max_decode_len], scores [batch, beams])``, increasing score (best last).
    """
    del decode_rng
    if semantics not in BEAM_SEMANTICS:
        raise ValueError(f"semantics must be one of {BEAM_SEMANTICS}, got {semantics!r}")
    hf = semantics == "hf"
    batch = inputs.shape[0]
    beams = num_decodes
    length = inputs.shape[1] if max_decode_len is None else max_decode_len
    forced = jnp.zeros((batch, length), jnp.int32)
    n_in = min(inputs.shape[1] - 1, length)
    if n_in > 0:
        forced = forced.at[:, :n_in].set(inputs[:, 1 : 1 + n_in].astype(jnp.int32))
    candidates = 2 * beams
    rank_ok = jnp.arange(candidates) < (beams if hf else candidates)  # [2k]
    penalty = lambda n: length_penalty(alpha, n, semantics)

    def best_possible(state: _BeamState) -> Array:
        """Upper bound on the score of any sequence the live beams can still finish: ``[batch]``."""
        best_live = state.live_log_probs[:, 0]
        next_len = state.step + 1
        # log-probs only fall as beams grow, and the penalty is monotonic in the length, so the bound is attained
        # at the shortest or the longest length still possible.
        return jnp.maximum(best_live / penalty(next_len), best_live / penalty(length))

    def cond_fn(state: _BeamState) -> Array:
        worst_finished = jnp.min(jnp.where(state.finished_flags, state.finished_scores, NEG_INF), axis=1)
        done = jnp.all(state.finished_flags, axis=1) & (best_possible(state) <= worst_finished)
        return (state.step < length) & ~jnp.all(done)

    def body_fn(state: _BeamState) -> _BeamState:
        step = state.step
        flat_seqs = state.live_seqs.reshape(batch * beams, length)
        cur_token = jnp.where(
            step > 0, lax.dynamic_index_in_dim(flat_seqs, jnp.maximum(step - 1, 0), axis=1, keepdims=False), 0
        )
        logits, new_cache = tokens_to_logits(
            DecodingState(cur_index=step, sequences=flat_seqs, cur_token=cur_token[:, None], cache=state.cache)
        )
        logits = logits.astype(jnp.float32)
        logits, mask_state = _apply_mask(logits_mask_fn, step, flat_seqs, logits, state.mask_state)
        vocab = logits.shape[-1]
        log_probs = jax.nn.log_softmax(logits).reshape(batch, beams, vocab) + state.live_log_probs[:, :, None]
        top_lp, top_idx = lax.top_k(log_probs.reshape(batch, beams * vocab), candidates)  # best first
        top_beam, top_token = top_idx // vocab, top_idx % vocab

        # Forced prompt token: only beam 0 is alive inside a prompt; it takes the token without scoring it.
        forced_now = lax.dynamic_index_in_dim(forced, step, axis=1, keepdims=False)[:, None]  # [batch, 1]
        in_prompt = forced_now != 0
        first_only = jnp.where(jnp.arange(candidates) == 0, state.live_log_probs[:, :1], NEG_INF)
        top_lp = jnp.where(in_prompt, first_only, top_lp)
        top_beam = jnp.where(in_prompt, 0, top_beam)
        top_token = jnp.where(in_prompt, forced_now, top_token)

        cand_seqs = _gather(state.live_seqs, top_beam)
        cand_seqs = lax.dynamic_update_index_in_dim(cand_seqs, top_token, step, axis=2)
        valid = top_lp > NEG_INF / 2  # candidates descending from dead (filler) beams never count
        is_eos = (top_token == eos_id) & ~in_prompt
        last_step = step == length - 1
        finishing = valid & rank_ok & (is_eos | (hf & last_step))

        # Live set: the best `beams` candidates that did not just emit EOS.
        live_lp = jnp.where(is_eos, NEG_INF, top_lp)
        new_live_lp, keep = lax.top_k(live_lp, beams)
        new_live_seqs = _gather(cand_seqs, keep)
        origin = _gather(top_beam, keep)  # [batch, beams] index of the parent beam
        rows = (jnp.arange(batch)[:, None] * beams + origin).reshape(-1)
        new_cache = jax.tree.map(lambda x: x[rows], new_cache)
        mask_state = jax.tree.map(lambda x: x[rows], mask_state)  # the state follows its beam, like the cache

        # Finished set: merge and keep the best `beams`.
        new_scores = jnp.where(finishing, top_lp / penalty(step + 1), NEG_INF)
        all_seqs = jnp.concatenate([state.finished_seqs, cand_seqs], axis=1)
        all_scores = jnp.concatenate([state.finished_scores, new_scores], axis=1)
        all_flags = jnp.concatenate([state.finished_flags, finishing], axis=1)
        fin_scores, fin_idx = lax.top_k(all_scores, beams)
        return _BeamState(
            step=step + 1,
            live_seqs=new_live_seqs,
            live_log_probs=new_live_lp,
            finished_seqs=_gather(all_seqs, fin_idx),
            finished_scores=fin_scores,
            finished_flags=_gather(all_flags, fin_idx),
            cache=new_cache,
            mask_state=mask_state,
        )

    init = _BeamState(
        step=jnp.array(0, jnp.int32),
        live_seqs=jnp.zeros((batch, beams, length), jnp.int32),
        # Only beam 0 starts alive, so the first step does not pick the same token `beams` times.
        live_log_probs=jnp.tile(jnp.array([0.0] + [NEG_INF] * (beams - 1), jnp.float32), (batch, 1)),
        finished_seqs=jnp.zeros((batch, beams, length), jnp.int32),
        finished_scores=jnp.full((batch, beams), NEG_INF, jnp.float32),
        finished_flags=jnp.zeros((batch, beams), jnp.bool_),
        cache=jax.tree.map(lambda x: expand_rows(x, beams), cache),
        mask_state=_mask_state_init(logits_mask_fn, beams),
    )
    final = lax.while_loop(cond_fn, body_fn, init)

    # An example with no finished sequence at all returns its live beams, scored by raw log-probability (T5X).
    any_finished = jnp.any(final.finished_flags, axis=1)
    sequences = jnp.where(any_finished[:, None, None], final.finished_seqs, final.live_seqs)
    scores = jnp.where(any_finished[:, None], final.finished_scores, final.live_log_probs)
    return _sort_ascending(sequences, scores)

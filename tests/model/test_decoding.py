"""Tests of ``iuie.model.decoding`` with a toy model whose next-token logits are a fixed table indexed by the prefix.

The toy model keeps its "cache" (the prefix's node in a trie) per row, so any mistake in expanding or reordering
the cache changes the logits and shows. References: hand-worked examples (written out below) and exhaustive
enumeration of every sequence (with beams wide enough to keep every candidate, beam search must return exactly
the best-scoring hypotheses under its semantics). Agreement with transformers' ``generate`` on a real network
is tested in ``test_models.py``.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iuie.model import decoding

PAD, EOS, A, B = 0, 1, 2, 3
NEVER = -1e9  # logit of the pad token: the toy model never emits it


class Trie:
    """All prefixes up to ``depth`` tokens over ``vocab`` tokens, each with its own next-token logits."""

    def __init__(self, vocab: int, depth: int, logits: dict[tuple[int, ...], list[float]] | None = None, seed=0):
        rng = np.random.default_rng(seed)
        self.vocab = vocab
        self.prefixes = [()]
        for _ in range(depth):
            self.prefixes += [p + (t,) for p in self.prefixes if len(p) == len(self.prefixes[-1]) for t in range(vocab)]
        self.index = {p: i for i, p in enumerate(self.prefixes)}
        n = len(self.prefixes)
        self.table = rng.normal(size=(n, vocab)) * 2.0
        for p, row in (logits or {}).items():
            self.table[self.index[p]] = row
        self.table[:, PAD] = NEVER
        self.children = np.zeros((n, vocab), np.int32)
        for p, i in self.index.items():
            for t in range(vocab):
                self.children[i, t] = self.index.get(p + (t,), 0)

    def log_probs(self, prefix) -> np.ndarray:
        row = self.table[self.index[tuple(prefix)]]
        return row - np.log(np.sum(np.exp(row - row.max()))) - row.max()

    def cache(self, batch: int):
        return {"node": jnp.zeros((batch,), jnp.int32)}

    def tokens_to_logits(self, state: decoding.DecodingState):
        table, children = jnp.asarray(self.table, jnp.float32), jnp.asarray(self.children)
        node = state.cache["node"]
        node = jnp.where(state.cur_index > 0, children[node, state.cur_token[:, 0]], node)
        return table[node], {"node": node}


def probs_row(**p) -> list[float]:
    """Logits giving the named tokens the given probabilities (the rest ~0)."""
    row = [NEVER] * 4
    for name, prob in p.items():
        row[{"EOS": EOS, "A": A, "B": B}[name]] = math.log(prob)
    return row


def run(fn, trie, batch=1, length=3, inputs=None, **kwargs):
    inputs = jnp.zeros((batch, length), jnp.int32) if inputs is None else inputs
    out = jax.jit(lambda: fn(inputs, trie.cache(batch), trie.tokens_to_logits, **kwargs))()
    return jax.tree.map(np.asarray, out)


# --------------------------------------------------------------------------------------------------------------
# Greedy and sampling
# --------------------------------------------------------------------------------------------------------------

# Hand-worked: first token A (p .6) / EOS (.37) / B; after A: EOS .5, A .3, B .2; after (A, A): B .9.
HAND = {
    (): probs_row(A=math.exp(-0.5), EOS=math.exp(-1.0), B=1 - math.exp(-0.5) - math.exp(-1.0)),
    (A,): probs_row(EOS=0.5, A=0.3, B=0.2),
    (A, A): probs_row(B=0.9, EOS=0.05, A=0.05),
}


def _counting_steps(trie, calls):
    """``trie.tokens_to_logits`` that appends each decode step's index to ``calls`` (how many steps ran)."""

    def counting(state):
        jax.debug.callback(lambda i: calls.append(int(i)), state.cur_index)
        return trie.tokens_to_logits(state)

    return counting


def test_greedy_hand_worked_stops_at_eos():
    trie = Trie(4, 3, HAND)
    calls = []
    counting = _counting_steps(trie, calls)

    seqs, scores = jax.tree.map(
        np.asarray, jax.jit(lambda: decoding.greedy_decode(jnp.zeros((1, 5), jnp.int32), trie.cache(1), counting))()
    )
    np.testing.assert_array_equal(seqs, [[[A, EOS, 0, 0, 0]]])  # 0 after EOS
    np.testing.assert_allclose(scores, [[-0.5 + math.log(0.5)]], rtol=1e-5)
    assert calls == [0, 1]  # stopped right after EOS instead of running 5 steps


def test_finished_rows_end_before_the_first_step():
    """Rows marked ``finished`` (padding rows of a fixed-shape batch) generate zeros scored 0, and the loop
    stops when the other rows end. Hand-worked: row 0 greedy is A, EOS (2 steps, as above); row 1 may not emit
    EOS (a mask hook), so unless it counts as finished it would keep the loop running for all 5 steps."""
    trie = Trie(4, 3, HAND)
    calls = []
    counting = _counting_steps(trie, calls)

    row1_no_eos = lambda step, seqs, logits: logits.at[1, EOS].set(decoding.NEG_INF)

    def decode(finished):
        return jax.tree.map(
            np.asarray,
            jax.jit(
                lambda: decoding.greedy_decode(
                    jnp.zeros((2, 5), jnp.int32),
                    trie.cache(2),
                    counting,
                    logits_mask_fn=row1_no_eos,
                    finished=finished,
                )
            )(),
        )

    seqs, scores = decode(None)
    assert calls == [0, 1, 2, 3, 4] and seqs[1, 0, 0] != 0  # without it, row 1 runs to the length limit
    calls.clear()
    seqs, scores = decode(jnp.array([False, True]))
    np.testing.assert_array_equal(seqs, [[[A, EOS, 0, 0, 0]], [[0, 0, 0, 0, 0]]])
    np.testing.assert_allclose(scores, [[-0.5 + math.log(0.5)], [0.0]], rtol=1e-5)
    assert calls == [0, 1]


def test_forced_prompt_and_mask_hook():
    trie = Trie(4, 3, HAND)
    # Force the first output token to be A, then B (inputs are right-shifted: slot 0 is the start token).
    seqs, scores = run(decoding.greedy_decode, trie, length=3, inputs=jnp.array([[0, A, B]]))
    assert seqs[0, 0, :2].tolist() == [A, B]
    assert np.isclose(scores[0, 0], trie.log_probs((A, B))[seqs[0, 0, 2]])  # forced tokens are not scored

    # A hook that forbids EOS: greedy now runs to the full length: A, A, B.
    no_eos = lambda step, seqs, logits: logits.at[:, EOS].set(decoding.NEG_INF)
    seqs, scores = run(decoding.greedy_decode, trie, length=3, logits_mask_fn=no_eos)
    assert seqs[0, 0].tolist() == [A, A, B]
    # Scores are under the constrained (renormalised) distribution.
    want = sum(_masked_log_probs(trie, p, EOS)[t] for p, t in [((), A), ((A,), A), ((A, A), B)])
    np.testing.assert_allclose(scores[0, 0], want, rtol=1e-5)


def _masked_log_probs(trie, prefix, banned):
    row = trie.table[trie.index[prefix]].copy()
    row[banned] = decoding.NEG_INF
    return row - np.log(np.sum(np.exp(row - row.max()))) - row.max()


@pytest.mark.parametrize("method", ["greedy", "beam"])
def test_mask_hook_sees_step_and_prefix(method):
    """The hook gets the step index and the tokens chosen so far: forcing "alternate A and B, starting with
    whatever token was not chosen before" only works if both are right."""
    trie = Trie(4, 4, seed=3)

    def alternate(step, seqs, logits):
        prev = jnp.where(step > 0, seqs[:, jnp.maximum(step - 1, 0)], B)
        want = jnp.where(prev == A, B, A)
        return jnp.where(jnp.arange(logits.shape[-1])[None] == want[:, None], logits, decoding.NEG_INF)

    fn = decoding.greedy_decode if method == "greedy" else functools.partial(decoding.beam_search, num_decodes=2)
    seqs, _ = run(fn, trie, batch=2, length=4, logits_mask_fn=alternate)
    np.testing.assert_array_equal(seqs[:, -1], [[A, B, A, B]] * 2)


class _CountingMask:
    """A stateful hook: its state is the number of A tokens in the row's own prefix (advanced by the last chosen
    token); once a row holds two A, A is forbidden."""

    def __init__(self, batch):
        self.batch = batch

    def init_state(self):
        return {"count": jnp.zeros((self.batch,), jnp.int32)}

    def __call__(self, step, seqs, logits, state):
        last = jnp.where(step > 0, seqs[:, jnp.maximum(step - 1, 0)], PAD)
        count = state["count"] + (last == A)
        logits = jnp.where((count[:, None] >= 2) & (jnp.arange(logits.shape[-1])[None] == A), decoding.NEG_INF, logits)
        return logits, {"count": count}


def _counting_from_prefix(step, seqs, logits):
    """The same rule computed from the whole prefix (the stateless reference)."""
    count = jnp.sum((seqs == A) & (jnp.arange(seqs.shape[1])[None] < step), axis=1)
    return jnp.where((count[:, None] >= 2) & (jnp.arange(logits.shape[-1])[None] == A), decoding.NEG_INF, logits)


@pytest.mark.parametrize(
    "fn",
    [
        decoding.greedy_decode,
        functools.partial(decoding.beam_search, num_decodes=3, alpha=0.6),
        functools.partial(decoding.temperature_sample, num_decodes=4, temperature=1.0),
    ],
)
def test_stateful_mask_hook_equals_stateless_reference(fn):
    """A hook carrying its state through the loop (expanded per decode, reordered with the beams) gives exactly
    the decodes and scores of the same rule recomputed from the whole prefix; the rule holds (no row ends with
    more than two A) and binds (free decoding on this model, which likes A, scores differently)."""
    trie = Trie(4, 6, seed=5)
    trie.table[:, A] += 2.0
    trie.table[:, EOS] -= 6.0
    stateful = run(fn, trie, batch=3, length=6, logits_mask_fn=_CountingMask(3))
    stateless = run(fn, trie, batch=3, length=6, logits_mask_fn=_counting_from_prefix)
    np.testing.assert_array_equal(stateful[0], stateless[0])
    np.testing.assert_allclose(stateful[1], stateless[1], rtol=1e-6)
    assert ((stateful[0] == A).sum(-1) <= 2).all()
    free = run(fn, trie, batch=3, length=6)
    assert not np.allclose(free[1], stateful[1])  # the rule changes the search (scores), it is not vacuous


def test_sampling_reproducible_topk_and_greedy_limits():
    trie = Trie(12, 3, seed=1)
    sample = functools.partial(decoding.temperature_sample, num_decodes=64, temperature=1.0)
    a, la = run(sample, trie, batch=2, length=3, decode_rng=jax.random.key(0))
    b, lb = run(sample, trie, batch=2, length=3, decode_rng=jax.random.key(0))
    c, _ = run(sample, trie, batch=2, length=3, decode_rng=jax.random.key(1))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert a.shape == (2, 64, 3) and la.shape == (2, 64)
    assert np.all(np.diff(la, axis=1) >= 0)  # sorted by increasing log-probability
    # Reported log-probs are the model's, summed over the generated tokens.
    for seq, lp in zip(a[0], la[0]):
        prefix, total = (), 0.0
        for t in seq:
            if t == 0:
                break
            total += trie.log_probs(prefix)[t]
            prefix += (int(t),)
            if t == EOS:
                break
        np.testing.assert_allclose(lp, total, rtol=1e-4, atol=1e-4)

    # top-k: every first token is among the 3 most likely.
    k3, _ = run(functools.partial(sample, topk=3), trie, batch=1, length=1, decode_rng=jax.random.key(2))
    top3 = set(np.argsort(trie.table[0])[-3:])
    assert set(k3[0, :, 0].tolist()) <= top3 and len(set(k3[0, :, 0].tolist())) > 1

    # top-k = 1 and temperature 0 (static or traced) are greedy.
    greedy, _ = run(decoding.greedy_decode, trie, batch=1, length=3)
    k1, _ = run(functools.partial(sample, topk=1, num_decodes=1), trie, batch=1, length=3)
    np.testing.assert_array_equal(k1, greedy)
    traced = jax.jit(
        lambda t: decoding.temperature_sample(
            jnp.zeros((1, 3), jnp.int32), trie.cache(1), trie.tokens_to_logits, temperature=t
        )
    )(0.0)[0]
    np.testing.assert_array_equal(np.asarray(traced), greedy)


def test_sample_frequencies_follow_the_distribution():
    trie = Trie(4, 1, {(): probs_row(A=0.5, B=0.3, EOS=0.2)})
    seqs, _ = run(
        functools.partial(decoding.temperature_sample, num_decodes=4000), trie, length=1, decode_rng=jax.random.key(5)
    )
    freq = np.bincount(seqs[0, :, 0], minlength=4) / 4000
    np.testing.assert_allclose(freq[[A, B, EOS]], [0.5, 0.3, 0.2], atol=0.03)


# --------------------------------------------------------------------------------------------------------------
# Beam search
# --------------------------------------------------------------------------------------------------------------


def test_length_penalties_hand_worked():
    np.testing.assert_allclose(decoding.length_penalty(0.6, 7, "t5x"), 2.0**0.6, rtol=1e-6)  # ((5 + 7) / 6)^0.6
    np.testing.assert_allclose(decoding.length_penalty(0.6, 7, "hf"), 7.0**0.6, rtol=1e-6)
    np.testing.assert_allclose(decoding.length_penalty(0.0, 7, "hf"), 1.0)


def test_beam_semantics_differ_on_low_ranked_eos_hand_worked():
    """Beam size 1, alpha 0, two steps. Step 0's candidates: A (log p -0.5, rank 0) and EOS (-1.0, rank 1).
    T5X lets any of the top 2 * beams candidates finish, so [EOS] (-1.0) is finished and beats everything that
    follows ([A, EOS] = -0.5 + ln .5 = -1.193). Hugging Face only lets the top `beams` candidates finish, so
    beam size 1 is greedy: [A, EOS]."""
    trie = Trie(4, 3, HAND)
    search = functools.partial(decoding.beam_search, num_decodes=1, alpha=0.0)
    t5x, t5x_score = run(functools.partial(search, semantics="t5x"), trie, length=2)
    hf, hf_score = run(functools.partial(search, semantics="hf"), trie, length=2)
    np.testing.assert_array_equal(t5x[0, -1], [EOS, 0])
    np.testing.assert_allclose(t5x_score[0, -1], -1.0, rtol=1e-5)
    np.testing.assert_array_equal(hf[0, -1], [A, EOS])
    np.testing.assert_allclose(hf_score[0, -1], -0.5 + math.log(0.5), rtol=1e-5)


def _exhaustive(trie, length, alpha, semantics):
    """Every hypothesis and its score: sequences ending in EOS and, for 'hf', sequences reaching `length`."""
    out = []

    def walk(prefix, total):
        lp = trie.log_probs(prefix)
        for t in range(1, trie.vocab):
            seq, score = prefix + (t,), total + lp[t]
            n = len(seq)
            if t == EOS or (semantics == "hf" and n == length):
                out.append((score / float(decoding.length_penalty(alpha, n, semantics)), seq + (0,) * (length - n)))
            elif n < length:
                walk(seq, score)

    walk((), 0.0)
    return sorted(out)


@pytest.mark.parametrize("semantics", ["t5x", "hf"])
@pytest.mark.parametrize("alpha", [0.0, 0.8])
def test_wide_beam_search_equals_exhaustive_search(semantics, alpha):
    """With 16 beams over 3 real tokens and 3 steps every candidate survives, so the returned set must be
    exactly the best hypotheses under the chosen semantics, scores included. Two examples share the batch (one
    with a forced first token) to check per-example handling."""
    trie = Trie(4, 3, seed=7)
    seqs, scores = run(
        functools.partial(decoding.beam_search, num_decodes=16, alpha=alpha, semantics=semantics),
        trie,
        batch=1,
        length=3,
    )
    real = scores[0] > decoding.NEG_INF / 2
    got = sorted(zip(scores[0][real].tolist(), map(tuple, seqs[0][real].tolist())))
    want = _exhaustive(trie, 3, alpha, semantics)[-16:]
    assert [s for _, s in got] == [s for _, s in want]
    np.testing.assert_allclose([x for x, _ in got], [x for x, _ in want], rtol=1e-5)


def test_beam_search_batch_rows_are_independent():
    """Two different tries would need two models; instead run the same toy twice in one batch, once forced to
    start with B, and compare with separate runs."""
    trie = Trie(4, 3, seed=11)
    search = functools.partial(decoding.beam_search, num_decodes=3, alpha=0.6)
    both, both_scores = run(search, trie, batch=2, length=3, inputs=jnp.array([[0, 0, 0], [0, B, 0]]))
    free, free_scores = run(search, trie, batch=1, length=3)
    forced, forced_scores = run(search, trie, batch=1, length=3, inputs=jnp.array([[0, B, 0]]))
    np.testing.assert_array_equal(both[0], free[0])
    np.testing.assert_array_equal(both[1], forced[0])
    np.testing.assert_allclose(both_scores, np.concatenate([free_scores, forced_scores]), rtol=1e-6)
    assert np.all(both[1, :, 0] == B)


def test_beam_search_with_nothing_finished():
    """No EOS allowed: 't5x' returns the live beams scored by raw log-probability; 'hf' finishes them at the
    maximum length, scored with its length penalty."""
    trie = Trie(4, 3, seed=5)
    no_eos = lambda step, seqs, logits: logits.at[:, EOS].set(decoding.NEG_INF)
    search = functools.partial(decoding.beam_search, num_decodes=2, alpha=1.0, logits_mask_fn=no_eos)
    t5x, t5x_scores = run(functools.partial(search, semantics="t5x"), trie, length=3)
    hf, hf_scores = run(functools.partial(search, semantics="hf"), trie, length=3)
    np.testing.assert_array_equal(t5x, hf)
    assert np.all(t5x != EOS) and np.all(t5x != 0)
    np.testing.assert_allclose(hf_scores, t5x_scores / 3.0, rtol=1e-6)  # hf: log p / 3 ** 1

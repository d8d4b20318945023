"""Constrained decoding on the device (iuie.extraction.compiled + iuie.model.grammar_mask) against the host version.

Reference: :class:`iuie.extraction.constrained.Constrainer` (the host automaton, itself tested against
``iuie.ie.parsing`` in test_constrained.py): the device masks must equal its masks at every step, and the
Extractor's outputs must be the same with either; offsets are checked against the input text itself."""

from __future__ import annotations

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iuie.extraction.compiled import Compiler
from iuie.extraction.constrained import Grammar, grammar_for
from iuie.ie import synthetic
from iuie.ie.records import DatasetFolder, load_labels
from iuie.model.decoding import NEG_INF
from iuie.model.grammar_mask import GrammarMask
from iuie.pipeline import vocab
from tests.extract.conftest import random_extractor
from tests.tiny_runs import REPO, subprocess_env

# Words and separators of the answer grammars, so that mentions can run on into ", " / "; " / ": " (the host
# automaton is then in a mention and a separator at once) and tokens cross between the two.
WORDS = ["Anna", "Berg", "lives", "in", "Oslo", ",", ";", ":", "(", ")", "x", "None", "person", "a", "at"]
sentences = st.lists(st.sampled_from(WORDS + ["Oslo,", "x;", "a:", "Berg, x"]), min_size=1, max_size=10).map(" ".join)
LABELS = ["person", "location", "live in", "attack", "meet", "a"]
# Words that hold other words (and separators) inside them, for the word-boundary rule.
SUBWORD_WORDS = ["Anna", "Annaberg", "Berg", "Oslo,x", "xa", "a", "in", "lives", "Berg;Anna", "2010s", ","]


@pytest.fixture(scope="module")
def vocabulary():
    return vocab.get_vocabulary()


@pytest.fixture(scope="module")
def compiler(vocabulary):
    return Compiler(vocabulary, -(-vocabulary.tokenizer.get_piece_size() // 128) * 128)


@pytest.fixture(scope="module")
def mask_step():
    return jax.jit(lambda tables, step, seqs, logits, state: GrammarMask(tables)(step, seqs, logits, state))


def compare_masks(compiler, mask_step, grammars, seed, length=32, rows=None):
    """Greedy decoding of random logits under the host masks; the device masks must equal them at every step.
    Returns the decoded rows."""
    rows = rows or len(grammars)
    host = compiler.host
    host.register({i: g for i, g in enumerate(grammars) if g is not None})
    keys = np.asarray([i if i < len(grammars) and grammars[i] is not None else -1 for i in range(rows)], np.int32)
    tables = {k: jnp.asarray(v) for k, v in compiler.tables(grammars, rows).items()}
    state = GrammarMask(tables).init_state()
    rng = np.random.default_rng(seed)
    seqs = np.zeros((rows, length), np.int32)
    for step in range(length):
        logits = (rng.normal(size=(rows, host.logits_size)) * 3).astype(np.float32)
        logits[:, host.eos_id] -= 2.0  # favour longer outputs
        out, state = mask_step(tables, jnp.int32(step), jnp.asarray(seqs), jnp.asarray(logits), state)
        device = np.asarray(out) > NEG_INF / 2
        expected = host._host_masks(np.int32(step), seqs, keys)
        for row in np.nonzero((device != expected).any(axis=1))[0]:
            extra = [host.texts.get(int(t)) for t in np.nonzero(device[row] & ~expected[row])[0][:8]]
            missing = [host.texts.get(int(t)) for t in np.nonzero(expected[row] & ~device[row])[0][:8]]
            raise AssertionError(f"step {step}, row {row}: device-only {extra}, host-only {missing}")
        seqs[:, step] = np.argmax(np.where(expected, logits, -1e9), axis=-1)
        seqs[:, step] = np.where((seqs[:, :step] == host.eos_id).any(axis=1), 0, seqs[:, step])
    return seqs


@pytest.mark.parametrize("view", ["NER", "RE", "EE"])
def test_device_masks_equal_host_masks_on_synthetic_examples(compiler, mask_step, synthetic_root, view):
    records, _ = DatasetFolder(synthetic_root, view, "synthetic").load("test", limit=12)
    labels = load_labels(synthetic_root / view / "synthetic", view)
    options = {t: list(synthetic.EVENT_ROLES[t]) for t in labels.types} if view == "EE" else labels
    grammars = [grammar_for(view, r.sentence, options) for r in records]
    # Two padding rows (no grammar: unconstrained on both sides) at the end of the batch.
    seqs = compare_masks(compiler, mask_step, grammars, seed=len(view), rows=len(grammars) + 2)
    assert (seqs[: len(grammars)] == compiler.host.eos_id).any(axis=1).sum() > 0  # some answers completed


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    view=st.sampled_from(["NER", "RE", "EE"]),
    batch=st.lists(sentences, min_size=1, max_size=3),
    labels=st.lists(st.sampled_from(LABELS), min_size=1, max_size=3, unique=True),
    seed=st.integers(0, 2**31 - 1),
)
def test_device_masks_equal_host_masks_on_sentences_with_separators(compiler, mask_step, view, batch, labels, seed):
    options = {t: labels[: 1 + i % len(labels)] for i, t in enumerate(labels)} if view == "EE" else labels
    compare_masks(compiler, mask_step, [grammar_for(view, s, options) for s in batch], seed, length=24)


def test_tables_of_a_hand_worked_example(compiler, vocabulary):
    """NER over "Anna lives in Oslo": after "person:" the piece " Oslo" crosses from the separator's space into
    the mention; "Osl" then allows "o" (the rest of the mention) but not " Paris"-like pieces."""
    grammar = Grammar("NER", "Anna lives in Oslo", ["person"])
    tables = {k: jnp.asarray(v) for k, v in compiler.tables([grammar], 1).items()}
    mask = GrammarMask(tables)
    texts = compiler.texts
    ids = {text: ts[0] for text, ts in compiler.by_text.items()}
    prefix = [ids[" person"], ids[":"], ids[" Oslo"]]
    state = mask.init_state()
    seqs = np.zeros((1, 8), np.int32)
    for step, token in enumerate(prefix + [None]):
        logits, state = mask(jnp.int32(step), jnp.asarray(seqs), jnp.zeros((1, compiler.host.logits_size)), state)
        allowed = {texts.get(int(t), "<eos>" if t == 1 else t) for t in np.nonzero(np.asarray(logits)[0] == 0)[0]}
        if token is not None:
            assert texts[token] in allowed
            seqs[0, step] = token
    # After "person: Oslo": the answer may end, or go on with "; "; nothing else (the sentence ends at "Oslo").
    assert allowed == {"<eos>", ";"}


def test_ee_roles_are_narrowed_to_the_event_type(compiler, mask_step):
    roles = {"attack": ["attacker", "target"], "meet": ["participant"]}
    grammar = grammar_for("EE", "Anna met Berg at Oslo", roles)
    assert grammar.accepts(grammar.run(" ( meet: met,  Anna: participant) "))
    assert not grammar.run(" ( meet: met,  Anna: attacker")
    assert not grammar.run(" ( attack: met,  Anna: participant")
    assert grammar.accepts(grammar.run(" ( attack: met,  Anna: attacker, Oslo: target)"))
    # The flat [types, roles] form keeps any role for any type.
    flat = grammar_for("EE", "Anna met Berg at Oslo", [["attack", "meet"], ["attacker", "participant"]])
    assert flat.run(" ( meet: met,  Anna: attacker")
    compare_masks(compiler, mask_step, [grammar, flat], seed=3)


@pytest.fixture(scope="module")
def extractor_pair():
    options = dict(seed=1, max_input_tokens=256, max_decode_length=40, batch_size=8)
    return random_extractor(constrained="host", **options), random_extractor(constrained=True, **options)


@pytest.mark.filterwarnings("ignore::iuie.extraction.extractor.WindowWarning")
@pytest.mark.parametrize("task,view", [("ner", "NER"), ("re", "RE"), ("ee", "EE")])
def test_extractor_outputs_equal_the_host_version(extractor_pair, synthetic_root, task, view):
    """On the synthetic test split (a random tiny model, several batches and a partial one): the same outputs
    with the device and the host constraint, no hallucinated mention, offsets that point at the mention."""
    host, device = extractor_pair
    records, _ = DatasetFolder(synthetic_root, view, "synthetic").load("test", limit=20)
    labels = load_labels(synthetic_root / view / "synthetic", view)
    options = {t: list(synthetic.EVENT_ROLES[t]) for t in labels.types} if view == "EE" else list(labels.types)
    texts = [r.sentence for r in records]
    expected = host.extract(texts, task=task, labels=options)
    got = device.extract(texts, task=task, labels=options)
    assert [r.outputs for r in got] == [r.outputs for r in expected]
    assert device.last_stats["unaligned"] == 0
    mentions = 0
    for text, result in zip(texts, got):
        spans = list(result.entities)
        spans += [m for rel in result.relations for m in (rel.head, rel.tail)]
        spans = [(m.name, m.start, m.end) for m in spans]
        spans += [(ev.trigger, ev.start, ev.end) for ev in result.events]
        spans += [(a.name, a.start, a.end) for ev in result.events for a in ev.arguments]
        for name, start, end in spans:
            assert start is not None and text[start:end] == name, (text, name)
            mentions += 1
        for ev in result.events:  # roles narrowed to the chosen type's
            assert all(a.role in synthetic.EVENT_ROLES[ev.type] for a in ev.arguments), ev
    assert mentions > 0


def test_bad_constrained_option_is_refused():
    with pytest.raises(ValueError, match="constrained must be one of"):
        random_extractor(constrained="gpu")


MESH_SCRIPT = r"""
import json, sys
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
from iuie.extraction.compiled import Compiler
from iuie.extraction.constrained import grammar_for
from iuie.model.grammar_mask import GrammarMask
from tests.extract.conftest import random_extractor

assert jax.device_count() == 2, jax.devices()
ext = random_extractor(seed=2, max_input_tokens=64, max_decode_length=24, batch_size=4)
texts = ["Anna Berg lives in Oslo .", "Atlas Motors fired x", "Oslo , Berg", "a b c"]
tokens = np.zeros((4, 32), np.int32)
for i, t in enumerate(texts):
    ids = ext._encode("NER", __import__("iuie.ie.records", fromlist=["Labels"]).Labels.from_json(["person", "location"], "NER"), "Find the entities.", t)
    tokens[i, : len(ids)] = ids[:32]
compiler = Compiler(ext.vocabulary, ext.config.vocab_size)
tables = compiler.tables([grammar_for("NER", t, ["person", "location"]) for t in texts[:3]], 4)  # row 3: padding

def decode(params, tokens, tables):
    return ext.model.predict_batch(params, {"encoder_input_tokens": tokens}, max_decode_length=24,
                                   logits_mask_fn=GrammarMask(tables))

single = np.asarray(jax.jit(decode)(ext.params, tokens, tables))
mesh = Mesh(np.array(jax.devices()), ("data",))
rows = NamedSharding(mesh, P("data"))
placed = jax.device_put((tokens, tables), rows)
sharded = jax.jit(decode, in_shardings=(None, rows, rows), out_shardings=rows)(ext.params, *placed)
print(json.dumps({"equal": bool((np.asarray(sharded) == single).all()),
                  "shards": len(sharded.addressable_shards),
                  "outputs": [ext.vocabulary.decode([t for t in r.tolist() if t > 1]) for r in single]}))
"""


def test_device_constraint_under_jit_on_a_two_device_mesh():
    """The batch (tokens and tables) split over a 2-device data axis decodes as on one device."""
    env = subprocess_env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    done = subprocess.run(
        [sys.executable, "-c", MESH_SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["shards"] == 2 and result["equal"], result
    # Constrained rows read as NER answers over their own sentence; the padding row is free.
    for output, text in zip(
        result["outputs"][:3], ["Anna Berg lives in Oslo .", "Atlas Motors fired x", "Oslo , Berg"]
    ):
        for item in output.split("; "):
            if item.strip() != "None" and ": " in item:
                assert item.split(": ", 1)[1] in text, (output, text)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    view=st.sampled_from(["NER", "RE"]),
    batch=st.lists(
        st.lists(st.sampled_from(SUBWORD_WORDS), min_size=1, max_size=8).map(" ".join), min_size=1, max_size=3
    ),
    words=st.booleans(),
    seed=st.integers(0, 2**31 - 1),
)
def test_device_masks_equal_host_masks_with_and_without_word_boundaries(compiler, mask_step, view, batch, words, seed):
    """Sentences whose words contain other words and separators (``Annaberg``, ``Oslo,x``): with the word
    boundary rule on, the device must forbid the same in-word starts and ends as the host; with it off, allow
    the same."""
    grammars = [grammar_for(view, s, ["person", "a"], word_boundaries=words) for s in batch]
    compare_masks(compiler, mask_step, grammars, seed, length=24)

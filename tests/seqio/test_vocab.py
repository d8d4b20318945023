"""The project's own SentencePiece vocabulary and the vocabulary the Tasks use.

Reference: the ``sentencepiece`` package's own processor, and seqio's ``SentencePieceVocabulary`` in both
of its encoders (Python and the TensorFlow op that Tasks run), which must agree.
"""

from __future__ import annotations

import os

import pytest
import sentencepiece as spm
import tensorflow as tf

import seqio_tasks
from iuie.pipeline import vocab

TEXTS = [
    "Text: Anna Berg visited Oslo . \nAnswer:",
    " person: Anna Berg; location: Oslo",
    " ( attack: raided,  Elena Olsen: attacker, Zurich: target) ",
    "Zoë, naïve café — 東京 🚀 {0} {braces} \t tab  two  spaces\n\nnewlines",
    "Option: Event type: ['attack', 'meet'], Arguments type: ['place']. \n",
    "",
]


def test_shipped_model_is_small_and_t5_shaped():
    assert os.path.isfile(vocab.DEFAULT_MODEL)
    assert os.path.getsize(vocab.DEFAULT_MODEL) < 500 * 1024
    sp = spm.SentencePieceProcessor(model_file=vocab.DEFAULT_MODEL)
    assert (sp.pad_id(), sp.eos_id(), sp.unk_id(), sp.bos_id()) == (0, 1, 2, -1)
    assert sp.get_piece_size() > 500
    for text in TEXTS:
        ids = sp.encode(text)
        assert 2 not in ids  # byte fallback: nothing is unknown
        assert sp.decode(ids) == text  # identity normalisation: lossless


def test_task_vocabulary_python_and_tf_agree(monkeypatch):
    monkeypatch.delenv(vocab.ENV_VOCAB, raising=False)
    v = vocab.get_vocabulary()
    assert v.sentencepiece_model_file == vocab.DEFAULT_MODEL and v.extra_ids == 0
    if not os.environ.get(vocab.ENV_VOCAB):
        assert seqio_tasks.VOCABULARY == v
    for text in TEXTS:
        py = v.encode(text)
        tf_ids = v.encode_tf(tf.constant(text)).numpy().tolist()
        assert py == tf_ids, text
        assert v.decode(py) == text
        # TF's detokenizer (tf_text) drops a leading space, which Python's decode keeps. The Evaluator
        # decodes predictions and targets in Python, so targets keep their leading space there.
        assert v.decode_tf(tf.constant(py, tf.int32)).numpy().decode() == text.lstrip(" ")


def test_iuie_vocab_selects_another_model(monkeypatch):
    from seqio import test_utils

    other = test_utils.sentencepiece_vocab().sentencepiece_model_file  # seqio's own T5-style test model
    monkeypatch.setenv(vocab.ENV_VOCAB, other)
    v = vocab.get_vocabulary()
    assert v.sentencepiece_model_file == other and v.extra_ids == vocab.T5_EXTRA_IDS
    monkeypatch.setenv(vocab.ENV_EXTRA_IDS, "0")
    assert vocab.get_vocabulary().extra_ids == 0


def test_build_is_deterministic_and_offline(tmp_path):
    sizes = {"train": 150, "dev": 20, "test": 20}
    a = vocab.build(tmp_path / "a.model", vocab_size=600, sizes=sizes)
    b = vocab.build(tmp_path / "b.model", vocab_size=600, sizes=sizes)
    with open(a, "rb") as fa, open(b, "rb") as fb:
        assert fa.read() == fb.read()
    info = vocab.describe(a)
    assert info["round_trip"] and (info["pad_id"], info["eos_id"], info["unk_id"]) == (0, 1, 2)
    assert vocab.main(["info", str(a)]) == 0


@pytest.mark.parametrize("text", TEXTS[:3])
def test_shipped_model_has_pieces_for_the_format(text):
    # The answer formats tokenize to few pieces: the model was trained on them.
    sp = spm.SentencePieceProcessor(model_file=vocab.DEFAULT_MODEL)
    assert len(sp.encode(text)) < len(text) / 2

"""The SentencePiece vocabulary of iuie's seqio Tasks, and the builder of the project's own small one.

Which model file the Tasks use (decided when ``seqio_tasks`` is imported, because a seqio Task holds its
vocabulary object from registration on):

1. ``IUIE_VOCAB``: a SentencePiece model path, e.g. the ``spiece.model`` of a Flan-T5 download. T5 models
   carry 100 sentinel ids after the pieces (Flan-T5's 32,100 ids), so this path gets ``extra_ids=100`` unless
   ``IUIE_VOCAB_EXTRA_IDS`` says otherwise.
2. Otherwise the project's own model, shipped as package data (:data:`DEFAULT_MODEL`, ``extra_ids=0``): a few
   thousand unigram pieces trained on the synthetic corpus and the default instruction texts, built by
   ``python -m iuie.pipeline.vocab build``. It exists so that the demo and the tests need no download.

Model gin files should take their vocabulary from :func:`get_vocabulary` too (``VOCABULARY =
@iuie.pipeline.vocab.get_vocabulary()``): seqio's ``SentencePieceVocabulary`` compares equal only for the same file
and the same ``extra_ids``, and T5X refuses a model whose vocabulary differs from the Task's.

The shipped model follows T5's id conventions (pad 0, eos 1, unk 2, no bos), with two differences that make
it lossless: ``byte_fallback`` (any character encodes, as UTF-8 bytes when no piece covers it, so nothing
becomes ``<unk>``) and no normalisation and no whitespace folding, so ``decode(encode(x)) == x`` for every
string, newlines and double spaces included. (SentencePiece's built-in ``identity`` rule leaves the model
without a character map, and every load of such a model, which seqio's TensorFlow ops do per batch, logs
"precompiled_charsmap is empty". The model is therefore built with a one-line rule that maps only the
private-use code point U+F8FF to U+F8FE: identity for every other character.) T5's own ``spiece.model``
normalises with NFKC and folds whitespace, so that round trip does not hold there.

This module imports seqio (and with it TensorFlow) only inside :func:`get_vocabulary`; building a model needs
only the ``sentencepiece`` package.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence

ENV_VOCAB = "IUIE_VOCAB"
ENV_EXTRA_IDS = "IUIE_VOCAB_EXTRA_IDS"
ASSETS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets")
DEFAULT_MODEL = os.path.join(ASSETS_DIR, "iuie_spm.model")
# T5 checkpoints reserve 100 sentinel ids after the SentencePiece pieces.
T5_EXTRA_IDS = 100
DEFAULT_VOCAB_SIZE = 3000
PAD_ID, EOS_ID, UNK_ID = 0, 1, 2


def vocabulary_path() -> str:
    """The model file the Tasks use: ``$IUIE_VOCAB`` when set, else the shipped :data:`DEFAULT_MODEL`."""
    return os.environ.get(ENV_VOCAB) or DEFAULT_MODEL


def default_extra_ids(path: str | None = None) -> int:
    """``$IUIE_VOCAB_EXTRA_IDS``, else 100 for an external (T5) model and 0 for the shipped one."""
    if os.environ.get(ENV_EXTRA_IDS):
        return int(os.environ[ENV_EXTRA_IDS])
    path = path or vocabulary_path()
    return 0 if os.path.abspath(path) == DEFAULT_MODEL else T5_EXTRA_IDS


def get_vocabulary(path: str | None = None, extra_ids: int | None = None):
    """A ``seqio.SentencePieceVocabulary`` (default: :func:`vocabulary_path`, :func:`default_extra_ids`).

    seqio reads the file lazily, on first encode or decode: this call touches no disk, so registering Tasks
    works before the model file is in place. A missing file fails at first use with a message naming it.
    """
    import seqio  # imported here: building a vocabulary must not pull in TensorFlow

    path = os.fspath(path) if path else vocabulary_path()
    if extra_ids is None:
        extra_ids = default_extra_ids(path)
    return seqio.SentencePieceVocabulary(path, extra_ids=extra_ids)


def checked_vocabulary(expected_size: int | None = None):
    """The Tasks' vocabulary (:func:`get_vocabulary`), refused when it does not have ``expected_size`` ids.

    For gin (``VOCABULARY = @vocab.checked_vocabulary()``): T5X refuses a model whose vocabulary differs from
    the Task's, and a checkpoint's embedding only makes sense with the vocabulary it was trained with:
    ``expected_size`` (ids, extra ids included; 32,100 for Flan-T5) turns a forgotten ``IUIE_VOCAB`` into an
    error that says so, instead of a silent mismatch.
    """
    vocabulary = get_vocabulary()
    if expected_size is not None and vocabulary.vocab_size != expected_size:
        raise ValueError(
            f"this experiment needs a vocabulary of {expected_size} ids, but iuie's Tasks use "
            f"{vocabulary_path()} with {vocabulary.vocab_size}: set {ENV_VOCAB} to the "
            "SentencePiece model of the checkpoint (Flan-T5: gs://t5-data/vocabs/cc_all.32000.100extra/"
            "sentencepiece.model, or the spiece.model of a Flan-T5 download; copy it to local disk)"
        )
    return vocabulary


def vocabulary_size(multiple: int = 128) -> int:
    """The Tasks' vocabulary size (``IUIE_VOCAB`` or iuie's own model, extra ids included) rounded up to
    ``multiple``: the embedding rows of the model, as T5X rounds 32,100 up to 32,128 for Flan-T5."""
    size = get_vocabulary().vocab_size
    return -(-size // multiple) * multiple


# --------------------------------------------------------------------------------------------------------
# Building the project's own model
# --------------------------------------------------------------------------------------------------------


def training_texts(seed: int = 0, sizes: dict[str, int] | None = None) -> Iterator[str]:
    """The text the shipped model is trained on: every view of the synthetic corpus, and every instruction.

    Each synthetic record is formatted as all the task views its folder serves (with each default
    instruction in turn), so the pieces cover the option lists, the answer formats (``"type: word; ..."``,
    ``" ( type: trigger, ...) "``) and the words of the corpus. Deterministic for a given seed.
    """
    from iuie.ie import formats, instructions, synthetic

    instruction_set = instructions.DEFAULT_INSTRUCTIONS
    for view in instructions.VIEWS:
        yield from instruction_set.get(view)
    with tempfile.TemporaryDirectory(prefix="iuie-vocab-") as root:
        folders = synthetic.generate(root, seed=seed, sizes=sizes)
        for folder in folders:
            labels = folder.labels()
            views = [v for v, task in formats.SOURCE_TASK.items() if task == folder.task]
            for split in folder.splits:
                recs, _ = folder.load(split)
                for i, record in enumerate(recs):
                    for view in views:
                        texts = instruction_set.get(view)
                        example = formats.format_view(view, record, labels, texts[i % len(texts)])
                        yield example.inputs
                        yield example.targets
                        yield example.ground_truth
    # A little ordinary English, so that common words and punctuation of real datasets get whole pieces
    # rather than bytes. Kept in the source so that the build stays offline and reproducible.
    yield from _GENERAL_TEXT


_GENERAL_TEXT = (
    "The company said on Monday that its profit rose in the third quarter, beating analysts' expectations.",
    "Researchers at the university found that the protein binds to the receptor in patients with the disease.",
    "The president met the prime minister in the capital to discuss trade, security and climate policy.",
    "Police arrested two men after an attack near the station; one of them was carrying a weapon.",
    "The film, directed by a famous director, won three awards at the festival and stars a young actor.",
    "Patients were treated with 50 mg of the drug daily, and 12 % of them reported nausea or headache.",
    "Hackers stole the personal data of millions of customers in a breach discovered last year.",
    "The river flows through the city before it reaches the sea near the old harbour.",
    "I'd like to book a table for two at an Italian restaurant with outdoor seating tonight.",
    "Who played the lead role in the 1990s science fiction movie about time travel?",
    "Music, literature, politics, science and artificial intelligence are the domains of the new benchmark.",
    "He was born in 1956, studied law, and worked for the government until he joined the firm in 2001.",
    "Officials from the ministry of defence confirmed that the soldiers had been killed in the explosion.",
    "Shares of the bank fell sharply after the central bank raised interest rates by half a percentage point.",
    "The committee will vote next week on the proposal to build a new hospital in the northern region.",
    "The election results showed that the opposition party won a majority of seats in parliament.",
    "Thousands of people gathered in the square to protest against the new law on Saturday morning.",
    "The team scored twice in the second half and won the championship for the first time since 1998.",
    "Mutations in this gene were associated with an increased risk of breast cancer and other tumours.",
    "Expression of the transcription factor was induced by interleukin stimulation in human T cells.",
    "The patient developed severe liver toxicity and renal failure after receiving high doses of the drug.",
    "Chronic exposure to the compound caused inflammation of the lung tissue in mice and rats.",
    "The enzyme catalyses the oxidation of glucose, and its activity depends on the concentration of calcium.",
    "Adverse events included rash, fever, vomiting, dizziness and a decrease in blood pressure.",
    "The attackers exploited a vulnerability in the software to gain access to the server and encrypt files.",
    "A ransomware campaign targeted hospitals, demanding payment in bitcoin to restore their systems.",
    "The security researchers released a patch after the phishing emails spread malware across the network.",
    "We propose a neural network model for information extraction that learns from instructions.",
    "Our method outperforms previous approaches on named entity recognition and relation classification.",
    "The algorithm uses reinforcement learning and a convolutional architecture to improve image recognition.",
    "Experiments on several benchmark datasets show that the proposed system achieves higher accuracy.",
    "The novel, written by an American author, tells the story of a family during the civil war.",
    "The poet published her first collection of poems in London and later won a literary prize.",
    "The band released their debut album in 1975; the guitarist and the singer wrote most of the songs.",
    "The orchestra performed the symphony, and the composer conducted the final movement himself.",
    "Astronomers observed the galaxy with a telescope and measured the chemical elements in its stars.",
    "The theory of evolution explains how species change through natural selection over generations.",
    "Show me a comedy from the eighties with a good soundtrack that was rated PG-13.",
    "Is there a cheap sushi place nearby that is open after midnight and has parking?",
    "Find a vegetarian restaurant within five miles with good reviews and reasonable prices.",
    "What year did that animated movie come out and which studio produced it?",
    "lol just saw the new trailer, can't wait for the movie!! #excited @friend",
    "Flooding on the highway near Houston, roads closed, please stay safe everyone #Harvey",
    "The truck was parked next to a white sedan with a red license plate at the intersection.",
    "The machine was calibrated before the welding process to reduce defects in the aluminium parts.",
    "She works as a manager at a software company headquartered in Seattle, Washington.",
    "The city is located on the eastern coast of the country, about 200 kilometres from the border.",
    "The founder of the organisation, a former journalist, lives in Paris with his wife and children.",
    "The airline announced that it would acquire its smaller rival for 2.5 billion dollars in cash.",
    "According to the report, the two leaders discussed the ceasefire and the release of prisoners.",
    "Entity, relation, event, trigger, argument, role, type, option, answer, sentence, text, label, none.",
)


# The only normalisation: a private-use code point to its neighbour (see the module docstring for why).
NORMALIZATION_RULE = "F8FF\tF8FE\n"


def build(
    output: str | os.PathLike = DEFAULT_MODEL,
    *,
    vocab_size: int = DEFAULT_VOCAB_SIZE,
    seed: int = 0,
    extra_texts: Iterable[str] = (),
    sizes: dict[str, int] | None = None,
) -> str:
    """Trains the project's SentencePiece model and writes it to ``output``; returns the path.

    Unigram model like T5's; pad 0, eos 1, unk 2, no bos; ``byte_fallback``, no normalisation (but for
    ``NORMALIZATION_RULE``) and no whitespace folding (see the module docstring). ``vocab_size`` is an upper bound
    (``hard_vocab_limit=False``): a small corpus cannot always fill it. One thread and no input sampling,
    so the same inputs give the same file.
    """
    import sentencepiece as spm

    sentences = [t for t in list(training_texts(seed, sizes)) + list(extra_texts) if t.strip()]
    # SentencePiece reads one sentence per line: a text holding newlines becomes several sentences, which is
    # harmless for piece statistics; "\n" itself is encoded with byte fallback.
    lines = [line for t in sentences for line in t.split("\n") if line.strip()]
    model = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp_dir:
        rule_path = os.path.join(tmp_dir, "rule.tsv")
        with open(rule_path, "w", encoding="utf-8") as f:
            f.write(NORMALIZATION_RULE)
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type="unigram",
            vocab_size=vocab_size,
            hard_vocab_limit=False,
            character_coverage=1.0,
            byte_fallback=True,
            normalization_rule_tsv=rule_path,
            remove_extra_whitespaces=False,
            add_dummy_prefix=True,
            allow_whitespace_only_pieces=True,
            split_digits=True,
            pad_id=PAD_ID,
            eos_id=EOS_ID,
            unk_id=UNK_ID,
            bos_id=-1,
            pad_piece="<pad>",
            eos_piece="</s>",
            unk_piece="<unk>",
            input_sentence_size=0,
            shuffle_input_sentence=False,
            num_threads=1,
            seed_sentencepiece_size=200_000,
            max_sentence_length=16_384,
            minloglevel=2,
        )
    # The trainer records the rule file's (temporary) path in the model; drop it so builds are reproducible.
    from sentencepiece import sentencepiece_model_pb2

    proto = sentencepiece_model_pb2.ModelProto.FromString(model.getvalue())
    proto.normalizer_spec.ClearField("normalization_rule_tsv")
    output = os.fspath(output)
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    tmp = f"{output}.tmp"
    with open(tmp, "wb") as f:
        f.write(proto.SerializeToString(deterministic=True))
    os.replace(tmp, output)
    return output


def describe(path: str | os.PathLike | None = None) -> dict[str, object]:
    """Size, special ids and a round-trip check of a model file (what ``python -m iuie.pipeline.vocab info`` prints)."""
    import sentencepiece as spm

    path = os.fspath(path) if path else vocabulary_path()
    sp = spm.SentencePieceProcessor(model_file=path)
    probe = "Text: Zoë met  Anna Berg in Zürich \n Answer: person: Anna Berg; location: Zürich {0}"
    return {
        "path": path,
        "bytes": os.path.getsize(path),
        "pieces": sp.get_piece_size(),
        "pad_id": sp.pad_id(),
        "eos_id": sp.eos_id(),
        "unk_id": sp.unk_id(),
        "bos_id": sp.bos_id(),
        "round_trip": sp.decode(sp.encode(probe)) == probe,
        "probe_tokens": len(sp.encode(probe)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m iuie.pipeline.vocab", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="train the project's SentencePiece model (offline, deterministic)")
    b.add_argument("--output", default=DEFAULT_MODEL, help="model file to write (default: the shipped one)")
    b.add_argument("--vocab-size", type=int, default=DEFAULT_VOCAB_SIZE, help="upper bound on pieces")
    b.add_argument("--seed", type=int, default=0, help="seed of the synthetic corpus it is trained on")
    b.add_argument(
        "--extra-text",
        action="append",
        default=[],
        help="a text file whose lines are added to the training text (repeatable)",
    )
    i = sub.add_parser("info", help="describe a model file (default: the one the Tasks use)")
    i.add_argument("path", nargs="?", default=None)
    args = parser.parse_args(argv)
    if args.command == "build":
        extra: list[str] = []
        for path in args.extra_text:
            with open(path, encoding="utf-8") as f:
                extra.extend(f.read().splitlines())
        out = build(args.output, vocab_size=args.vocab_size, seed=args.seed, extra_texts=extra)
        print(describe(out))
        return 0
    print(describe(args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())

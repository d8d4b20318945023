"""What one text costs the server's decode by rows per call: the ceiling of what dynamic batching can win.

For each row count (default 1, 2, 4, 8, 16, 32) an ``Extractor`` with that ``batch_size`` extracts the same
``--texts`` synthetic test sentences (NER, the corpus's labels, as ``bench/serve_load.py`` sends them), in
rounds that visit every row count in turn (A B C ... A B C ..., so load from other processes hits all alike).
Printed per row count, in milliseconds per text (min and median over rounds): the whole ``Extractor.extract``
(what a server request pays for its text, Python included), and apart from it, on ``rows`` real prompts,
the encoder alone (``EncoderDecoderModel.encode``) and the whole jitted greedy decode
(``predict_batch``: encoder, cache set-up and the decoder loop), with the mean decoder steps per call (a
call runs until its longest output ends). Batching can win at most ``per-text(1 row) / per-text(rows)`` on
the model side, whatever the server does.

    python bench/batch_decode_scaling.py --checkpoint /tmp/iuie_demo/model

Everything is compiled before timing; every loop is bounded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus(limit: int) -> tuple[list[str], list[str]]:
    """Test sentences and entity types of iuie's synthetic corpus (what the demo model was trained on)."""
    from iuie.ie import synthetic

    folders = synthetic.generate(tempfile.mkdtemp(prefix="decode_scaling_"))
    folder = next(f for f in folders if f.task == "NER")
    records, _ = folder.load("test", strict=True, limit=limit)
    return [r.sentence for r in records], sorted({e.type for r in records for e in r.entities})


def timed(fn, *args) -> float:
    start = time.perf_counter()
    out = fn(*args)
    import jax

    jax.block_until_ready(out)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--rows", default="1,2,4,8,16,32")
    parser.add_argument("--texts", type=int, default=64, help="texts extracted per row count and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-input-tokens", type=int, default=128)
    parser.add_argument("--max-decode-length", type=int, default=64)
    args = parser.parse_args()
    sys.path.insert(0, REPO)

    import jax
    import jax.numpy as jnp

    from iuie.extraction.extractor import TASKS, Extractor, load_checkpoint
    from iuie.ie.records import Labels
    from iuie.interop.hf import make_config
    from iuie.pipeline import vocab as vocab_lib

    params, fields, _ = load_checkpoint(args.checkpoint)
    config = make_config({**fields, "dtype": "float32", "dropout_rate": 0.0})
    vocabulary = vocab_lib.get_vocabulary(None)
    texts, labels = corpus(args.texts)
    texts = (texts * (args.texts // max(len(texts), 1) + 1))[: args.texts]
    sizes = [int(r) for r in args.rows.split(",")]
    options = dict(max_input_tokens=args.max_input_tokens, max_decode_length=args.max_decode_length)
    extractors = {rows: Extractor(params, config, vocabulary, batch_size=rows, **options) for rows in sizes}

    # The prompts as the model sees them, to time the encoder and one decoder step on real rows.
    any_extractor = extractors[sizes[0]]
    view = TASKS["ner"]
    prompts = [
        any_extractor._encode(view, Labels.from_json(labels, view), any_extractor.instructions.choose(view), t)
        for t in texts
    ]
    width = any_extractor._bucket(max(len(p) for p in prompts))
    print(
        f"{len(texts)} texts, prompts of {min(map(len, prompts))}-{max(map(len, prompts))} tokens "
        f"(mean {statistics.mean(map(len, prompts)):.0f}) padded to {width}; jax {jax.__version__} on "
        f"{jax.default_backend()}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    model = any_extractor.model
    encode = jax.jit(model.encode)
    length = args.max_decode_length

    def batch_of(rows: int) -> np.ndarray:
        tokens = np.zeros((rows, width), np.int32)
        for i in range(rows):
            p = prompts[i % len(prompts)]
            tokens[i, : len(p)] = p
        return tokens

    predict = jax.jit(lambda p, t: model.predict_batch(p, {"encoder_input_tokens": t}, max_decode_length=length))
    batches = {rows: jnp.asarray(batch_of(rows)) for rows in sizes}
    for rows in sizes:  # compile everything before timing
        jax.block_until_ready(encode(params, batches[rows]))
        jax.block_until_ready(predict(params, batches[rows]))
        extractors[rows].extract(texts, "ner", labels)

    per_text = {rows: [] for rows in sizes}
    enc = {rows: [] for rows in sizes}
    dec = {rows: [] for rows in sizes}
    for _ in range(args.rounds):
        for rows in sizes:
            per_text[rows].append(timed(extractors[rows].extract, texts, "ner", labels) / len(texts))
            enc[rows].append(min(timed(encode, params, batches[rows]) for _ in range(3)) / rows)
            dec[rows].append(min(timed(predict, params, batches[rows]) for _ in range(3)) / rows)
    decode_steps = {}
    for rows in sizes:  # decoder steps per call: the longest output of each call's rows, plus its EOS step
        outputs = [
            len(vocabulary.encode(r.outputs[0])) + 1 if r.outputs else 1
            for r in extractors[rows].extract(texts, "ner", labels)
        ]
        calls = [outputs[i : i + rows] for i in range(0, len(outputs), rows)]
        decode_steps[rows] = statistics.mean(max(c) for c in calls)

    base = min(per_text[sizes[0]])
    ms = lambda xs: f"{min(xs) * 1e3:>6.2f} {statistics.median(xs) * 1e3:>6.2f}"  # noqa: E731
    print(
        f"\n{'rows':>4} | {'extract ms/text':>15} | {'encoder ms/text':>15} | {'decode ms/text':>14} | "
        f"{'steps/call':>10} | {'extract speed-up vs ' + str(sizes[0]) + ' row':>24}"
    )
    print(f"{'':>4} | {'min median':>15} | {'min median':>15} | {'min median':>14} |")
    for rows in sizes:
        print(
            f"{rows:>4} | {ms(per_text[rows]):>15} | {ms(enc[rows]):>15} | {ms(dec[rows]):>14} | "
            f"{decode_steps[rows]:>10.1f} | {base / min(per_text[rows]):>24.2f}"
        )
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

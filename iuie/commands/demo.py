"""Run the main job on the embedded default: train a tiny FlanT5 on the synthetic corpus, evaluate, report.

The demo needs no data, no weights and no network. By default it trains the tiny model of
``t5x_configs/demo_cpu.gin`` from scratch on the synthetic corpus's NER and RE views (``python -m
iuie.train`` with that file), evaluates it on the synthetic test split in both metric modes (free
decoding, the paper's setting), decodes the test split again with constrained decoding (``iuie extract
--constrained``: only option labels and whole-word spans of the sentence), and prints the reports and whether strict F1
reached the demo's target (:data:`TARGET_F1`, constrained) and floor (:data:`FREE_FLOOR_F1`, free). The
corpus holds out its test mentions (no test mention occurs in train, ``docs/demo.md``), so these are F1 on
unseen mentions; exit status 1 when a target or floor is missed. Everything lands in
``--workdir`` (default ``./iuie_demo``): run it again and training resumes from the last checkpoint.

``--quick`` skips training: it formats the test split of every view (the strings a model is trained on)
and scores two sets of "predictions" in both metric modes:

* ``gold``: each target string itself, parsed back: every view scores 100;
* ``perturbed``: targets rendered from deliberately damaged records (a dropped mention, a wrong type, a
  shifted mention, a hallucinated one), seeded, so the tables show what each mode counts.

Printed: the per-dataset tables of both modes and one formatted example per view.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import sys
import tempfile
from collections.abc import Sequence

from iuie.ie import formats, instructions, metrics, parsing, report, synthetic
from iuie.ie import records as R

# Every view, with the layout folder it reads.
VIEWS = instructions.VIEWS
# What a perturbed prediction invents: a mention that occurs nowhere in any synthetic sentence.
HALLUCINATION = "Zanzibar Widget"


# The demo's quality targets: strict F1 on the held-out test split (unseen mentions) with constrained decoding
# (what `iuie extract --constrained` returns: only option labels and whole-word spans of the sentence can be
# generated). The 600-step demo measured NER 86.50, RE 89.98 (docs/demo.md); the targets sit under that, so
# that a miss means a broken run. (The 90 the demo once reached for both was on names seen in training.)
TARGET_F1 = {"NER": 80.0, "RE": 80.0}
# Free decoding (the paper's setting, the training-time evaluation) of the same model scores far lower on
# unseen mentions (NER 69.4, RE 77.9): the from-scratch model copies the first part of a two-part name and
# invents the second. Its floor is set under that, likewise.
FREE_FLOOR_F1 = {"NER": 60.0, "RE": 65.0}
DEMO_GIN = "t5x_configs/demo_cpu.gin"
# The tasks the demo trains, as `iuie extract` names them.
EXTRACT_TASKS = {"NER": "ner", "RE": "re"}
CONSTRAINED_REPORT = "constrained_strict.json"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--quick", action="store_true", help="no training: format every view and score gold and perturbed predictions"
    )
    parser.add_argument(
        "--workdir",
        help="where to write the corpus and the model (default ./iuie_demo; with --quick a temporary folder)",
    )
    parser.add_argument(
        "--gin",
        action="append",
        default=[],
        metavar="BINDING",
        help="extra gin binding for training, e.g. --gin 'TRAIN_STEPS = 100' (repeatable)",
    )
    parser.add_argument("--seed", type=int, default=0, help="--quick: corpus and perturbation seed (default 0)")
    parser.add_argument("--test-size", type=int, default=300, help="--quick: test sentences per task (default 300)")
    parser.add_argument("--json", help="--quick: also write the scores of both modes as JSON to this file")


def _perturb_entities(
    entities: Sequence[R.Entity], types: Sequence[str], rng: random.Random, sentence: str
) -> tuple[R.Entity, ...]:
    out = list(entities)
    roll = rng.random()
    if out and roll < 0.15:
        out.pop(rng.randrange(len(out)))  # a missed mention: FN
    elif out and roll < 0.25:
        i = rng.randrange(len(out))
        other = [t for t in types if t != out[i].type] or [out[i].type]
        out[i] = dataclasses.replace(out[i], type=rng.choice(other))  # wrong type: FP + FN
    elif out and roll < 0.32:
        i = rng.randrange(len(out))
        e = out[i]
        if " " in e.name:  # a boundary error: the last word is lost
            name = e.name.rsplit(" ", 1)[0]
            out[i] = dataclasses.replace(e, name=name, end=e.start + len(name))
    elif roll < 0.37 and types:
        out.append(R.Entity(HALLUCINATION, rng.choice(list(types)), 0, 0))  # not in the sentence
    return tuple(out)


def perturb(record: R.Record, labels: R.Labels, rng: random.Random) -> R.Record:
    """A damaged copy of ``record``: what an imperfect model might have produced (module docstring)."""
    entities = _perturb_entities(record.entities, labels.types, rng, record.sentence)
    relations = list(record.relations)
    if relations and rng.random() < 0.3:
        i = rng.randrange(len(relations))
        if rng.random() < 0.5:
            relations.pop(i)
        else:
            other = [t for t in labels.types if t != relations[i].type] or [relations[i].type]
            relations[i] = dataclasses.replace(relations[i], type=rng.choice(other))
    events = []
    for event in record.events:
        args = list(event.arguments)
        roll = rng.random()
        if args and roll < 0.2:
            args.pop(rng.randrange(len(args)))
        elif roll < 0.28:
            event = dataclasses.replace(event, trigger=HALLUCINATION)
        events.append(dataclasses.replace(event, arguments=tuple(args)))
    return dataclasses.replace(record, entities=entities, relations=tuple(relations), events=tuple(events))


def run_demo(workdir: str, seed: int = 0, test_size: int = 300, out=sys.stdout) -> dict[str, report.Report]:
    folders = {
        f.task: f for f in synthetic.generate(workdir, seed=seed, sizes={"train": 200, "dev": 50, "test": test_size})
    }
    print(f"synthetic corpus written to {workdir}", file=out)
    reports = {mode: report.Report(mode) for mode in ("strict", "reference")}
    examples = {}
    for view in VIEWS:
        folder = folders[formats.SOURCE_TASK[view]]
        labels = folder.labels()
        recs, load_report = folder.load("test", strict=True)
        instruction = instructions.DEFAULT_INSTRUCTIONS.choose(view)
        rng = random.Random(f"{seed}:{view}")
        golds, gold_texts, perturbed_texts = [], [], []
        for rec in recs:
            ex = formats.format_view(view, rec, labels, instruction)
            golds.append(metrics.Gold(view, rec, ex.ground_truth))
            gold_texts.append(ex.targets)
            damaged = perturb(rec, labels, rng)
            if view == "EEA" and len(damaged.events) != 1:
                damaged = rec
            perturbed_texts.append(formats.format_view(view, damaged, labels, instruction).targets)
            examples.setdefault(view, ex)
        for mode, rep in reports.items():
            for name, texts in (("synthetic (gold)", gold_texts), ("synthetic (perturbed)", perturbed_texts)):
                parsed = [parsing.parse(view, t, labels.raw, sentence=g.record.sentence) for t, g in zip(texts, golds)]
                rep.add(view, name, metrics.score(view, golds, parsed, mode, labels=labels.raw))
    print("\nOne example per view (inputs -> targets):", file=out)
    for view, ex in examples.items():
        print(f"\n[{view}] {ex.inputs!r}\n   -> {ex.targets!r}", file=out)
    for mode, rep in reports.items():
        print(f"\n==== {mode} mode ====\n", file=out)
        print(rep.to_text(), file=out)
    print(
        "Note: in reference mode the gold RE and EPR rows miss the NA pairs that the reference lists in its "
        "ground truth\nbut no target contains; its NA rule never fires on the current target format "
        "(docs/metrics.md).",
        file=out,
    )
    return reports


def strict_f1(eval_dir: str) -> dict[str, float]:
    """NER and RE strict F1 (averaged over datasets) of one evaluation folder (``<model>/eval/step_N``).

    The synthetic test split holds out names and templates (iuie.ie.synthetic), so these are F1 on unseen
    mentions."""
    import json

    with open(os.path.join(eval_dir, "report_strict.json"), encoding="utf-8") as f:
        strict = json.load(f)
    return {task: float(strict.get(task, {}).get("Average", {}).get("f1", 0.0)) for task in ("NER", "RE")}


def constrained_scores(model_dir: str, corpus: str, batch_size: int = 32) -> dict[str, dict]:
    """Strict scores of the trained model on the test split of NER and RE, decoded with device-constrained
    decoding (:class:`iuie.extraction.extractor.Extractor`, ``constrained=True``) at the lengths the model
    was trained with; per task the metrics of :func:`iuie.ie.metrics.score` plus ``unaligned`` (mentions
    found nowhere in their sentence: 0 when constrained) and ``sentences``."""
    import warnings

    from iuie.extraction.extractor import Extractor, WindowWarning
    from iuie.interop import reader

    trained = reader.read_trained_lengths(model_dir)
    if trained is None:
        raise ValueError(f"{model_dir} records no trained feature lengths (no run info or operative config)")
    extractor = Extractor.from_checkpoint(
        model_dir, constrained=True, max_decode_length=trained[0]["targets"], batch_size=batch_size
    )
    scores = {}
    for view, task in EXTRACT_TASKS.items():
        folder = R.DatasetFolder(corpus, view, synthetic.DATASET_NAME)
        labels = folder.labels()
        recs, _ = folder.load("test", strict=True)
        with warnings.catch_warnings():  # the counts are reported below, not as a warning per task
            warnings.simplefilter("ignore", WindowWarning)
            results = extractor.extract([r.sentence for r in recs], task=task, labels=list(labels.types))
        if any(len(r.outputs) != 1 for r in results):  # a test sentence longer than one window
            raise ValueError(f"{folder}: a test sentence did not fit one {extractor.max_input_tokens}-token window")
        instruction = instructions.DEFAULT_INSTRUCTIONS.choose(view)
        golds = [metrics.Gold(view, r, formats.format_view(view, r, labels, instruction).ground_truth) for r in recs]
        outputs = [r.outputs[0] for r in results]
        scores[view] = {
            **metrics.score(view, golds, outputs, "strict", labels=list(labels.types)),
            "unaligned": sum(r.unaligned for r in results),
            # Answers that reached the decode budget without ending (a model repeating an item), parsed as
            # far as they go.
            "cut_outputs": int(extractor.last_stats["cut_outputs"]),
            "sentences": len(recs),
        }
    return scores


def last_eval_dir(model_dir: str) -> str | None:
    """The newest ``<model_dir>/eval/step_N`` folder, or None."""
    import glob

    evals = sorted(glob.glob(os.path.join(model_dir, "eval", "step_*")), key=lambda p: int(p.rsplit("_", 1)[1]))
    return evals[-1] if evals else None


def train_demo(workdir: str, bindings: Sequence[str] = (), out=sys.stdout) -> int:
    """Trains and evaluates the demo model (module docstring); returns a process exit status."""
    from iuie import train
    from iuie.pipeline import seqio_data

    workdir = os.path.abspath(workdir)
    model_dir = os.path.join(workdir, "model")
    corpus = os.path.join(workdir, "synthetic")
    if os.path.isdir(os.path.join(corpus, "NER")) and seqio_data.synthetic_stamp(corpus) is None:
        # A workdir of an older demo: its corpus shares names between train and test (no stamp then), and its
        # model was trained on it, so resuming there would report F1 on seen names as F1 on unseen ones.
        print(
            f"iuie demo: {corpus} was written by an older iuie demo (no {seqio_data.SYNTHETIC_STAMP}; its test "
            f"names occur in training): remove {workdir} or pass another --workdir",
            file=sys.stderr,
        )
        return 2
    argv = [
        f"--gin_file={DEMO_GIN}",
        f"--gin.MODEL_DIR='{model_dir}'",
        f"--gin.iuie.pipeline.seqio_data.data_options.synthetic_dir='{corpus}'",
    ]
    argv += [f"--gin_bindings={b}" for b in bindings]
    print(f"iuie demo: training the tiny FlanT5 of {DEMO_GIN} in {model_dir}", file=out, flush=True)
    status = train.main(argv)
    if status:
        return status
    last = last_eval_dir(model_dir)
    if last is None:
        print("iuie demo: training wrote no evaluation", file=sys.stderr)
        return 1
    for mode in ("strict", "reference"):
        with open(os.path.join(last, f"report_{mode}.txt"), encoding="utf-8") as f:
            print(f"\n==== {mode} mode ({os.path.basename(last)}, synthetic test split) ====\n{f.read()}", file=out)
    print(f"iuie demo: decoding the test split again, constrained ({last})", file=out, flush=True)
    constrained = constrained_scores(model_dir, corpus)
    with open(os.path.join(last, CONSTRAINED_REPORT), "w", encoding="utf-8") as f:
        json.dump(constrained, f, indent=1)
    reached = True
    print("\nstrict F1 on the synthetic test split, mentions unseen in training:", file=out)
    for task, free in strict_f1(last).items():
        c = constrained[task]
        ok = c["f1"] >= TARGET_F1[task] and free >= FREE_FLOOR_F1[task]
        reached &= ok
        print(
            f"{task} strict F1 {c['f1']:.2f} constrained (P {c['precision']:.2f} R {c['recall']:.2f}, "
            f"{c['cut_outputs']} of {c['sentences']} answers cut at the decode budget; target "
            f"{TARGET_F1[task]:.0f}), {free:.2f} free (floor {FREE_FLOOR_F1[task]:.0f}): "
            f"{'reached' if ok else 'NOT reached'}",
            file=out,
        )
    print(f"predictions (free): {os.path.join(last, 'predict_eval_predictions.jsonl')}", file=out)
    print(f"constrained scores: {os.path.join(last, CONSTRAINED_REPORT)}", file=out)
    _write_plots(model_dir, out)
    return 0 if reached else 1


def _write_plots(run_dir: str, out=sys.stdout) -> None:
    """The figures of ``iuie report`` (F1 bars beside the tables, training curves); skipped, saying so, when
    matplotlib is not installed."""
    try:
        from iuie.reporting.plots import plot_run
    except ImportError as e:
        print(f"iuie demo: no figures ({e.name} is missing: pip install 'iuie[serve]')", file=out)
        return
    for path in plot_run(run_dir):
        print(f"figure: {path}", file=out)


def run(args: argparse.Namespace) -> int:
    if not args.quick:
        return train_demo(args.workdir or "iuie_demo", args.gin)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
        reports = run_demo(args.workdir, args.seed, args.test_size)
        for mode, rep in reports.items():
            with open(os.path.join(args.workdir, f"report_{mode}.json"), "w", encoding="utf-8") as f:
                json.dump(rep.to_json(), f, indent=1)
        _write_plots(args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="iuie_demo_") as tmp:
            reports = run_demo(tmp, args.seed, args.test_size)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({mode: rep.to_json() for mode, rep in reports.items()}, f, indent=1)
    return 0

"""List the registered seqio Mixtures, or show a Mixture's examples and token-length statistics.

    iuie mixtures                          # every iuie Mixture: its Tasks, rates and examples per split
    iuie mixtures --name iuie_eval_ner     # one Mixture (or Task)
    iuie mixtures show iuie_supervised --split train -n 3
    iuie mixtures lengths iuie_supervised  # per Task and overall: the lengths covering p95 / p99 / max

Datasets are read from ``$IUIE_DATA_DIR`` (or ``--data-dir``); a dataset missing there is named, and the
rest are listed and shown without it. Token lengths count the vocabulary's pieces plus EOS, untruncated, so
the statistics say how much the usual 512 input / 50 target lengths would cut. The list shows, per Task, the
share of a seeded sample (``--sample`` examples, 0 to skip) whose inputs or targets exceed
``--input-length`` / ``--target-length``: what training would truncate (or drop, with ``DROP_OVERLONG``).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        nargs="?",
        choices=("list", "show", "lengths"),
        default="list",
        help="list (default), show, or lengths",
    )
    parser.add_argument("name", nargs="?", help="the Mixture or Task to show (show), or to list alone")
    parser.add_argument("--name", dest="name_option", help="list only this Mixture or Task")
    parser.add_argument("--data-dir", help="the IE INSTRUCTIONS root (default: $IUIE_DATA_DIR)")
    parser.add_argument("--split", default="train", help="split to show (default train)")
    parser.add_argument("-n", type=int, default=3, help="examples to print (default 3)")
    parser.add_argument(
        "--max-examples", type=int, default=2000, help="examples read for the length statistics (default 2000)"
    )
    parser.add_argument("--input-length", type=int, default=512, help="input budget for the truncation share")
    parser.add_argument("--target-length", type=int, default=50, help="target budget for the truncation share")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed of the Mixture's rates")
    parser.add_argument(
        "--sample", type=int, default=200, help="examples per Task sampled for the over-length share (0: skip)"
    )


def _tasks_of(entry) -> list:
    import seqio

    return list(entry.tasks) if isinstance(entry, seqio.Mixture) else [entry]


def _present(task, split: str | None = None) -> tuple[bool, str]:
    """Whether the Task's data is on disk, and else the path it expected."""
    from iuie.pipeline import seqio_data

    source = task.source
    splits = [split] if split else list(source.splits)
    try:
        for s in splits:
            if s in source.splits and hasattr(source, "split_path"):
                source.split_path(s)
    except seqio_data.DataNotFoundError:
        return False, f"not found: {source.dataset_dir(split)}"
    return True, ""


def _rate(entry, task) -> float | None:
    import seqio

    if not isinstance(entry, seqio.Mixture):
        return None
    return float(entry.get_rate(task))


def _sample_lengths(task, count: int, seed: int, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Token lengths (with EOS, untruncated) of a seeded sample of ``count`` examples of a Task's split."""
    from iuie.pipeline import train_input

    key = (task.name, count, seed, split)
    if key in _SAMPLED:  # a Task listed under several Mixtures is tokenized once
        return _SAMPLED[key]
    examples = train_input.TaskExamples(task, split)
    numbers = np.random.default_rng(seed).permutation(examples.size)[: max(0, count)]
    pairs = examples.get(sorted(numbers.tolist()))
    _SAMPLED[key] = np.array([len(a) for a, _ in pairs]), np.array([len(b) for _, b in pairs])
    return _SAMPLED[key]


_SAMPLED: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}


def _list(names: Iterable[str], args: argparse.Namespace | None = None) -> int:
    import seqio

    missing_any = {}
    for name in names:
        entry = seqio.get_mixture_or_task(name)
        tasks = _tasks_of(entry)
        print(f"\n{name}  ({len(tasks)} task{'s' if len(tasks) != 1 else ''})")
        sample = getattr(args, "sample", 0) if args is not None else 0
        over = f" {'over in':>8} {'over tgt':>8}" if sample else ""
        print(f"  {'task':<44} {'rate':>9}{over} {'train':>8} {'validation':>10} {'test':>8}")
        for task in sorted(tasks, key=lambda t: t.name):
            ok, why = _present(task)
            counts = []
            for split in ("train", "validation", "test"):
                if split not in task.source.splits:
                    counts.append("-")
                    continue
                try:
                    counts.append(str(task.source.num_input_examples(split)))
                except Exception:  # a missing split file: reported below with its path
                    counts.append("missing")
                    ok, why = False, why or _present(task, split)[1]
            rate = "-" if not ok else ("" if _rate(entry, task) is None else f"{_rate(entry, task):.1f}")
            shares = f" {'-':>8} {'-':>8}" if sample else ""
            if sample and ok and "train" in task.source.splits:
                li, lt = _sample_lengths(task, sample, args.seed)
                shares = f" {np.mean(li > args.input_length):>8.1%} {np.mean(lt > args.target_length):>8.1%}"
            print(f"  {task.name:<44} {rate:>9}{shares} {counts[0]:>8} {counts[1]:>10} {counts[2]:>8}")
            if not ok:
                missing_any[task.name] = why
    if missing_any:
        print(f"\n{len(missing_any)} task(s) have missing data:", file=sys.stderr)
        for name, why in sorted(missing_any.items()):
            print(f"  {name}: {why}", file=sys.stderr)
    return 0


def _percentiles(lengths: Sequence[int], budget: int) -> dict[str, Any]:
    a = np.asarray(lengths)
    return {
        "p50": float(np.percentile(a, 50)),
        "p95": float(np.percentile(a, 95)),
        "max": int(a.max()),
        "truncated": float(np.mean(a > budget)),
    }


def _show(args: argparse.Namespace) -> int:
    import seqio

    entry = seqio.get_mixture_or_task(args.name)
    tasks = _tasks_of(entry)
    present, missing = [], []
    for task in tasks:
        if args.split not in task.source.splits:
            continue
        ok, why = _present(task, args.split)
        (present if ok else missing).append(task if ok else (task.name, why))
    for name, why in missing:
        print(f"missing: {name}: {why}", file=sys.stderr)
    if not present:
        print(f"error: no data for {args.name} split {args.split!r} (see the missing datasets above)", file=sys.stderr)
        return 2
    if isinstance(entry, seqio.Mixture):
        # A Mixture of the Tasks whose data is present, with the same rates, so a partial download still shows.
        sub = f"{args.name}__present"
        seqio.MixtureRegistry.remove(sub)
        seqio.MixtureRegistry.add(sub, [(t.name, entry.get_rate(t)) for t in present])
        source = seqio.get_mixture_or_task(sub)
    else:
        source = entry
    ds = source.get_dataset(
        sequence_length=None, split=args.split, shuffle=False, seed=args.seed, use_cached=False, num_epochs=1
    )
    vocab = present[0].output_features["inputs"].vocabulary
    in_lengths, tgt_lengths = [], []
    for i, ex in enumerate(ds.as_numpy_iterator()):
        if i >= max(args.max_examples, args.n):
            break
        in_lengths.append(len(ex["inputs"]))
        tgt_lengths.append(len(ex["targets"]))
        if i < args.n:
            print(f"--- example {i}" + (f" (task {ex['task_name'].decode()})" if "task_name" in ex else ""))
            print("inputs:  " + vocab.decode(ex["inputs"].tolist()).replace("\n", "\\n"))
            print("targets: " + vocab.decode(ex["targets"].tolist()).replace("\n", "\\n"))
            print(f"tokens:  inputs {len(ex['inputs'])}, targets {len(ex['targets'])}")
    if not in_lengths:
        print(f"error: {args.name} split {args.split!r} is empty", file=sys.stderr)
        return 2
    print(f"\ntoken lengths over {len(in_lengths)} examples (with EOS, untruncated)")
    for label, lengths, budget in (
        ("inputs", in_lengths, args.input_length),
        ("targets", tgt_lengths, args.target_length),
    ):
        s = _percentiles(lengths, budget)
        print(
            f"  {label:<8} p50 {s['p50']:7.1f}  p95 {s['p95']:7.1f}  max {s['max']:6d}  "
            f"over {budget}: {100 * s['truncated']:.2f}%"
        )
    return 0


def _lengths(args: argparse.Namespace) -> int:
    """Per Task and over all: the feature lengths that cover p95 / p99 / max of each side (with EOS)."""
    import seqio

    entry = seqio.get_mixture_or_task(args.name)
    tasks = [t for t in _tasks_of(entry) if args.split in t.source.splits and _present(t, args.split)[0]]
    if not tasks:
        print(f"error: no data for {args.name} split {args.split!r}", file=sys.stderr)
        return 2
    print(f"token lengths (with EOS) of up to {args.max_examples} sampled {args.split} examples per Task")
    print(
        f"  {'task':<44} {'n':>6} | {'inputs p95':>10} {'p99':>6} {'max':>6} | {'targets p95':>11} {'p99':>6} {'max':>6}"
    )
    every_in, every_tg = [], []
    for task in sorted(tasks, key=lambda t: t.name):
        li, lt = _sample_lengths(task, args.max_examples, args.seed, args.split)
        every_in.append(li)
        every_tg.append(lt)
        print(f"  {task.name:<44} {len(li):>6} | {_cover(li)} | {_cover(lt, 11)}")
    li, lt = np.concatenate(every_in), np.concatenate(every_tg)
    print(f"  {'all':<44} {len(li):>6} | {_cover(li)} | {_cover(lt, 11)}")
    return 0


def _cover(lengths: np.ndarray, width: int = 10) -> str:
    p95, p99 = (int(np.ceil(np.percentile(lengths, q))) for q in (95, 99))
    return f"{p95:>{width}} {p99:>6} {int(lengths.max()):>6}"


def run(args: argparse.Namespace) -> int:
    import seqio

    import seqio_tasks

    if args.data_dir:
        seqio_tasks.set_data_dir(os.path.abspath(args.data_dir))

    if args.action in ("show", "lengths"):
        if not args.name:
            print(f"error: iuie mixtures {args.action} needs a Mixture or Task name", file=sys.stderr)
            return 2
        try:
            seqio.get_mixture_or_task(args.name)
        except ValueError:
            print(f"error: no Mixture or Task named {args.name!r}; run `iuie mixtures` for the list", file=sys.stderr)
            return 2
        return _show(args) if args.action == "show" else _lengths(args)
    only = args.name_option or args.name
    if only:
        try:
            seqio.get_mixture_or_task(only)
        except ValueError:
            print(f"error: no Mixture or Task named {only!r}", file=sys.stderr)
            return 2
        return _list([only], args)
    return _list(seqio_tasks.MIXTURE_NAMES, args)

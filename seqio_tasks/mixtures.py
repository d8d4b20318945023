"""Registers the Mixtures: loops over ``catalog.DATASETS``, nothing else.

Training (rate per Task: ``iuie.pipeline.seqio_data.mixing_rate``, i.e. ``weight * min(examples, 10,000)`` with
weight 0.3 for ES, ET, EP and EPR; cap and weights are gin-settable, see ``docs/seqio_tasks.md``):

    iuie_supervised            every supervised dataset, main and auxiliary views, all train records
    iuie_supervised_first10k   the same over the ``_first10k`` Tasks (the reference's first 10,000 records)
    iuie_zeroshot              the 18 NER + 6 RE zero-shot training datasets, main and auxiliary views
    iuie_zeroshot_first10k     the same over the ``_first10k`` Tasks
    iuie_synthetic             the nine views of the synthetic corpus

Evaluation (rate 1; seqio's Evaluator scores each Task on its own):

    iuie_eval_ner, iuie_eval_re, iuie_eval_ee, iuie_eval_eet, iuie_eval_eea    supervised test sets per task
    iuie_eval                                                                  all of them
    iuie_eval_zeroshot_ner, iuie_eval_zeroshot_re, iuie_eval_zeroshot          the zero-shot test sets
    iuie_synthetic_eval                                                        synthetic NER, RE, EE, EET, EEA
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence

import seqio

from iuie.pipeline import seqio_data
from seqio_tasks import catalog, tasks

SUPERVISED = "iuie_supervised"
ZEROSHOT = "iuie_zeroshot"
SYNTHETIC_TRAIN = "iuie_synthetic"
SYNTHETIC_EVAL = "iuie_synthetic_eval"
# The CPU demo's pair: the NER and RE families only (main and auxiliary views), so a tiny model reaches its
# F1 target in minutes; the full synthetic Mixture above also trains the event views.
SYNTHETIC_DEMO = "iuie_synthetic_ner_re"
SYNTHETIC_DEMO_EVAL = "iuie_synthetic_ner_re_eval"
FIRST10K_SUFFIX = "_first10k"
EVAL_TASKS = ("ner", "re", "ee", "eet", "eea")


def rate(view: str):
    """The mixing rate of a Task of this view (evaluated lazily by seqio, so gin bindings apply)."""
    return functools.partial(seqio_data.mixing_rate, view=view)


def training_entries(datasets: Iterable[catalog.Dataset], first10k: bool = False) -> list[tuple]:
    """``(task name, rate)`` for every view of every dataset."""
    return [(catalog.task_name(view, d.name, first10k), rate(view)) for d in datasets for view in d.views]


def register_mixture(name: str, entries: Sequence, default_rate=None) -> seqio.Mixture:
    return seqio.MixtureRegistry.add(name, list(entries), default_rate=default_rate)


def _eval_tasks(datasets: Iterable[catalog.Dataset], view: str) -> list[str]:
    return [catalog.task_name(view, d.name) for d in datasets if view in d.views]


def register_all() -> list[str]:
    names = []
    for first10k in (False, True):
        suffix = FIRST10K_SUFFIX if first10k else ""
        register_mixture(SUPERVISED + suffix, training_entries(catalog.supervised(), first10k))
        register_mixture(ZEROSHOT + suffix, training_entries(catalog.zeroshot_train(), first10k))
        names += [SUPERVISED + suffix, ZEROSHOT + suffix]

    supervised_eval = [d for d in catalog.supervised() if d.supervised_eval]
    every = []
    for view in EVAL_TASKS:
        members = _eval_tasks([d for d in supervised_eval if view.upper() in catalog.EVAL_VIEWS[d.task]], view.upper())
        register_mixture(f"iuie_eval_{view}", members, default_rate=1.0)
        names.append(f"iuie_eval_{view}")
        every += members
    register_mixture("iuie_eval", every, default_rate=1.0)
    names.append("iuie_eval")

    heldout = catalog.zeroshot_heldout()
    zeroshot_every = []
    for family in ("NER", "RE"):
        members = _eval_tasks([d for d in heldout if d.task == family], family)
        register_mixture(f"iuie_eval_zeroshot_{family.lower()}", members, default_rate=1.0)
        names.append(f"iuie_eval_zeroshot_{family.lower()}")
        zeroshot_every += members
    register_mixture("iuie_eval_zeroshot", zeroshot_every, default_rate=1.0)
    names.append("iuie_eval_zeroshot")

    all_views = [v for family in catalog.VIEWS.values() for v in family]
    register_mixture(SYNTHETIC_TRAIN, [(catalog.task_name(v, tasks.SYNTHETIC), rate(v)) for v in all_views])
    register_mixture(
        SYNTHETIC_EVAL,
        [catalog.task_name(v, tasks.SYNTHETIC) for v in ("NER", "RE", "EE", "EET", "EEA")],
        default_rate=1.0,
    )
    demo_views = catalog.VIEWS["NER"] + catalog.VIEWS["RE"]
    register_mixture(SYNTHETIC_DEMO, [(catalog.task_name(v, tasks.SYNTHETIC), rate(v)) for v in demo_views])
    register_mixture(
        SYNTHETIC_DEMO_EVAL, [catalog.task_name(v, tasks.SYNTHETIC) for v in ("NER", "RE")], default_rate=1.0
    )
    names += [SYNTHETIC_TRAIN, SYNTHETIC_EVAL, SYNTHETIC_DEMO, SYNTHETIC_DEMO_EVAL]
    return names


MIXTURE_NAMES = tuple(register_all())

# The evaluation Mixture that goes with each training Mixture (what a train binary evaluates on).
EVAL_MIXTURE_FOR = {
    SUPERVISED: "iuie_eval",
    SUPERVISED + FIRST10K_SUFFIX: "iuie_eval",
    ZEROSHOT: "iuie_eval_zeroshot",
    ZEROSHOT + FIRST10K_SUFFIX: "iuie_eval_zeroshot",
    SYNTHETIC_TRAIN: SYNTHETIC_EVAL,
    SYNTHETIC_DEMO: SYNTHETIC_DEMO_EVAL,
}


def eval_mixture_for(train_mixture_or_task: str) -> str:
    """The Mixture to evaluate a run on: ``iuie_eval`` after ``iuie_supervised``, ``iuie_eval_zeroshot``
    after ``iuie_zeroshot``, ``iuie_synthetic_eval`` after ``iuie_synthetic``; a single Task evaluates on
    itself. Its splits: ``validation`` during training, ``test`` for the reported numbers (the FewRel and
    Wiki-ZSL sets have ``test`` only, so seqio's Evaluator skips them on ``validation``).
    """
    if train_mixture_or_task in EVAL_MIXTURE_FOR:
        return EVAL_MIXTURE_FOR[train_mixture_or_task]
    if train_mixture_or_task in seqio.TaskRegistry.names():
        return train_mixture_or_task
    raise KeyError(
        f"no evaluation Mixture is known for {train_mixture_or_task!r}; "
        f"known: {', '.join(sorted(EVAL_MIXTURE_FOR))}, or any Task name"
    )

"""Registers a seqio Task per dataset and task view: loops over ``catalog.DATASETS``, nothing else.

Names (``catalog.task_name``): ``iuie_<view>_<slug>``, e.g.

    iuie_ner_conll_2003   iuie_es_conll_2003   iuie_et_conll_2003          (NER family: NER, ES, ET)
    iuie_re_conll04       iuie_ep_conll04      iuie_epr_conll04            (RE family: RE, EP, EPR)
    iuie_ee_casie         iuie_eet_casie       iuie_eea_casie              (EE family: EE, EET, EEA)

plus ``..._first10k`` for every dataset some training Mixture uses (train split cut to its first 10,000
records, like the reference's "random" sampling), and ``iuie_<view>_synthetic`` for the nine views of the
synthetic corpus. ``docs/seqio_tasks.md`` lists them all.

Every Task: source :class:`iuie.pipeline.seqio_data.LayoutSource`; preprocessors format -> tokenize -> cache
placeholder -> EOS; output features ``inputs`` and ``targets`` (:data:`OUTPUT_FEATURES`, EOS appended);
``postprocess_fn`` and two metric functions (``strict`` and ``reference``) from :mod:`iuie.ie.metrics`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence

import seqio

from iuie.ie import views as view_table
from iuie.pipeline import preprocessors, seqio_data, vocab
from seqio_tasks import catalog

# Decided at import (a Task holds its vocabulary): $IUIE_VOCAB, else the project's own model.
VOCABULARY = vocab.get_vocabulary()

OUTPUT_FEATURES = {
    "inputs": seqio.Feature(vocabulary=VOCABULARY, add_eos=True, required=True),
    "targets": seqio.Feature(vocabulary=VOCABULARY, add_eos=True),
}
# The reference's truncation: inputs to 512 tokens, targets (and generation) to 50.
TASK_FEATURE_LENGTHS = {"inputs": 512, "targets": 50}

SYNTHETIC = "synthetic"


def _preprocessors(view: str, source: seqio_data.LayoutSource, dataset_name: str) -> list:
    return [
        functools.partial(preprocessors.format_view, view=view, labels=source.labels, dataset_name=dataset_name),
        seqio.preprocessors.tokenize,
        seqio.CacheDatasetPlaceholder(),
        seqio.preprocessors.append_eos_after_trim,
    ]


def register_view(
    name: str,
    view: str,
    source: seqio_data.LayoutSource,
    *,
    dataset_name: str,
    output_features=None,
    overwrite: bool = False,
) -> seqio.Task:
    """Registers one Task: one view of one dataset folder, with iuie's preprocessors and metrics."""
    if overwrite:
        seqio.TaskRegistry.remove(name)
    return seqio.TaskRegistry.add(
        name,
        source=source,
        preprocessors=_preprocessors(view, source, dataset_name),
        output_features=output_features or OUTPUT_FEATURES,
        postprocess_fn=seqio_data.postprocess_fn(view),
        metric_fns=seqio_data.metric_fns(view),
    )


def register_dataset(
    dataset: catalog.Dataset | str,
    task: str | None = None,
    *,
    root: str | os.PathLike | None = None,
    views: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    sample_folder: str | None = None,
    first10k: bool | None = None,
    output_features=None,
    overwrite: bool = False,
) -> list[str]:
    """Registers the Tasks of one dataset folder under the catalog's rules; returns their names.

    For a user's own folder in the layout, ``<root>/<TASK>/<name>/{train,dev,test}.json`` + ``labels.json``::

        seqio_tasks.register_dataset("my_products", "NER", root="/data/mine")
        # -> ["iuie_ner_my_products", "iuie_es_my_products", "iuie_et_my_products"]

    ``dataset``: a catalog entry or a folder name. ``task``: the family (NER, RE or EE; an EE family reads
    the EE, EET and EEA folders). ``root``: the layout root; None reads the data root in force at read time
    (``IUIE_DATA_DIR``). ``views``: a subset of the family's views (e.g. ``("EET", "EEA")`` for a dataset
    without an EE folder). ``splits``: seqio split names (``validation`` reads ``dev.json``); default the
    split files present when ``root`` is given and exists, else train, validation and test. ``first10k``:
    also register the ``_first10k`` variants. ``overwrite``: replace Tasks of the same names instead of
    failing.
    """
    if isinstance(dataset, str):
        if task is None:
            raise TypeError("register_dataset(name, task, ...) needs the task family (NER, RE or EE)")
        family = task.upper()
        if family in ("EET", "EEA"):
            views = views or (family,)
            family = "EE"
        if splits is None:
            splits = _present_splits(root, views or catalog.VIEWS.get(family, ()), dataset)
        dataset = catalog.Dataset(
            dataset,
            family,
            domain="",
            zeroshot=catalog.UNUSED,
            supervised=False,
            sample_folder=sample_folder,
            views=tuple(views) if views else None,
            splits=tuple(splits),
        )
        first10k = bool(first10k)
    elif views is not None or splits is not None:
        raise TypeError("views and splits come from the catalog entry; build a new catalog.Dataset instead")
    if first10k is None:
        first10k = dataset.in_training
    names = []
    for view in dataset.views:
        variants = [(False, None)] + ([(True, {"train": seqio_data.FIRST_N})] if first10k else [])
        for truncated, limits in variants:
            source = seqio_data.LayoutSource(
                view_table.SOURCE_TASK[view],
                dataset.name,
                root=root,
                splits=dataset.splits,
                train_folder=dataset.sample_folder,
                limits=limits,
            )
            name = catalog.task_name(view, dataset.name, first10k=truncated)
            register_view(
                name, view, source, dataset_name=dataset.name, output_features=output_features, overwrite=overwrite
            )
            names.append(name)
    return names


def _present_splits(root, views, name) -> tuple[str, ...]:
    """The split files present for a user's folder (all three when it cannot be looked at now)."""
    if root is None:
        return seqio_data.SPLITS
    folders = {os.path.join(os.fspath(root), view_table.SOURCE_TASK[v], name) for v in views}
    present = [
        s
        for s in seqio_data.SPLITS
        if any(os.path.isfile(os.path.join(f, f"{seqio_data.SPLIT_FILES[s]}.json")) for f in folders)
    ]
    return tuple(present) or seqio_data.SPLITS


def register_synthetic(overwrite: bool = False) -> list[str]:
    """The nine views of the synthetic corpus (``iuie_<view>_synthetic``), read from
    :func:`iuie.pipeline.seqio_data.synthetic_dir` (``IUIE_SYNTHETIC_DIR`` or a cache folder, generated on demand)."""
    names = []
    for view in view_table.NAMES:
        source = seqio_data.LayoutSource(view_table.SOURCE_TASK[view], SYNTHETIC, root=seqio_data.synthetic_dir)
        name = catalog.task_name(view, SYNTHETIC)
        register_view(name, view, source, dataset_name=SYNTHETIC, overwrite=overwrite)
        names.append(name)
    return names


def register_all() -> list[str]:
    names = []
    for dataset in catalog.DATASETS:
        names.extend(register_dataset(dataset))
    names.extend(register_synthetic())
    return names


TASK_NAMES = tuple(register_all())

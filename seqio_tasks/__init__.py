"""iuie's seqio Tasks and Mixtures: importing this package registers all of them.

    import seqio_tasks  # registers iuie_ner_conll_2003, ..., iuie_supervised, iuie_eval_ner, ...
    seqio_tasks.set_data_dir("/data/IE_INSTRUCTIONS")  # or IUIE_DATA_DIR, or gin (see below)

Importing reads no data: the data root is resolved when a dataset is first read, from (in that order)
:func:`set_data_dir`, the gin binding ``iuie.pipeline.seqio_data.data_options.data_dir``, or ``$IUIE_DATA_DIR``. The
vocabulary is ``$IUIE_VOCAB`` (a SentencePiece model such as Flan-T5's ``spiece.model``) or the project's
own small model; it is fixed when this package is imported. ``$IUIE_SEQIO_CACHE_DIRS`` (comma-separated)
names folders written by seqio's Beam cache job (``iuie cache``) that ``use_cached=True`` reads
(:mod:`iuie.pipeline.caching`); they are added to seqio's global cache dirs on import.

Registration only: the table is :mod:`seqio_tasks.catalog`, the loops :mod:`seqio_tasks.tasks` and
:mod:`seqio_tasks.mixtures`; the logic they register lives in :mod:`iuie.pipeline.seqio_data`,
:mod:`iuie.pipeline.preprocessors` and :mod:`iuie.ie.metrics`. ``docs/seqio_tasks.md`` lists every name.
"""

from iuie.pipeline import caching
from iuie.pipeline.seqio_data import set_data_dir, set_options
from seqio_tasks import catalog, mixtures, tasks
from seqio_tasks.mixtures import eval_mixture_for
from seqio_tasks.tasks import OUTPUT_FEATURES, TASK_FEATURE_LENGTHS, VOCABULARY, register_dataset

caching.use_cache_dirs_from_env()

TASK_NAMES = tasks.TASK_NAMES
MIXTURE_NAMES = mixtures.MIXTURE_NAMES

__all__ = [
    "catalog",
    "tasks",
    "mixtures",
    "set_data_dir",
    "set_options",
    "register_dataset",
    "eval_mixture_for",
    "OUTPUT_FEATURES",
    "TASK_FEATURE_LENGTHS",
    "VOCABULARY",
    "TASK_NAMES",
    "MIXTURE_NAMES",
]

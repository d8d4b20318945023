"""The IE INSTRUCTIONS datasets as a data table: one :class:`Dataset` per released folder.

Derived from the reference's six task configs (``configs/multi_task_configs`` and ``configs/zeroshot_configs``,
``{train,dev,test}_tasks.json``, copied in ``shared/data/instructuie_configs``):

* supervised (multi-task) protocol: 21 NER, 8 RE and 4 EE folders (GENIA's EE folder is only trained on:
  the configs never evaluate it, and it has no EET/EEA folders); EE is evaluated through EET and EEA;
* zero-shot protocol: train on 18 NER + 6 RE datasets; test on CrossNER (AI, literature, music, politics,
  science), GENIA_NER, MIT movie, MIT restaurant, FewRel and Wiki-ZSL (5 label splits each), ADE corpus and
  CoNLL04. Every zero-shot test dataset is ``HELDOUT``: no zero-shot training Mixture may contain it. EE
  takes no part in the zero-shot protocol (``UNUSED``).

Folder names are those the benchmark ships (``"CoNLL 2003"``, ``"semval-RE"``, ``"WikiANN en"``). The
multi-task configs read some datasets from pre-sampled copies, ``<name>_sample_<N>``; here ``name`` is always
the released folder and ``sample_folder`` the copy, which the train split is read from when it exists
(see ``docs/seqio_tasks.md``). Names only: no data lives in this repository.
"""

from __future__ import annotations

import dataclasses
import re

from iuie.ie import views

# Zero-shot roles.
TRAIN = "train"  # in the zero-shot training Mixtures
HELDOUT = "heldout"  # a zero-shot test set: never in a zero-shot training Mixture
UNUSED = "unused"  # not part of the zero-shot protocol (EE)
ZEROSHOT_ROLES = (TRAIN, HELDOUT, UNUSED)

# The views of each task family: the main view first, then its auxiliary views (iuie.ie.views.TABLE).
VIEWS = views.FAMILIES
# The views the supervised protocol evaluates (the reference scores EE through EET and EEA; iuie adds EE).
EVAL_VIEWS = {"NER": ("NER",), "RE": ("RE",), "EE": ("EE", "EET", "EEA")}


def slug(name: str) -> str:
    """A Task-name fragment: lower case, every run of other characters one ``_`` (``CoNLL 2003`` -> ``conll_2003``)."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


@dataclasses.dataclass(frozen=True)
class Dataset:
    """One dataset of the benchmark.

    ``name``: the released folder name. ``task``: NER, RE or EE (the family; the EE family reads the EE,
    EET and EEA folders). ``domain``: a short description of the text. ``zeroshot``: its role in the
    zero-shot protocol. ``supervised``: part of the supervised protocol's training and evaluation.
    ``sample_folder``: the pre-sampled copy the multi-task configs read. ``views``: which views to register
    (default: all of the family's). ``splits``: the seqio splits the release holds (``validation`` is
    the layout's ``dev.json``). ``supervised_eval``: evaluated
    in the supervised protocol.
    """

    name: str
    task: str
    domain: str
    zeroshot: str
    supervised: bool = True
    sample_folder: str | None = None
    views: tuple[str, ...] | None = None
    splits: tuple[str, ...] = ("train", "validation", "test")
    supervised_eval: bool = True

    def __post_init__(self):
        if self.task not in VIEWS:
            raise ValueError(f"{self.name}: unknown task family {self.task!r}; expected one of {', '.join(VIEWS)}")
        if self.zeroshot not in ZEROSHOT_ROLES:
            raise ValueError(f"{self.name}: unknown zero-shot role {self.zeroshot!r}")
        if self.views is None:
            object.__setattr__(self, "views", VIEWS[self.task])
        bad = set(self.views) - set(VIEWS[self.task])
        if bad:
            raise ValueError(f"{self.name}: views {sorted(bad)} do not belong to the {self.task} family")

    @property
    def slug(self) -> str:
        return slug(self.name)

    @property
    def main_view(self) -> str:
        return VIEWS[self.task][0]

    @property
    def aux_views(self) -> tuple[str, ...]:
        return tuple(v for v in self.views if v != self.main_view)

    @property
    def in_training(self) -> bool:
        """Whether some training Mixture uses it (so it gets ``_first10k`` Tasks)."""
        return self.supervised or self.zeroshot == TRAIN


def task_name(view: str, dataset: str, first10k: bool = False) -> str:
    """``iuie_<view>_<slug>`` (``iuie_ner_conll_2003``), ``..._first10k`` for the truncated variant."""
    return f"iuie_{view.lower()}_{slug(dataset)}" + ("_first10k" if first10k else "")


_NER = "NER"
_RE = "RE"
_EE = "EE"

DATASETS: tuple[Dataset, ...] = (
    # ---- NER: the 21 supervised datasets (18 of them zero-shot training data) ----
    Dataset("ACE 2004", _NER, "news, broadcast, web", TRAIN, sample_folder="ACE 2004_sample_15000"),
    Dataset("ACE 2005", _NER, "news, broadcast, web", TRAIN, sample_folder="ACE 2005_sample_15000"),
    Dataset("AnatEM", _NER, "biomedical (anatomy)", TRAIN),
    Dataset("bc2gm", _NER, "biomedical (genes)", TRAIN),
    Dataset("bc4chemd", _NER, "biomedical (chemicals)", TRAIN),
    Dataset("bc5cdr", _NER, "biomedical (chemicals, diseases)", TRAIN),
    Dataset("Broad Tweet Corpus", _NER, "social media", TRAIN),
    Dataset("CoNLL 2003", _NER, "news", TRAIN, sample_folder="CoNLL 2003_sample_15000"),
    Dataset("FabNER", _NER, "manufacturing", TRAIN),
    Dataset("FindVehicle", _NER, "traffic", TRAIN),
    Dataset("GENIA_NER", _NER, "biomedical", HELDOUT),
    Dataset("HarveyNER", _NER, "social media (disaster)", TRAIN),
    Dataset("mit-movie", _NER, "movie queries", HELDOUT),
    Dataset("mit-restaurant", _NER, "restaurant queries", HELDOUT),
    Dataset("MultiNERD", _NER, "Wikipedia, WikiNews", TRAIN),
    Dataset("ncbi", _NER, "biomedical (diseases)", TRAIN),
    Dataset("Ontonotes", _NER, "general (news, conversation, web)", TRAIN, sample_folder="Ontonotes_sample_30000"),
    Dataset("PolyglotNER", _NER, "Wikipedia", TRAIN),
    Dataset("TweetNER7", _NER, "social media", TRAIN, sample_folder="TweetNER7_sample_15000"),
    Dataset("WikiANN en", _NER, "Wikipedia", TRAIN),
    Dataset("WikiNeural", _NER, "Wikipedia", TRAIN),
    # ---- NER: zero-shot test sets only (CrossNER) ----
    Dataset("CrossNER_AI", _NER, "artificial intelligence", HELDOUT, supervised=False),
    Dataset("CrossNER_literature", _NER, "literature", HELDOUT, supervised=False),
    Dataset("CrossNER_music", _NER, "music", HELDOUT, supervised=False),
    Dataset("CrossNER_politics", _NER, "politics", HELDOUT, supervised=False),
    Dataset("CrossNER_science", _NER, "natural science", HELDOUT, supervised=False),
    # ---- RE: the 8 supervised datasets (6 of them zero-shot training data) ----
    Dataset("ADE_corpus", _RE, "biomedical (adverse drug effects)", HELDOUT, sample_folder="ADE_corpus_sample_15000"),
    Dataset("conll04", _RE, "news", HELDOUT, sample_folder="conll04_sample_5000"),
    Dataset("GIDS", _RE, "web (distant supervision)", TRAIN),
    Dataset("kbp37", _RE, "news, web", TRAIN),
    Dataset("New-York-Times-RE", _RE, "news", TRAIN, sample_folder="New-York-Times-RE_sample_30000"),
    Dataset("NYT11", _RE, "news", TRAIN, sample_folder="NYT11_sample_30000"),
    Dataset("SciERC", _RE, "scientific abstracts", TRAIN, sample_folder="SciERC_sample_10000"),
    Dataset("semval-RE", _RE, "general (web)", TRAIN),
    # ---- RE: zero-shot test sets only (unseen-label splits; the release holds test.json only) ----
    *(Dataset(f"fewrel_{i}", _RE, "Wikipedia (FewRel)", HELDOUT, supervised=False, splits=("test",)) for i in range(5)),
    *(Dataset(f"wiki_{i}", _RE, "Wikipedia (Wiki-ZSL)", HELDOUT, supervised=False, splits=("test",)) for i in range(5)),
    # ---- EE: supervised only ----
    Dataset("ACE05", _EE, "news, broadcast, web", UNUSED),
    Dataset("CASIE", _EE, "cybersecurity", UNUSED),
    Dataset("PHEE", _EE, "pharmacovigilance", UNUSED),
    Dataset("GENIA", _EE, "biomedical", UNUSED, views=("EE",), supervised_eval=False),
)

BY_NAME = {d.name: d for d in DATASETS}
if len(BY_NAME) != len(DATASETS):
    raise ValueError("duplicate dataset names in the catalog")


def get(name: str) -> Dataset:
    """The catalog entry of a released folder name (or of a ``_sample_`` copy's name)."""
    if name in BY_NAME:
        return BY_NAME[name]
    for d in DATASETS:
        if d.sample_folder == name:
            return d
    raise KeyError(
        f"{name!r} is not in the IE INSTRUCTIONS catalog; register your own folder with seqio_tasks.register_dataset"
    )


def supervised() -> tuple[Dataset, ...]:
    return tuple(d for d in DATASETS if d.supervised)


def zeroshot_train() -> tuple[Dataset, ...]:
    return tuple(d for d in DATASETS if d.zeroshot == TRAIN)


def zeroshot_heldout() -> tuple[Dataset, ...]:
    return tuple(d for d in DATASETS if d.zeroshot == HELDOUT)

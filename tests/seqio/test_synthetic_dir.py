"""Where the synthetic Tasks find their corpus: generated on first use, as the variant the options name.

Checked against: the generator itself (the held-out variant's test mentions never occur in its train split)
and the stamp written beside the corpus; a folder of the other variant is refused in one line naming it.
"""

from __future__ import annotations

import json

import pytest

from iuie.ie import records as R
from iuie.ie import synthetic
from iuie.pipeline import seqio_data


def _names(root, split):
    recs, _ = R.DatasetFolder(str(root), "NER", synthetic.DATASET_NAME).load(split)
    return {e.name for r in recs for e in r.entities}


def test_held_out_option_generates_the_held_out_corpus_and_stamps_it(tmp_path):
    seqio_data.set_options(synthetic_dir=tmp_path / "held", synthetic_held_out=True)
    root = seqio_data.synthetic_dir()
    assert json.loads((tmp_path / "held" / seqio_data.SYNTHETIC_STAMP).read_text())["held_out"] is True
    assert _names(root, "test") and not _names(root, "test") & _names(root, "train")
    seqio_data.set_options(synthetic_dir=tmp_path / "closed", synthetic_held_out=False)
    closed = seqio_data.synthetic_dir()
    assert json.loads((tmp_path / "closed" / seqio_data.SYNTHETIC_STAMP).read_text())["held_out"] is False
    assert _names(closed, "test") & _names(closed, "train")  # the default corpus shares its lists


def test_a_corpus_of_the_other_variant_is_refused_naming_the_folder(tmp_path):
    seqio_data.set_options(synthetic_dir=tmp_path, synthetic_held_out=False)
    seqio_data.synthetic_dir()
    seqio_data.set_options(synthetic_held_out=True)
    with pytest.raises(seqio_data.DataNotFoundError) as err:
        seqio_data.synthetic_dir()
    message = str(err.value)
    assert str(tmp_path / seqio_data.SYNTHETIC_STAMP) in message and "held_out=False" in message
    assert "synthetic_held_out is True" in message and "\n" not in message


def test_default_cache_folders_differ_by_variant(monkeypatch, tmp_path):
    monkeypatch.setenv(seqio_data.ENV_CACHE_DIR, str(tmp_path))
    closed = seqio_data.default_synthetic_dir()
    seqio_data.set_options(synthetic_held_out=True)
    held = seqio_data.default_synthetic_dir()
    assert held == f"{closed}-heldout" and held.startswith(str(tmp_path))

"""``iuie mixtures`` and ``iuie mixtures show``: listing with counts, missing datasets named, examples and
token-length statistics.

Checked against: the record counts of the shared data files (len of each JSON list) and of the synthetic
corpus, and the vocabulary's own encoding of the printed examples (lengths include EOS).
"""

from __future__ import annotations

import json

from iuie import cli


def test_list_counts_and_names_missing_datasets(shared_root, capsys):
    assert cli.main(["mixtures", "--name", "iuie_eval_ner"]) == 0
    out, err = capsys.readouterr()
    conll = shared_root / "NER" / "CoNLL 2003"
    counts = [len(json.loads((conll / f"{s}.json").read_text())) for s in ("train", "dev", "test")]
    row = next(line for line in out.splitlines() if line.strip().startswith("iuie_ner_conll_2003"))
    assert row.split()[-3:] == [str(c) for c in counts]
    assert "iuie_ner_ace_2004" in err and str(shared_root / "NER" / "ACE 2004") in err


def test_show_prints_examples_and_length_statistics(synthetic, capsys):
    assert (
        cli.main(["mixtures", "show", "iuie_synthetic_eval", "--split", "test", "-n", "2", "--max-examples", "100"])
        == 0
    )
    out, _ = capsys.readouterr()
    assert out.count("--- example") == 2 and "inputs:  " in out and "targets: " in out
    assert "token lengths over 100 examples" in out
    assert "over 512:" in out and "over 50:" in out


def test_unknown_name_is_a_clear_error(capsys):
    assert cli.main(["mixtures", "show", "iuie_nope"]) == 2
    assert "no Mixture or Task named 'iuie_nope'" in capsys.readouterr().err

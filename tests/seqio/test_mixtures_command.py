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


def _synthetic_lengths(name, n):
    """Reference: the Task's own untruncated dataset, in file order (lengths with EOS)."""
    import numpy as np
    import seqio

    task = seqio.get_mixture_or_task(name)
    ds = task.get_dataset(None, split="train", shuffle=False, num_epochs=1)
    pairs = [(len(ex["inputs"]), len(ex["targets"])) for ex in ds.as_numpy_iterator()]
    chosen = sorted(np.random.default_rng(0).permutation(len(pairs))[:n].tolist())
    return np.array([pairs[i][0] for i in chosen]), np.array([pairs[i][1] for i in chosen])


def test_list_shows_the_over_length_share_per_task(synthetic, capsys):
    """The share printed equals the share of the same seeded sample of the Task's own examples over the budget."""
    import numpy as np

    inputs, targets = _synthetic_lengths("iuie_re_synthetic", 20)
    budget = int(np.median(inputs))  # the sample straddles the budget, so the check means something
    args = ["mixtures", "--name", "iuie_re_synthetic", "--sample", "20", "--input-length", str(budget)]
    assert cli.main(args) == 0
    out, _ = capsys.readouterr()
    row = next(
        line for line in out.splitlines() if line.strip().startswith("iuie_re_synthetic ") and "task)" not in line
    )
    assert 0 < (inputs > budget).mean() < 1
    # A Task alone has no rate: the two shares follow the name.
    assert row.split()[1:3] == [f"{(inputs > budget).mean():.1%}", f"{(targets > 50).mean():.1%}"]


def test_lengths_prints_the_lengths_covering_p95_p99_and_max(synthetic, capsys):
    import numpy as np

    assert cli.main(["mixtures", "lengths", "iuie_re_synthetic", "--max-examples", "30"]) == 0
    out, _ = capsys.readouterr()
    row = next(line for line in out.splitlines() if line.strip().startswith("iuie_re_synthetic"))
    inputs, targets = _synthetic_lengths("iuie_re_synthetic", 30)
    want = [int(np.ceil(np.percentile(x, q))) for x in (inputs, targets) for q in (95, 99)]
    cells = row.replace("|", " ").split()
    assert cells[1] == "30"
    assert [int(c) for c in cells[2:8]] == [want[0], want[1], int(inputs.max()), want[2], want[3], int(targets.max())]

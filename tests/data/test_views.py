"""The table of task views (iuie.ie.views): complete, consistent, and what the other modules read.

Checked against shared/FORMATS.md (the nine views, their layout folders and families) and against the
modules it replaced (their former constants are restated here by hand).
"""

from __future__ import annotations

import pytest

from iuie.ie import instructions, report, views


def test_the_table_lists_the_nine_views_with_their_folders_and_families():
    assert views.NAMES == ("NER", "ES", "ET", "RE", "EP", "EPR", "EE", "EET", "EEA")
    assert views.SOURCE_TASK == {
        "NER": "NER", "ES": "NER", "ET": "NER", "RE": "RE", "EP": "RE", "EPR": "RE",
        "EE": "EE", "EET": "EET", "EEA": "EEA",
    }  # fmt: skip
    assert views.FAMILIES == {"NER": ("NER", "ES", "ET"), "RE": ("RE", "EP", "EPR"), "EE": ("EE", "EET", "EEA")}
    assert [v.name for v in views.TABLE if v.main] == ["NER", "RE", "EE"]
    assert report.TASK_ORDER == ("NER", "RE", "EE", "EET", "EEA", "ES", "ET", "EP", "EPR")
    assert instructions.VIEWS == views.NAMES


@pytest.mark.parametrize("view", views.NAMES)
def test_every_function_the_table_names_exists(view):
    entry = views.get(view)
    for role in ("target", "parser", "reference", "gold", "predicted"):
        assert callable(entry.function(role)), (view, role)
    assert len(set(entry.label_slots) | set(entry.mention_slots)) == len(entry.label_slots) + len(entry.mention_slots)


def test_view_names_are_read_in_any_case_and_unknown_ones_fail():
    assert views.get(" ner ").name == "NER"
    with pytest.raises(views.UnknownViewError, match="unknown task view 'XX'; expected one of NER, ES"):
        views.get("XX")


def test_mentions_of_an_item_follow_its_slots():
    assert views.mentions("NER", ("person", "Anna")) == ("Anna",)
    assert views.mentions("RE", ("meet", "Anna", "Bob")) == ("Anna", "Bob")
    assert views.mentions("EP", ("Anna", "Bob")) == ("Anna", "Bob")
    assert views.mentions("EE", ("meet", "met", (("who", "Anna"), ("where", "Oslo")))) == ("met", "Anna", "Oslo")
    assert views.mentions("EEA", ("who", "Anna")) == ("Anna",)

"""Sanity checks of the shipped ImageNet-1k class names."""
import pytest

from minivit import labels
from minivit.errors import MinivitError
from minivit.labels import imagenet_labels


def test_thousand_distinct_names_in_imagenet_order():
    names = imagenet_labels()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert all(n and n == n.strip() and n.isascii() for n in names)
    expect = {0: "tench", 1: "goldfish", 2: "great white shark", 134: "crane (bird)",
              207: "golden retriever", 281: "tabby", 388: "giant panda", 517: "crane (machine)",
              638: "maillot", 639: "tank suit", 954: "banana", 999: "toilet tissue"}
    assert {i: names[i] for i in expect} == expect


def test_callers_get_a_copy():
    imagenet_labels()[0] = "changed"
    assert imagenet_labels()[0] == "tench"


def test_missing_data_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(labels, "LABELS_FILE", tmp_path / "none.txt")
    labels._read.cache_clear()
    try:
        with pytest.raises(MinivitError, match="data files"):
            imagenet_labels()
    finally:
        labels._read.cache_clear()

"""The test tree as pytest collects it: test folders have no __init__.py, so two test modules with
one basename collide ("import file mismatch") and the whole run stops at collection."""

from collections import Counter
from pathlib import Path


def test_test_module_names_are_unique():
    names = Counter(p.name for p in Path(__file__).parent.rglob("test_*.py"))
    assert not [n for n, k in names.items() if k > 1], names

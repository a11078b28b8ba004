"""docs/TOUR.md is documentation and a test: every example on it runs."""
import doctest
from pathlib import Path


def test_tour_examples_run():
    path = Path(__file__).resolve().parents[1] / "docs" / "TOUR.md"
    result = doctest.testfile(str(path), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 10
    assert result.failed == 0

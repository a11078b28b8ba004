"""The eager rows of issue 12 (benchmarks/wl_scripts.py) run at tiny sizes and report
an eager time for each of the three tutorial-style workloads."""
import pytest

from benchmarks import wl_scripts
from benchmarks.harness import Config


@pytest.mark.parametrize("workload", [wl_scripts.LMWorkload, wl_scripts.CRFWorkload,
                                      wl_scripts.DynWorkload])
def test_script_rows_run_tiny(workload):
    (row,) = workload.run(Config(quick=True, tiny=True))
    assert row.status == "ok", row.note
    assert row.times["eager"].median > 0 and "torch" not in row.times
    assert row.notes["compiled"] == wl_scripts.EAGER_ONLY
    assert not row.note  # no arm's training diverged

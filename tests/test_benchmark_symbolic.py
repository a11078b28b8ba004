"""The symbolic benchmark rows (benchmarks/wl_symbolic.py) run, are correct and are served
by one symbolic compile each."""
from benchmarks import wl_symbolic
from benchmarks.harness import Config


def test_symbolic_rows_are_correct_and_compile_once():
    rows = wl_symbolic.run(Config(quick=True, tiny=True))
    assert [r.name for r in rows] == ["GELU (tanh) s0", "softmax rows s0", "seed forward s0"]
    for r in rows:
        assert r.correct is True, r
        assert {"eager", "compiled", "specialised"} <= set(r.times)
        assert "compiles: symbolic 1, specialised 1; s0" in r.note, r.note

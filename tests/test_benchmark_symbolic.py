"""The symbolic benchmark rows (benchmarks/wl_symbolic.py) run, are correct and are served
by one symbolic compile each."""
from benchmarks import wl_symbolic
from benchmarks.harness import Config, Timing, paired_ratio


def test_symbolic_rows_are_correct_and_compile_once():
    rows = wl_symbolic.run(Config(quick=True, tiny=True))
    assert [r.name for r in rows] == ["GELU (tanh) s0", "softmax rows s0", "seed forward s0",
                                      "seed whole step s0", "transformer layer, 18 lengths",
                                      "grad accumulation, int step"]
    for r in rows:
        assert r.correct is True, r
        assert {"eager", "compiled", "specialised"} <= set(r.times)
    for r in rows[:3]:
        assert "compiles: symbolic 1, specialised 1; s0" in r.note, r.note
    # the other size, then the measured one's first step (the step's second call traces
    # otherwise: .grad exists), which the symbolic arm fits a second time: "2 fits"
    assert "compiles: symbolic 2, specialised 2; s0" in rows[3].note, rows[3].note
    assert "compiles: symbolic 2 (" in rows[4].note and "specialised 18 (" in rows[4].note, \
        rows[4].note
    # a step counter argument: symbolic after it changes (NOTE (int arguments))
    assert "first 12 steps: symbolic 5, specialised 12;" in rows[5].note, rows[5].note
    assert rows[5].note.endswith("after the timed repeats 6 and 14"), rows[5].note


def test_paired_ratio_is_the_median_of_per_repetition_ratios():
    # one slow repetition of the first arm lands on its median; each pair says 0.5
    a = Timing(30.0, 0.0, 0.0, 5, values=(1.0, 2.0, 30.0, 40.0, 50.0))
    b = Timing(6.0, 0.0, 0.0, 5, values=(2.0, 4.0, 6.0, 80.0, 100.0))
    assert a.median / b.median == 5.0 and paired_ratio(a, b) == 0.5
    # without per-sample values (a Timing read back from JSON): the medians' ratio
    assert paired_ratio(Timing(3.0, 0, 0, 1), Timing(6.0, 0, 0, 1)) == 0.5
    assert paired_ratio(a, Timing(6.0, 0, 0, 1)) == 5.0

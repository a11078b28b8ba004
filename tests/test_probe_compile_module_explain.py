"""What users call on a compiled module or function besides calling it: ``len()`` of a
compiled Sequential (as PyTorch's OptimizedModule), and ``explain(...)`` of a function
that cannot be traced (it runs eagerly; explain says why instead of raising)."""
from __future__ import annotations

import pytest

import tracegrad as torch
from tracegrad._errors import TraceError


def test_len_of_a_compiled_sequential_is_the_modules():
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    compiled = torch.compile(model)
    assert len(compiled) == 3   # old: TypeError, object of type 'OptimizedModule' has no len()
    with pytest.raises(TypeError):
        len(torch.compile(torch.nn.Linear(3, 4)))   # a module without a length, as eagerly


def _with_item(x):
    y = x * 2
    return y + y.sum().item()


def test_explain_of_an_untraceable_function_reports_the_eager_run():
    x = torch.randn(3)
    compiled = torch.compile(_with_item)
    report = compiled.explain(x)   # old: raised TraceError from item()
    assert report.eager_reason is not None and "item()" in report.eager_reason
    assert "runs eagerly" in str(report) and report.kernels == []
    with pytest.warns(RuntimeWarning, match="item"):
        got = compiled(x)
    assert torch.allclose(got, _with_item(x))


def test_explain_under_fullgraph_raises_as_a_call_does():
    with pytest.raises(TraceError, match="item"):
        torch.compile(_with_item, fullgraph=True).explain(torch.randn(3))


def test_explain_of_a_traceable_function_has_no_eager_reason():
    report = torch.compile(lambda x: x * 2 + 1).explain(torch.randn(3))
    assert report.eager_reason is None and len(report.kernels) >= 1


def test_a_compiled_module_without_a_length_is_still_true():
    compiled = torch.compile(torch.nn.Linear(3, 4))
    assert compiled   # __len__ alone would make bool() raise TypeError for a Linear
    assert bool(torch.compile(torch.nn.Sequential()))

"""The examples in the docstrings of the PyTorch-compatibility modules run as written."""
import doctest
import importlib

import pytest

MODULES = ["tracegrad.autograd.function", "tracegrad.autograd.functional",
           "tracegrad.autograd.profiler", "tracegrad.optim.lbfgs", "tracegrad.onnx",
           "tracegrad.serialization", "tracegrad.nn.modules.transformer", "tracegrad.linalg",
           "tracegrad.linalg._decompositions", "tracegrad.linalg._norms", "tracegrad._ops.trig",
           "tracegrad._ops.matrix", "tracegrad._ops.unique", "tracegrad._ops.creation",
           "tracegrad._ops.math", "tracegrad._ops.division", "tracegrad.codegen.numpy_fmod",
           "tracegrad._ops.aliases", "tracegrad._ops.elementwise_extra",
           "tracegrad._ops.special_eager", "tracegrad._ops.index_writes",
           "tracegrad._ops.products", "tracegrad._ops.sampling"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name),
                             optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0

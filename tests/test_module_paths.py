"""Module paths that PyTorch scripts name directly resolve to tracegrad's classes."""
import importlib

import pytest

import tracegrad as torch

PATHS = {
    "nn.modules.activation.MultiheadAttention": torch.nn.MultiheadAttention,
    "nn.modules.activation.ReLU": torch.nn.ReLU,
    "nn.modules.batchnorm.BatchNorm2d": torch.nn.BatchNorm2d,
    "nn.modules.flatten.Flatten": torch.nn.Flatten,
    "nn.modules.module.Module": torch.nn.Module,
    "nn.parameter.Parameter": torch.nn.Parameter,
    "autograd.function.Function": torch.autograd.Function,
    "autograd.functional.jacobian": torch.autograd.functional.jacobian,
    "autograd.profiler.record_function": torch.autograd.profiler.record_function,
    "optim.lbfgs.LBFGS": torch.optim.LBFGS,
    "serialization.safe_globals": torch.serialization.safe_globals,
    "onnx.export": torch.onnx.export,
}


@pytest.mark.parametrize("path", sorted(PATHS))
def test_pytorch_module_path_resolves(path):
    module, name = path.rsplit(".", 1)
    assert getattr(importlib.import_module("tracegrad." + module), name) is PATHS[path]


def test_batchnorm_base_class_can_be_subclassed():
    from tracegrad.nn.modules.batchnorm import _BatchNorm
    assert issubclass(torch.nn.BatchNorm1d, _BatchNorm)


def test_unknown_name_in_activation_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        importlib.import_module("tracegrad.nn.modules.activation").Nope

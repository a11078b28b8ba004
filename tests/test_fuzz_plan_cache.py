"""The plan cache's key covers every file whose code shapes a planned kernel: a warm
start after a fix to a primitive's expansion must plan afresh, never load the kernels of
the old expansion from disk (it did: the key hashed only codegen/ and cpu_program.py,
while atan2's expansion lives in tracegrad/_primitives/trig.py)."""
import importlib.util
import sys

from tracegrad.compiler import plan_cache


def _load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_the_key_changes_with_the_file_of_an_expansion(tmp_path):
    path = tmp_path / "my_expansion.py"
    path.write_text("def expand(emit, args, dtype):\n    return args[0]\n")
    rule = _load_module(path, "my_expansion_v1").expand
    before = plan_cache._code_version_of.__wrapped__((rule,))
    assert before == plan_cache._code_version_of.__wrapped__((rule,))
    path.write_text("def expand(emit, args, dtype):\n    return args[0]  # fixed\n")
    assert plan_cache._code_version_of.__wrapped__((rule,)) != before


def test_the_registered_expansions_are_part_of_the_key():
    from tracegrad._primitives import trig
    rules = plan_cache._scalar_op_rules()
    assert trig._atan2_expand in rules and trig._atan_expand in rules
    assert plan_cache._code_version() == plan_cache._code_version_of(rules)


def test_a_rule_without_a_source_file_makes_the_graph_uncacheable():
    import functools

    import pytest
    namespace = {}
    exec("def expand(emit, args, dtype):\n    return args[0]\n", namespace)   # no file
    for rule in (namespace["expand"], functools.partial(namespace["expand"])):
        with pytest.raises(plan_cache.Uncacheable, match="lowers a scalar op"):
            plan_cache._code_version_of.__wrapped__((rule,))

"""PyTorch checkpoints and safetensors: files written by PyTorch (tests/fixtures, made by
make_torch_fixtures.py) are read without torch; the weights-only unpickler refuses code
without running or importing it; round trips with torch run where torch is installed."""
import io
import json
import os
import pickle
import sys
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.serialization import (add_safe_globals, clear_safe_globals, get_safe_globals,
                                     load, safe_globals, save)

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")


def fixture(name):
    return os.path.join(FIXTURES, name)


def test_reads_a_pytorch_checkpoint_of_every_kind_of_value():
    ck = load(fixture("torch_checkpoint.pt"))
    base = np.arange(12, dtype=np.float32).reshape(3, 4) / 8
    np.testing.assert_array_equal(ck["weight"].numpy(), base)
    np.testing.assert_array_equal(ck["transposed"].numpy(), base.T)
    np.testing.assert_array_equal(ck["row"].numpy(), base[1])
    assert ck["weight"].dtype == torch.float32 and tuple(ck["transposed"].shape) == (4, 3)
    assert ck["half"].dtype == torch.float16 and ck["half"].tolist() == [0, 0.25, 0.5, 0.75]
    # tracegrad has no bfloat16: it widens exactly to float32
    assert ck["bf16"].dtype == torch.float32 and ck["bf16"].tolist() == [1.5, -2.25, 3.0]
    assert ck["long"].dtype == torch.int64 and ck["long"].tolist() == [-2, -1, 0, 1, 2]
    assert ck["mask"].tolist() == [True, False, True]
    assert ck["int8"].dtype == torch.int8 and ck["int8"].tolist() == [-128, 0, 127]
    assert ck["double"].dtype == torch.float64 and ck["double"].shape == () \
        and float(ck["double"]) == 2.5
    assert tuple(ck["empty"].shape) == (0, 3)
    assert isinstance(ck["param"], torch.nn.Parameter) and ck["param"].requires_grad
    assert isinstance(ck["frozen"], torch.nn.Parameter) and not ck["frozen"].requires_grad
    assert ck["shape"] == torch.Size([2, 3]) and isinstance(ck["shape"], torch.Size)
    assert ck["dtype"] is torch.float16 and str(ck["device"]) == "cpu"
    opt = ck["optimizer"]
    assert float(opt["state"][0]["step"]) == 3.0
    assert opt["param_groups"] == [{"lr": 0.01, "betas": (0.9, 0.999), "params": [0]}]
    assert ck["epoch"] == 7 and ck["name"] == "run-1" and ck["blob"] == b"\x00\xff"
    assert ck["nested"] == [1, (2.5, None), {"k": True}]
    assert type(ck["ordered"]) is OrderedDict and list(ck["ordered"]) == ["b", "a"]


def test_views_of_one_storage_share_memory_as_in_pytorch():
    ck = load(fixture("torch_checkpoint.pt"))
    ck["weight"][1, 0] = 100.0
    assert ck["row"].tolist()[0] == 100.0 and ck["transposed"].tolist()[0][1] == 100.0


def test_pytorch_state_dict_drives_the_same_tracegrad_model():
    sd = load(fixture("torch_mlp_state_dict.pt"))
    assert list(sd) == ["0.weight", "0.bias", "2.weight", "2.bias"]
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    model.load_state_dict(sd)
    with open(fixture("torch_mlp_expected.json")) as f:
        expected = json.load(f)
    out = model(torch.tensor(expected["input"]))
    np.testing.assert_allclose(out.detach().numpy(), expected["output"], rtol=1e-5, atol=1e-6)


def test_whole_pytorch_model_is_refused_without_importing_torch():
    had_torch = "torch" in sys.modules
    with pytest.raises(pickle.UnpicklingError,
                       match="(?s)torch_whole_model.pt.*GLOBAL "
                             "torch.nn.modules.container.Sequential was not an allowed global by default.*add_safe_globals"):
        load(fixture("torch_whole_model.pt"))
    assert ("torch" in sys.modules) == had_torch


def test_reads_safetensors_written_by_the_safetensors_library():
    st = load(fixture("tiny.safetensors"))
    assert sorted(st) == ["bf16", "embed", "half", "ids"]
    assert st["embed"].tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert st["half"].dtype == torch.float16 and st["half"].tolist() == [0.5, -1.0]
    assert st["bf16"].dtype == torch.float32 and st["bf16"].tolist() == [1.5, -2.25]
    assert st["ids"].dtype == torch.int64 and st["ids"].tolist() == [3, 1, 2]


def test_safetensors_round_trip_and_bad_files(tmp_path):
    sd = {"w": torch.randn(3, 2), "b": torch.arange(4, dtype=torch.int32),
          "m": torch.tensor([True, False])}
    path = tmp_path / "m.safetensors"
    save(sd, path, format="safetensors", metadata={"step": "3"})
    out = load(path)
    for k in sd:
        assert out[k].dtype == sd[k].dtype
        np.testing.assert_array_equal(out[k].numpy(), sd[k].numpy())
    data = path.read_bytes()
    (n,) = np.frombuffer(data[:8], dtype="<u8")
    assert (8 + int(n)) % 8 == 0 and b'"__metadata__":{"step":"3"}' in data
    path.write_bytes(data[:-3])  # truncated data section
    with pytest.raises(RuntimeError, match="m.safetensors.*invalid safetensors.*does not "
                                           "match its data offsets"):
        load(path)
    with pytest.raises(TypeError, match="str -> Tensor"):
        save({"w": 1.0}, tmp_path / "x.safetensors", format="safetensors")


# ---- malicious files -----------------------------------------------------------------------
class _RunsShell:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _zip_checkpoint(pickled: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickled)
        zf.writestr("archive/byteorder", "little")
        zf.writestr("archive/version", "3\n")
    return buf.getvalue()


def test_malicious_pickle_is_refused_without_executing(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"w": _RunsShell(marker)}, protocol=2)
    path = tmp_path / "evil.pt"
    path.write_bytes(_zip_checkpoint(payload))
    with pytest.raises(pickle.UnpicklingError, match=r"GLOBAL (posix|os)\.system was not an "
                                                     r"allowed global"):
        load(path)
    raw = tmp_path / "evil.pkl"  # a bare pickle is not a checkpoint format at all
    raw.write_bytes(payload)
    with pytest.raises(RuntimeError, match="not a tracegrad file"):
        load(raw)
    assert not marker.exists()


def test_refused_global_is_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    (tmp_path / "tg_trap_module.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                                f"def boom(*a):\n    return a\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    payload = b"\x80\x02ctg_trap_module\nboom\nq\x00)R."
    path = tmp_path / "trap.pt"
    path.write_bytes(_zip_checkpoint(payload))
    with pytest.raises(pickle.UnpicklingError, match="tg_trap_module.boom"):
        load(path)
    assert not marker.exists() and "tg_trap_module" not in sys.modules


def test_bad_tensor_views_are_refused(tmp_path):
    from tracegrad._serialization_torch import _Global, _StorageRef, _TorchPickler

    class OutOfBounds:  # a 5-element view of a 2-element storage
        def __reduce__(self):
            return (_Global("torch._utils", "_rebuild_tensor_v2"),
                    (_StorageRef("0", "FloatStorage", 2), 0, (5,), (1,), False, OrderedDict()))

    pickled = io.BytesIO()
    _TorchPickler(pickled).dump(OutOfBounds())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", pickled.getvalue())
        zf.writestr("archive/data/0", np.zeros(2, np.float32).tobytes())
    path = tmp_path / "bad.pt"
    path.write_bytes(buf.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="reads past its storage of 2 elements"):
        load(path)


# ---- the allow list ------------------------------------------------------------------------
class Config:
    def __init__(self, width):
        self.width = width


def test_safe_globals_context_and_registry(tmp_path):
    path = tmp_path / "cfg.pt"
    save({"cfg": Config(3), "w": torch.ones(2)}, path, format="torch")
    with pytest.raises(pickle.UnpicklingError, match="Config was not an allowed global"):
        load(path)
    with safe_globals([Config]):
        assert Config in get_safe_globals()
        assert load(path)["cfg"].width == 3
    assert Config not in get_safe_globals()
    add_safe_globals([(Config, f"{__name__}.Config")])
    try:
        assert load(path)["cfg"].width == 3
    finally:
        clear_safe_globals()


def test_whole_tracegrad_model_round_trip(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    path = tmp_path / "net.pt"
    save(net, path)
    with pytest.warns(UserWarning, match="weights_only=False.*arbitrary code"):
        again = load(path, weights_only=False)
    x = torch.randn(5, 3)
    np.testing.assert_array_equal(again(x).detach().numpy(), net(x).detach().numpy())
    assert isinstance(again[0].weight, torch.nn.Parameter)


def test_torch_format_round_trip_without_torch(tmp_path):
    base = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    obj = {"t": base.t(), "p": torch.nn.Parameter(torch.ones(2)), "i": torch.arange(3),
           "h": torch.ones(2, dtype=torch.float16), "size": torch.Size([1, 2]),
           "dt": torch.int8, "dev": torch.device("cpu"), "bytes": b"\x00\x01", "n": None,
           "np_scalars": [np.float32(0.5), np.int64(3), np.bool_(True)]}
    path = tmp_path / "rt.pt"
    save(obj, path, format="torch")
    names = zipfile.ZipFile(path).namelist()
    assert "archive/data.pkl" in names and "archive/version" in names
    out = load(path)
    np.testing.assert_array_equal(out["t"].numpy(), base.t().numpy())
    assert isinstance(out["p"], torch.nn.Parameter) and out["h"].dtype == torch.float16
    assert out["size"] == torch.Size([1, 2]) and out["dt"] is torch.int8
    assert out["bytes"] == b"\x00\x01" and out["n"] is None and out["i"].tolist() == [0, 1, 2]
    assert out["np_scalars"] == [0.5, 3, True] and type(out["np_scalars"][1]) is int
    with zipfile.ZipFile(path) as zf:  # records start 64-byte aligned, as torch writes them
        for info in zf.infolist():
            start = info.header_offset + 30 + len(info.filename) + len(info.extra)
            assert start % 64 == 0, info.filename


# ---- with PyTorch itself (skipped where torch is not installed) ----------------------------
def test_round_trip_with_real_pytorch(tmp_path):
    real = pytest.importorskip("torch")
    sd = OrderedDict([("w", torch.randn(3, 2)), ("b", torch.arange(3)),
                      ("p", torch.nn.Parameter(torch.ones(2))), ("h", torch.ones(2).half())])
    path = tmp_path / "tg.pt"
    save(sd, path, format="torch")
    theirs = real.load(path, weights_only=True)
    for k in sd:
        np.testing.assert_array_equal(theirs[k].detach().numpy(), sd[k].detach().numpy())
    assert isinstance(theirs["p"], real.nn.Parameter)
    real.save({"x": real.arange(4.0).reshape(2, 2).t(), "n": 3}, tmp_path / "pt.pt")
    mine = load(tmp_path / "pt.pt")
    assert mine["x"].tolist() == [[0.0, 2.0], [1.0, 3.0]] and mine["n"] == 3
    st = pytest.importorskip("safetensors.torch")
    save({"a": torch.randn(2, 2)}, tmp_path / "a.safetensors", format="safetensors")
    assert tuple(st.load_file(str(tmp_path / "a.safetensors"))["a"].shape) == (2, 2)

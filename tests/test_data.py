"""utils.data: datasets, samplers, collate, DataLoader (single and multi-process)."""
import collections
import os

import numpy as np
import pytest

import tracegrad as torch
from tracegrad.utils.data import (BatchSampler, ChainDataset, ConcatDataset, DataLoader,
                                  Dataset, IterableDataset, RandomSampler, SequentialSampler,
                                  Subset, SubsetRandomSampler, TensorDataset,
                                  WeightedRandomSampler, default_collate, get_worker_info,
                                  random_split)


class Squares(Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if not 0 <= i < self.n:
            raise IndexError(i)
        return {"x": torch.tensor([float(i), float(i * i)]), "i": i, "name": f"s{i}"}


class Faulty(Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, i):
        if i == 5:
            raise KeyError(f"sample {i} is broken")
        return i


class Stream(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        lo, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(lo, self.n, step))

    def __len__(self):
        return self.n


def flat(loader):
    return [b.tolist() for b in loader]


# ---- datasets -----------------------------------------------------------------------------
def test_tensor_dataset_and_size_mismatch():
    x, y = torch.arange(6).reshape(3, 2), torch.tensor([0.5, 1.5, 2.5])
    ds = TensorDataset(x, y)
    assert len(ds) == 3
    a, b = ds[2]
    assert a.tolist() == [4, 5] and b.item() == 2.5
    with pytest.raises(ValueError, match="Size mismatch"):
        TensorDataset(torch.zeros(3), torch.zeros(4))


def test_subset_concat_chain():
    ds = Squares(5)
    sub = Subset(ds, [4, 0, 2])
    assert len(sub) == 3 and sub[0]["i"] == 4 and sub[-1]["i"] == 2
    cat = ConcatDataset([Squares(2), Squares(3)])
    assert len(cat) == 5 and [cat[i]["i"] for i in range(5)] == [0, 1, 0, 1, 2]
    assert cat[-1]["i"] == 2 and cat.cumulative_sizes == [2, 5]
    with pytest.raises(ValueError, match="exceed"):
        cat[-6]
    assert len(Squares(2) + Squares(1)) == 3
    with pytest.raises(ValueError, match="empty"):
        ConcatDataset([])
    assert list(ChainDataset([Stream(2), Stream(3)])) == [0, 1, 0, 1, 2]


def test_random_split_lengths_fractions_generator():
    a, b = random_split(range(10), [3, 7], generator=torch.Generator().manual_seed(1))
    assert len(a) == 3 and len(b) == 7
    assert sorted(list(a) + list(b)) == list(range(10))
    c, d = random_split(range(10), [3, 7], generator=torch.Generator().manual_seed(1))
    assert list(a) == list(c) and list(b) == list(d)
    parts = random_split(range(11), [0.5, 0.3, 0.2], generator=torch.Generator().manual_seed(0))
    assert [len(p) for p in parts] == [6, 3, 2]  # floor 5,3,2 + remainder round-robin
    with pytest.raises(ValueError, match="Sum of input lengths"):
        random_split(range(10), [3, 3])


# ---- samplers -----------------------------------------------------------------------------
def test_samplers():
    assert list(SequentialSampler(range(4))) == [0, 1, 2, 3]
    g = torch.Generator().manual_seed(3)
    perm = list(RandomSampler(range(10), generator=g))
    assert sorted(perm) == list(range(10))
    assert perm == torch.randperm(10, generator=torch.Generator().manual_seed(3)).tolist()
    draws = list(RandomSampler(range(3), replacement=True, num_samples=70, generator=g))
    assert len(draws) == 70 and set(draws) <= {0, 1, 2}
    more = list(RandomSampler(range(4), num_samples=10, generator=g))
    assert len(more) == 10 and sorted(more[:4]) == [0, 1, 2, 3]
    sub = list(SubsetRandomSampler([10, 20, 30], generator=g))
    assert sorted(sub) == [10, 20, 30]
    w = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 50, generator=g))
    assert len(w) == 50 and set(w) <= {1, 3}
    assert sorted(WeightedRandomSampler([1, 1, 1], 3, replacement=False, generator=g)) == [0, 1, 2]
    bs = BatchSampler(range(7), 3, drop_last=True)
    assert list(bs) == [[0, 1, 2], [3, 4, 5]] and len(bs) == 2
    assert len(BatchSampler(range(7), 3, drop_last=False)) == 3
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(range(3), 0, False)
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler([])


# ---- collate ------------------------------------------------------------------------------
def test_default_collate_nested():
    Point = collections.namedtuple("Point", "x y")
    batch = [
        {"t": torch.ones(2) * i, "a": np.full(3, i, dtype=np.int32), "f": 0.5 * i, "n": i,
         "b": bool(i), "s": f"s{i}", "pair": (i, [float(i), "q"]), "pt": Point(i, 2 * i)}
        for i in range(3)]
    out = default_collate(batch)
    assert out["t"].shape == (3, 2) and out["t"].tolist()[2] == [2.0, 2.0]
    assert out["a"].dtype == torch.int32 and out["a"].shape == (3, 3)
    assert out["f"].dtype == torch.float64 and out["f"].tolist() == [0.0, 0.5, 1.0]
    assert out["n"].dtype == torch.int64 and out["n"].tolist() == [0, 1, 2]
    assert out["b"].dtype == torch.bool
    assert out["s"] == ["s0", "s1", "s2"]
    assert isinstance(out["pair"], list) and out["pair"][0].tolist() == [0, 1, 2]
    assert out["pair"][1][0].dtype == torch.float64 and out["pair"][1][1] == ["q"] * 3
    assert isinstance(out["pt"], Point) and out["pt"].y.tolist() == [0, 2, 4]
    assert default_collate([np.float32(1), np.float32(2)]).dtype == torch.float32
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])


# ---- DataLoader ---------------------------------------------------------------------------
def test_order_batches_and_drop_last():
    ds = TensorDataset(torch.arange(10))
    want = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [x.tolist() for (x,) in DataLoader(ds, batch_size=4)] == want
    dl = DataLoader(ds, batch_size=4, drop_last=True)
    assert len(dl) == 2 and [x.tolist() for (x,) in dl] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert len(DataLoader(ds, batch_size=4)) == 3
    batch = next(iter(DataLoader(Squares(5), batch_size=2)))
    assert batch["x"].tolist() == [[0.0, 0.0], [1.0, 1.0]] and batch["name"] == ["s0", "s1"]
    single = list(DataLoader(ds, batch_size=None))
    assert [t.tolist() for (t,) in single[:2]] == [0, 1]


def test_shuffle_reproducible():
    ds = TensorDataset(torch.arange(20))

    def epoch(**kw):
        return [x.tolist() for (x,) in DataLoader(ds, batch_size=6, shuffle=True, **kw)]
    torch.manual_seed(0)
    a = epoch()
    torch.manual_seed(0)
    b = epoch()
    assert a == b and sorted(sum(a, [])) == list(range(20)) and sum(a, []) != list(range(20))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    e1, e2 = epoch(generator=g1), epoch(generator=g2)
    assert e1 == e2
    assert epoch(generator=g1) != e1  # the next epoch is a new permutation


def test_sampler_and_batch_sampler_options():
    ds = TensorDataset(torch.arange(6))
    dl = DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])
    assert [x.tolist() for (x,) in dl] == [[5, 4], [3, 2], [1, 0]]
    dl = DataLoader(ds, batch_sampler=[[0, 5], [1], [2, 3, 4]])
    assert [x.tolist() for (x,) in dl] == [[0, 5], [1], [2, 3, 4]] and len(dl) == 3
    dl = DataLoader(ds, batch_size=3, collate_fn=lambda items: [int(x) for (x,) in items])
    assert list(dl) == [[0, 1, 2], [3, 4, 5]]


def test_bad_arguments():
    ds = TensorDataset(torch.arange(6))
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=SequentialSampler(ds), shuffle=True)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=-2)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Stream(3), shuffle=True)
    with pytest.raises(ValueError, match="persistent_workers"):
        DataLoader(ds, persistent_workers=True)


def test_empty_dataset_is_a_clear_error():
    empty = TensorDataset(torch.zeros(0, 3))
    dl = DataLoader(empty, batch_size=2)
    with pytest.raises(ValueError, match="empty"):
        iter(dl)
    with pytest.raises(ValueError, match="empty"):
        DataLoader(empty, batch_size=2, shuffle=True)
    with pytest.raises(ValueError, match="empty"):
        iter(DataLoader(empty, batch_size=2, num_workers=2))


def test_iterable_dataset_single_process():
    assert [b.tolist() for b in DataLoader(Stream(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert len(DataLoader(Stream(7), batch_size=3)) == 3
    dl = DataLoader(Stream(7), batch_size=3, drop_last=True)
    assert [b.tolist() for b in dl] == [[0, 1, 2], [3, 4, 5]]
    assert list(DataLoader(Stream(3), batch_size=None)) == [0, 1, 2]  # default_convert keeps ints


# ---- worker processes ---------------------------------------------------------------------
def _record_worker(worker_id):
    info = get_worker_info()
    assert info.id == worker_id and info.num_workers == 2
    os.environ["TG_WORKER_TAG"] = str(worker_id)


class Tagged(Dataset):
    def __len__(self):
        return 9

    def __getitem__(self, i):
        return i, int(os.environ.get("TG_WORKER_TAG", "-1")), os.getpid()


def test_workers_give_the_same_batches_in_the_same_order():
    ds = Squares(23)
    for kw in (dict(batch_size=4), dict(batch_size=5, drop_last=True),
               dict(batch_size=3, shuffle=True)):
        gen_a = torch.Generator().manual_seed(11) if kw.get("shuffle") else None
        gen_b = torch.Generator().manual_seed(11) if kw.get("shuffle") else None
        ref = list(DataLoader(ds, generator=gen_a, **kw))
        got = list(DataLoader(ds, num_workers=2, generator=gen_b, **kw))
        assert len(ref) == len(got) > 0
        for r, g in zip(ref, got):
            assert r["x"].tolist() == g["x"].tolist() and r["name"] == g["name"]


def test_workers_init_fn_info_and_seeds():
    dl = DataLoader(Tagged(), batch_size=2, num_workers=2, worker_init_fn=_record_worker)
    items = [row for batch in dl for row in zip(*[t.tolist() for t in batch])]
    assert [i for i, _, _ in items] == list(range(9))
    assert {tag for _, tag, _ in items} == {0, 1}
    assert all(pid != os.getpid() for _, _, pid in items)
    assert get_worker_info() is None


def test_worker_errors_are_reraised_with_context():
    dl = DataLoader(Faulty(), batch_size=2, num_workers=2)
    with pytest.raises(KeyError, match="sample 5 is broken") as e:
        list(dl)
    assert "worker process" in str(e.value)
    with pytest.raises(KeyError, match="sample 5 is broken"):
        list(DataLoader(Faulty(), batch_size=2))


def test_iterable_dataset_with_workers_and_persistent_workers():
    got = sorted(v for b in DataLoader(Stream(11), batch_size=2, num_workers=2) for v in b.tolist())
    assert got == list(range(11))
    dl = DataLoader(Squares(10), batch_size=3, num_workers=2, persistent_workers=True)
    first = [b["i"].tolist() for b in dl]
    it = dl._iterator
    second = [b["i"].tolist() for b in dl]
    assert first == second == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]
    assert dl._iterator is it
    partial = iter(dl)
    next(partial)
    assert [b["i"].tolist() for b in dl] == first  # a new epoch after an unfinished one
    it._shutdown()


def test_worker_timeout():
    class Slow(Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            import time
            time.sleep(3)
            return i
    with pytest.raises(RuntimeError, match="timed out"):
        list(DataLoader(Slow(), num_workers=1, timeout=0.3))

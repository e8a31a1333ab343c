"""Tests of lib/runtime.py: device, seed, scale, threads."""

import random

import numpy as np
import pytest
import torch

from lib import runtime


def test_device_default_follows_cuda(monkeypatch):
    monkeypatch.delenv("BOOK_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.device().type == expected


@pytest.mark.parametrize("value", ["cpu", " CPU ".strip().lower()])
def test_device_from_env(monkeypatch, value):
    monkeypatch.setenv("BOOK_DEVICE", value)
    assert runtime.device() == torch.device("cpu")


@pytest.mark.parametrize("value", ["tpu", "gpu", "cuda:x", "meta"])
def test_device_rejects_unknown(monkeypatch, value):
    monkeypatch.setenv("BOOK_DEVICE", value)
    with pytest.raises(ValueError, match=repr(value)):
        runtime.device()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_rejects_missing_cuda(monkeypatch):
    monkeypatch.setenv("BOOK_DEVICE", "cuda")
    with pytest.raises(ValueError, match="no CUDA device"):
        runtime.device()


def test_lib_exports_runtime():
    import lib

    assert lib.device is runtime.device and lib.seed is runtime.seed and lib.scale is runtime.scale


def test_seed_makes_all_generators_repeatable():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3).tolist()

    assert runtime.seed(123) == 123
    first = draw()
    runtime.seed(123)
    assert draw() == first
    runtime.seed(124)
    assert draw() != first


@pytest.mark.parametrize("bad", [1.5, "3", None, True])
def test_seed_rejects_non_int(bad):
    with pytest.raises(TypeError, match="int"):
        runtime.seed(bad)


@pytest.mark.parametrize("bad", [-1, 2**32])
def test_seed_rejects_out_of_range(bad):
    with pytest.raises(ValueError, match=str(bad)):
        runtime.seed(bad)


def test_scale(monkeypatch):
    monkeypatch.delenv("BOOK_SCALE", raising=False)
    assert runtime.scale() == "small"
    monkeypatch.setenv("BOOK_SCALE", "FULL")
    assert runtime.scale() == "full"
    monkeypatch.setenv("BOOK_SCALE", "huge")
    with pytest.raises(ValueError, match="'huge'"):
        runtime.scale()


def test_threads(monkeypatch):
    monkeypatch.delenv("BOOK_THREADS", raising=False)
    assert runtime.threads() == 1
    monkeypatch.setenv("BOOK_THREADS", "2")
    assert runtime.threads() == 2
    for bad in ("0", "-1", "two", "1.5"):
        monkeypatch.setenv("BOOK_THREADS", bad)
        with pytest.raises(ValueError, match=repr(bad)):
            runtime.threads()


def test_configure_threads_applies(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv("BOOK_THREADS", "1")
        assert runtime.configure_threads() == 1
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


# ------------------------------------------------------------------ found by tests/test_fuzz.py


def test_threads_refuses_huge_values(monkeypatch):
    for bad in ("99999999999999999999", "1025"):
        monkeypatch.setenv("BOOK_THREADS", bad)
        with pytest.raises(ValueError, match="up to 1024"):
            runtime.threads()
    monkeypatch.setenv("BOOK_THREADS", "1024")
    assert runtime.threads() == 1024


def test_check_device_of_device_arguments():
    assert runtime._check_device(None) is None
    assert runtime._check_device("cpu") == torch.device("cpu")
    with pytest.raises(TypeError, match="device must be None, a str or a torch.device, got int"):
        runtime._check_device(0)
    with pytest.raises(ValueError, match="device must be 'cpu', 'cuda', 'cuda:N' or 'mps', got 'meta'"):
        runtime._check_device("meta")
    with pytest.raises(ValueError, match="got 'tpu'"):
        runtime._check_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="visible CUDA device"):
            runtime._check_device("cuda:0")

"""qnetkit.sim.streams: named streams are reproducible, distinct and independent of hash salting."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from qnetkit.errors import ParameterError
from qnetkit.sim import RandomStreams


def test_same_seed_and_name_give_the_same_draws() -> None:
    a = RandomStreams(42).stream("heralding/link-3").random(1000)
    b = RandomStreams(42).stream("heralding/link-3").random(1000)
    assert np.array_equal(a, b)


def test_different_names_or_seeds_give_different_draws() -> None:
    base = RandomStreams(42).stream("a").integers(0, 2**63, size=16)
    other_name = RandomStreams(42).stream("b").integers(0, 2**63, size=16)
    other_seed = RandomStreams(43).stream("a").integers(0, 2**63, size=16)
    # 64-bit draws: a chance match of even one would be a derivation bug, not luck.
    assert not np.any(base == other_name)
    assert not np.any(base == other_seed)


def test_stream_is_shared_and_fresh_restarts() -> None:
    streams = RandomStreams(1)
    first = streams.stream("x")
    head = first.random(3)
    assert streams.stream("x") is first
    tail = streams.stream("x").random(3)  # continues, does not replay
    assert not np.array_equal(head, tail)
    assert np.array_equal(streams.fresh("x").random(6), np.concatenate([head, tail]))
    assert streams.names == ("x",)


def test_order_of_creation_and_other_streams_do_not_matter() -> None:
    one = RandomStreams(9)
    one.stream("noise").random(12345)  # heavy use of another stream
    a_then = one.stream("a").random(10)
    two = RandomStreams(9)
    a_alone = two.stream("a").random(10)
    assert np.array_equal(a_then, a_alone)


def test_streams_look_independent() -> None:
    streams = RandomStreams(2024)
    n = 200_000
    x = streams.stream("memory-A").standard_normal(n)
    y = streams.stream("memory-B").standard_normal(n)
    r = float(np.corrcoef(x, y)[0, 1])
    # Under independence r ~ N(0, 1/n): 5 sigma is 0.011 here; a shared or shifted stream gives ~1.
    assert abs(r) < 5.0 / np.sqrt(n)
    lagged = float(np.corrcoef(x[1:], y[:-1])[0, 1])
    assert abs(lagged) < 5.0 / np.sqrt(n)


def test_draws_do_not_depend_on_python_hash_salt() -> None:
    code = ("from qnetkit.sim import RandomStreams;"
            "print(RandomStreams(5).stream('swap@node-2').integers(0, 2**62, size=4).tolist())")
    outputs = set()
    for salt in ("1", "2", "random"):
        env = dict(os.environ, PYTHONHASHSEED=salt)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True)
        outputs.add(done.stdout.strip())
    local = str(RandomStreams(5).stream("swap@node-2").integers(0, 2**62, size=4).tolist())
    assert outputs == {local}


def test_numpy_integer_seed_equals_python_int() -> None:
    a = RandomStreams(np.int64(77)).stream("s").random(4)  # type: ignore[arg-type]
    b = RandomStreams(77).stream("s").random(4)
    assert np.array_equal(a, b)


@pytest.mark.parametrize("seed", [-1, 1.5, True, "3", None])
def test_bad_seed_is_a_parameter_error(seed: object) -> None:
    with pytest.raises(ParameterError) as info:
        RandomStreams(seed)  # type: ignore[arg-type]
    assert info.value.name == "seed"


def test_non_string_name_is_a_parameter_error() -> None:
    with pytest.raises(ParameterError) as info:
        RandomStreams(0).stream(3)  # type: ignore[arg-type]
    assert info.value.name == "name"

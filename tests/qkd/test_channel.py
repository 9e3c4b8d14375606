"""The classical channel: frames, leakage log, Wegman-Carter authentication, TCP transport."""

from __future__ import annotations

import os
import socket
import struct
import threading

import numpy as np
import pytest

from qnetkit.qkd.channel import (
    DEFAULT_MAX_FRAME_BYTES,
    AuthenticationError,
    AuthKeyPool,
    ChannelError,
    Endpoint,
    TcpListener,
    local_pair,
    parse_address,
    run_parties,
    tcp_connect,
)


def _exchange(a: Endpoint, b: Endpoint, pool_a: AuthKeyPool, pool_b: AuthKeyPool) -> tuple:
    def alice() -> int:
        with a.stage("reconciliation"):
            blocks = {"blocks": np.arange(5, dtype=np.int64)}
            a.send("parities", blocks, leaked=np.ones(37, np.uint8))
            a.recv("ack")
        return a.authenticate(pool_a)

    def bob() -> tuple[int, object]:
        with b.stage("reconciliation"):
            msg = b.recv("parities")
            b.send("ack", {"ok": True, "note": "fine", "blob": b"\x00\x01"})
        return b.authenticate(pool_b), msg

    return run_parties(alice, bob, endpoints=(a, b))


def test_local_roundtrip_and_exact_leak_accounting() -> None:
    a, b = local_pair()
    key = os.urandom(128)
    used_a, (used_b, msg) = _exchange(a, b, AuthKeyPool(key), AuthKeyPool(key))
    assert np.array_equal(msg.public["blocks"], np.arange(5))
    assert msg.leaked.sum() == 37 and msg.leaked.size == 37
    # r (128 bits) once plus one 128-bit one-time pad per tag and direction.
    assert used_a == used_b == 128 + 2 * 128
    for ep in (a, b):
        assert ep.log.leaked_bits("reconciliation") == 37
        assert ep.log.messages("reconciliation") == 2
        assert ep.log.channel_uses("reconciliation") == 1


def test_tampered_transcript_is_rejected() -> None:
    a, b = local_pair()
    key = os.urandom(128)
    pool_a, pool_b = AuthKeyPool(key), AuthKeyPool(key)

    def alice() -> int:
        a.send("x", {"v": 1})
        return a.authenticate(pool_a)

    def bob() -> int:
        b.recv("x")
        b._received.feed(b"forged")  # what a man in the middle's change amounts to
        return b.authenticate(pool_b)

    with pytest.raises(AuthenticationError, match="authentication failed"):
        run_parties(alice, bob, endpoints=(a, b))


def test_different_preshared_keys_fail_authentication() -> None:
    a, b = local_pair()
    with pytest.raises(AuthenticationError):
        _exchange(a, b, AuthKeyPool(b"\x01" * 64), AuthKeyPool(b"\x02" * 64))


def test_a_failing_party_unblocks_its_peer_at_once() -> None:
    a, b = local_pair()
    b.timeout_s = 60.0  # only a bound on waiting: the abort frame must end Bob's recv
    ended: list[str] = []

    def alice() -> None:
        raise ValueError("alice broke")

    def bob() -> None:
        try:
            b.recv("never-sent")
        except ChannelError as exc:
            ended.append(str(exc))
            raise

    with pytest.raises(ValueError, match="alice broke"):
        run_parties(alice, bob, endpoints=(a, b))
    # Ended by Alice's abort frame, not by Bob's own timeout (latency: benchmarks/timings.py).
    assert ended == ["peer aborted: ValueError: alice broke"]


def test_pool_exhaustion_is_a_clear_error() -> None:
    pool = AuthKeyPool(b"\x00" * 20)
    pool.take(16)
    with pytest.raises(AuthenticationError, match="exhausted"):
        pool.take(16)
    pool.replenish(b"\x00" * 16)
    assert pool.available_bytes == 20 and pool.consumed_bytes == 16


def test_wrong_topic_raises() -> None:
    a, b = local_pair()
    a.send("hello")
    with pytest.raises(ChannelError, match="expected message 'bye'"):
        b.recv("bye")


def test_tcp_transport_matches_local() -> None:
    listener = TcpListener("127.0.0.1:0")
    box: dict[str, Endpoint] = {}
    t = threading.Thread(target=lambda: box.setdefault("b", listener.accept("bob")))
    t.start()
    a = tcp_connect("alice", f"127.0.0.1:{listener.port}")
    t.join(5)
    listener.close()
    b = box["b"]
    key = os.urandom(128)
    try:
        used_a, (used_b, msg) = _exchange(a, b, AuthKeyPool(key), AuthKeyPool(key))
    finally:
        a.close()
        b.close()
    assert used_a == used_b == 384
    assert msg.leaked.size == 37
    la, lb = local_pair()
    _exchange(la, lb, AuthKeyPool(key), AuthKeyPool(key))
    assert a.log.entries == la.log.entries  # same frames, same sizes over TCP and in-process


def _bob_with_raw_peer(max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> tuple:
    """Bob's real TCP endpoint, and a raw socket connected to it that can send anything."""
    listener = TcpListener("127.0.0.1:0")
    box: dict[str, Endpoint] = {}
    t = threading.Thread(
        target=lambda: box.setdefault("b", listener.accept("bob", max_frame_bytes))
    )
    t.start()
    raw = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    t.join(5)
    listener.close()
    bob = box["b"]
    bob._sock.settimeout(5)  # the old code would wait for the announced bytes: fail, not hang
    return bob, raw


@pytest.mark.parametrize("announced", [2**64 - 1, 2**30, DEFAULT_MAX_FRAME_BYTES + 1])
def test_huge_announced_frame_is_refused_before_reading(announced: int) -> None:
    """A peer announces a frame length (64-bit, before any authentication) and sends nothing
    more: the endpoint refuses it at once instead of allocating or waiting for the bytes."""
    bob, raw = _bob_with_raw_peer()
    try:
        raw.sendall(struct.pack("!Q", announced))
        with pytest.raises(ChannelError, match=f"frame of {announced} bytes exceeds the maximum"):
            bob.recv("setup")
    finally:
        raw.close()
        bob.close()


def test_frame_limit_is_configurable_on_both_sides() -> None:
    bob, raw = _bob_with_raw_peer(max_frame_bytes=1024)
    try:
        raw.sendall(struct.pack("!Q", 1025) + b"\x00" * 1025)
        with pytest.raises(ChannelError, match="exceeds the maximum of 1024 bytes"):
            bob.recv("setup")
        # A frame within the limit still passes (a fresh pair, the stream above is spoilt).
    finally:
        raw.close()
        bob.close()
    listener = TcpListener("127.0.0.1:0")
    box: dict[str, Endpoint] = {}
    t = threading.Thread(target=lambda: box.setdefault("b", listener.accept("bob", 1024)))
    t.start()
    a = tcp_connect("alice", f"127.0.0.1:{listener.port}", max_frame_bytes=1024)
    t.join(5)
    listener.close()
    b = box["b"]
    try:
        a.send("small", {"blob": b"x" * 500})
        assert b.recv("small").public["blob"] == b"x" * 500
        with pytest.raises(ChannelError, match="outgoing frame"):
            a.send("big", {"blob": b"x" * 2000})  # refused before it is sent
    finally:
        a.close()
        b.close()


def test_connect_refused_is_a_channel_error() -> None:
    listener = TcpListener("127.0.0.1:0")
    port = listener.port
    listener.close()
    with pytest.raises(ChannelError, match="cannot connect"):
        tcp_connect("alice", f"127.0.0.1:{port}", timeout_s=2)


@pytest.mark.parametrize("bad", ["localhost", ":80", "host:0", "host:99999", "h:x"])
def test_parse_address_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_address(bad)

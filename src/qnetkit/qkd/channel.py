"""Authenticated classical channel between Alice and Bob, with exact leakage accounting.

Each party holds one ``Endpoint``. Messages carry *public* data (seeds, indices, flags: nothing
derived from the key) and *leaked* bits (parities, syndromes, hashes: derived from the key).
Every frame is serialised to bytes, so in-process and TCP channels behave and count alike.
Authentication is Wegman-Carter (Wegman and Carter, JCSS 22, 265 (1981)): at the end of a block
each side tags the byte stream it sent with Poly1305 (an epsilon-almost-Delta-universal hash,
Bernstein 2005) whose hash key ``r`` comes once from the pre-shared pool and whose one-time pad
``s`` is fresh pool key for every tag; the pool consumption is booked against the produced key.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import queue
import socket
import struct
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
from cryptography.hazmat.primitives.poly1305 import Poly1305

from qnetkit._types import BitArray

T = TypeVar("T")
U = TypeVar("U")

TAG_BYTES = 16
HASH_KEY_BYTES = 16
_LEN = struct.Struct("!Q")
# Frames arrive before their transcript is authenticated: a peer (or anyone on the path) that
# announces a huge length must not make us allocate it. 64 MiB holds the largest message of a
# run of ~8e6 detections (sifting: an 8-byte pulse index each); longer runs raise it on both
# sides (--max-frame-mib).
DEFAULT_MAX_FRAME_BYTES = 64 * 2**20


class ChannelError(RuntimeError):
    """The peer broke the protocol: wrong topic, closed connection, malformed frame."""


class AuthenticationError(RuntimeError):
    """A transcript tag did not verify, or the authentication key pool ran dry."""


@dataclass
class Message:
    """One received message: its topic, public fields and key-derived (leaked) bits."""

    topic: str
    public: dict[str, Any]
    leaked: BitArray


@dataclass(frozen=True)
class LogEntry:
    """What crossed the channel: who sent it, in which stage, its size and its leaked bits."""

    stage: str
    sender: str
    topic: str
    wire_bytes: int
    leaked_bits: int


@dataclass
class ChannelLog:
    """Every message seen by one endpoint (sent and received), in order."""

    entries: list[LogEntry] = field(default_factory=list)

    def leaked_bits(self, stage: str | None = None) -> int:
        """Key-derived bits that crossed the channel, in both directions."""
        return sum(e.leaked_bits for e in self.entries if stage is None or e.stage == stage)

    def wire_bytes(self, stage: str | None = None) -> int:
        """Serialised bytes in both directions."""
        return sum(e.wire_bytes for e in self.entries if stage is None or e.stage == stage)

    def messages(self, stage: str | None = None) -> int:
        """Number of messages in both directions."""
        return sum(1 for e in self.entries if stage is None or e.stage == stage)

    def channel_uses(self, stage: str | None = None) -> int:
        """Round trips: changes of direction counted over the stage's messages, halved up."""
        senders = [e.sender for e in self.entries if stage is None or e.stage == stage]
        if not senders:
            return 0
        turns = 1 + sum(1 for a, b in itertools.pairwise(senders) if a != b)
        return (turns + 1) // 2


class AuthKeyPool:
    """Pre-shared secret bytes for authentication; both parties hold identical copies.

    Replenished from produced key, so the net key of a block is its output minus what
    authentication consumed.
    """

    def __init__(self, initial: bytes) -> None:
        self._buf = bytearray(initial)
        self.consumed_bytes = 0

    @property
    def available_bytes(self) -> int:
        return len(self._buf)

    def take(self, n: int) -> bytes:
        if n > len(self._buf):
            raise AuthenticationError(
                f"authentication key pool exhausted: need {n} bytes, have {len(self._buf)}"
            )
        out = bytes(self._buf[:n])
        del self._buf[:n]
        self.consumed_bytes += n
        return out

    def replenish(self, key: bytes) -> None:
        self._buf.extend(key)


# --- serialisation -------------------------------------------------------------------------


def _encode(topic: str, public: dict[str, Any] | None, leaked: BitArray | None) -> bytes:
    header: dict[str, Any] = {"t": topic, "p": {}, "a": []}
    buffers: list[bytes] = []
    for name, value in (public or {}).items():
        if isinstance(value, np.ndarray):
            arr = np.ascontiguousarray(value)
            header["a"].append([name, arr.dtype.str, list(arr.shape)])
            buffers.append(arr.tobytes())
        elif isinstance(value, bytes):
            header["a"].append([name, "bytes", [len(value)]])
            buffers.append(value)
        elif isinstance(value, np.integer | np.floating | np.bool_):
            header["p"][name] = value.item()
        else:
            header["p"][name] = value
    n_leaked = 0
    if leaked is not None:
        bits = np.asarray(leaked, dtype=np.uint8).ravel()
        n_leaked = int(bits.size)
        buffers.append(np.packbits(bits).tobytes())
    header["l"] = n_leaked
    head = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("!I", len(head)) + head + b"".join(buffers)


def _decode(frame: bytes) -> Message:
    try:
        (head_len,) = struct.unpack_from("!I", frame, 0)
        header = json.loads(frame[4 : 4 + head_len])
        pos = 4 + head_len
        public: dict[str, Any] = dict(header["p"])
        for name, dtype, shape in header["a"]:
            if dtype == "bytes":
                public[name] = bytes(frame[pos : pos + shape[0]])
                pos += shape[0]
                continue
            dt = np.dtype(dtype)
            count = int(np.prod(shape)) if shape else 1
            nbytes = count * dt.itemsize
            public[name] = np.frombuffer(frame, dtype=dt, count=count, offset=pos).reshape(shape)
            pos += nbytes
        n_leaked = int(header["l"])
        packed = np.frombuffer(frame, dtype=np.uint8, count=(n_leaked + 7) // 8, offset=pos)
        leaked = np.unpackbits(packed, count=n_leaked).astype(np.uint8)
        return Message(header["t"], public, leaked)
    except (ValueError, KeyError, struct.error, TypeError) as exc:
        raise ChannelError(f"malformed frame: {exc}") from None


# --- endpoints -----------------------------------------------------------------------------


class Endpoint(ABC):
    """One party's end of the classical channel; transport-specific subclasses move frames."""

    def __init__(self, role: str) -> None:
        self.role = role
        self.log = ChannelLog()
        self._stage = "setup"
        # Both sides see the same two byte streams; each is tagged by its sender.
        self._sent = Poly1305Stream()
        self._received = Poly1305Stream()

    @abstractmethod
    def _send_frame(self, frame: bytes) -> None: ...

    @abstractmethod
    def _recv_frame(self) -> bytes: ...

    def close(self) -> None:  # noqa: B027
        """Release the transport (idempotent)."""

    @property
    def peer(self) -> str:
        return "bob" if self.role == "alice" else "alice"

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Label the messages sent and received inside the block with a stage name."""
        previous, self._stage = self._stage, name
        try:
            yield
        finally:
            self._stage = previous

    def send(
        self, topic: str, public: dict[str, Any] | None = None, leaked: BitArray | None = None
    ) -> None:
        """Send public fields and key-derived bits; the latter are booked as leaked."""
        frame = _encode(topic, public, leaked)
        n_leaked = 0 if leaked is None else int(np.asarray(leaked).size)
        self.log.entries.append(LogEntry(self._stage, self.role, topic, len(frame), n_leaked))
        self._sent.feed(frame)
        self._send_frame(frame)

    def recv(self, topic: str) -> Message:
        """Receive the next message, which must have ``topic``."""
        frame = self._recv_frame()
        self._received.feed(frame)
        msg = _decode(frame)
        self.log.entries.append(
            LogEntry(self._stage, self.peer, msg.topic, len(frame), int(msg.leaked.size))
        )
        if msg.topic == "abort" and topic != "abort":
            raise ChannelError(f"peer aborted: {msg.public.get('reason', 'no reason given')}")
        if msg.topic != topic:
            raise ChannelError(f"expected message {topic!r}, got {msg.topic!r}")
        return msg

    def authenticate(self, pool: AuthKeyPool) -> int:
        """Exchange and verify Wegman-Carter tags over both byte streams; returns pool bits used.

        Alice tags first, then Bob; the hash key ``r`` is drawn once per endpoint session.
        """
        used_before = pool.consumed_bytes
        if self._sent.hash_key is None:
            r = pool.take(HASH_KEY_BYTES)
            self._sent.hash_key = r
            self._received.hash_key = r
        order = ("alice", "bob")
        for sender in order:
            pad = pool.take(TAG_BYTES)
            if sender == self.role:
                tag = self._sent.tag(pad)
                frame = _encode("auth.tag", {"tag": tag}, None)
                self.log.entries.append(
                    LogEntry("authentication", self.role, "auth.tag", len(frame), 0)
                )
                self._send_frame(frame)  # tags are not part of the tagged streams
            else:
                frame = self._recv_frame()
                msg = _decode(frame)
                self.log.entries.append(
                    LogEntry("authentication", self.peer, msg.topic, len(frame), 0)
                )
                if msg.topic != "auth.tag":
                    raise ChannelError(f"expected authentication tag, got {msg.topic!r}")
                if not self._received.verify(pad, msg.public.get("tag", b"")):
                    raise AuthenticationError(
                        f"message authentication failed: {self.peer}'s transcript tag is wrong"
                    )
        self._sent.reset()
        self._received.reset()
        return 8 * (pool.consumed_bytes - used_before)


class Poly1305Stream:
    """Buffers a byte stream to tag it with Poly1305 under (r, one-time pad s)."""

    def __init__(self) -> None:
        self.hash_key: bytes | None = None
        self._chunks: list[bytes] = []

    def feed(self, data: bytes) -> None:
        self._chunks.append(data)

    def reset(self) -> None:
        self._chunks.clear()

    def _mac(self, pad: bytes) -> Poly1305:
        assert self.hash_key is not None
        mac = Poly1305(self.hash_key + pad)
        for chunk in self._chunks:
            mac.update(chunk)
        # Length framing: streams that differ only by a split point must not collide.
        mac.update(struct.pack("!Q", sum(len(c) for c in self._chunks)))
        return mac

    def tag(self, pad: bytes) -> bytes:
        return self._mac(pad).finalize()

    def verify(self, pad: bytes, tag: bytes) -> bool:
        try:
            self._mac(pad).verify(tag)
        except Exception:
            return False
        return True


class LocalEndpoint(Endpoint):
    """In-process endpoint: frames pass through a queue as bytes."""

    def __init__(self, role: str, outbox: queue.Queue[bytes], inbox: queue.Queue[bytes]) -> None:
        super().__init__(role)
        self._outbox = outbox
        self._inbox = inbox
        self.timeout_s = 600.0

    def _send_frame(self, frame: bytes) -> None:
        self._outbox.put(frame)

    def _recv_frame(self) -> bytes:
        try:
            return self._inbox.get(timeout=self.timeout_s)
        except queue.Empty:
            raise ChannelError(f"{self.role}: no message from {self.peer} in time") from None


def local_pair() -> tuple[LocalEndpoint, LocalEndpoint]:
    """Two connected in-process endpoints (alice, bob)."""
    a_to_b: queue.Queue[bytes] = queue.Queue()
    b_to_a: queue.Queue[bytes] = queue.Queue()
    return LocalEndpoint("alice", a_to_b, b_to_a), LocalEndpoint("bob", b_to_a, a_to_b)


class TcpEndpoint(Endpoint):
    """Endpoint over a TCP socket; frames are length-prefixed (64-bit) and at most
    ``max_frame_bytes`` long, checked on the announced length before anything is allocated."""

    def __init__(
        self, role: str, sock: socket.socket, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    ) -> None:
        super().__init__(role)
        if max_frame_bytes < 1:
            raise ValueError(f"max_frame_bytes must be >= 1, got {max_frame_bytes}")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock = sock
        self._file = sock.makefile("rb")
        self.max_frame_bytes = max_frame_bytes

    def _too_long(self, n: int, who: str) -> ChannelError:
        return ChannelError(
            f"{who} frame of {n} bytes exceeds the maximum of {self.max_frame_bytes} bytes "
            "(raise --max-frame-mib on both sides for longer runs)"
        )

    def _send_frame(self, frame: bytes) -> None:
        if len(frame) > self.max_frame_bytes:
            raise self._too_long(len(frame), "outgoing")
        try:
            self._sock.sendall(_LEN.pack(len(frame)) + frame)
        except OSError as exc:
            raise ChannelError(f"connection to {self.peer} lost: {exc}") from None

    def _recv_exact(self, n: int) -> bytes:
        data = self._file.read(n)
        if data is None or len(data) != n:
            raise ChannelError(f"connection to {self.peer} closed")
        return bytes(data)

    def _recv_frame(self) -> bytes:
        (n,) = _LEN.unpack(self._recv_exact(_LEN.size))
        if n > self.max_frame_bytes:
            # Refused before reading or allocating; the stream cannot be resynchronised.
            raise self._too_long(n, f"{self.peer} announced a")
        return self._recv_exact(n)

    def close(self) -> None:
        try:
            self._file.close()
            self._sock.close()
        except OSError:
            pass


def parse_address(text: str, *, allow_any_port: bool = False) -> tuple[str, int]:
    """'HOST:PORT' -> (host, port); port 0 (any free port) only if ``allow_any_port``."""
    host, sep, port = text.rpartition(":")
    low = 0 if allow_any_port else 1
    if not sep or not host or not port.isdigit() or not low <= int(port) < 65536:
        raise ValueError(f"{text!r} is not HOST:PORT")
    return host, int(port)


def tcp_connect(
    role: str,
    address: str,
    timeout_s: float = 10.0,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
) -> TcpEndpoint:
    """Connect to a listening peer at 'HOST:PORT'."""
    host, port = parse_address(address)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sock = socket.create_connection((host, port), timeout=timeout_s)
            break
        except ConnectionRefusedError as exc:
            # The peer may still be starting: retry until the deadline.
            if time.monotonic() >= deadline:
                raise ChannelError(f"cannot connect to {address}: {exc.strerror}") from None
            time.sleep(0.1)
        except OSError as exc:
            raise ChannelError(f"cannot connect to {address}: {exc.strerror or exc}") from None
    sock.settimeout(None)
    return TcpEndpoint(role, sock, max_frame_bytes)


class TcpListener:
    """A listening socket that accepts one peer per call of ``accept``."""

    def __init__(self, address: str) -> None:
        host, port = parse_address(address, allow_any_port=True)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host, port))
        except OSError as exc:
            self._sock.close()
            raise ChannelError(f"cannot listen on {address}: {exc.strerror or exc}") from None
        self._sock.listen(1)

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1])

    def accept(self, role: str, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> TcpEndpoint:
        conn, _ = self._sock.accept()
        return TcpEndpoint(role, conn, max_frame_bytes)

    def close(self) -> None:
        self._sock.close()


def _send_abort(ep: Endpoint | None, exc: BaseException) -> None:
    """Tell the peer this side failed, so it stops waiting (best effort)."""
    if ep is None:
        return
    with contextlib.suppress(Exception):  # the peer may already be gone
        ep._send_frame(_encode("abort", {"reason": f"{type(exc).__name__}: {exc}"}, None))


def run_parties(
    alice: Callable[[], T],
    bob: Callable[[], U],
    timeout_s: float = 3600.0,
    endpoints: tuple[Endpoint, Endpoint] | None = None,
) -> tuple[T, U]:
    """Run Alice's side in a thread and Bob's here; re-raise the first failure of either.

    With ``endpoints`` (Alice's, Bob's), a failing side sends an ``abort`` frame so that the
    other side's pending ``recv`` ends at once instead of waiting for its timeout.
    """
    a_ep, b_ep = endpoints if endpoints is not None else (None, None)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["alice"] = alice()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
            _send_abort(a_ep, exc)

    thread = threading.Thread(target=target, name="qkd-alice", daemon=True)
    thread.start()
    try:
        bob_result = bob()
    except BaseException as exc:
        _send_abort(b_ep, exc)
        thread.join(timeout=5.0)
        if "error" in box and not isinstance(box["error"], ChannelError):
            raise box["error"] from None
        raise
    thread.join(timeout=timeout_s)
    if "error" in box:
        raise box["error"]
    if thread.is_alive():
        raise ChannelError("alice did not finish")
    return box["alice"], bob_result

"""Key-store fixtures: every store test runs on SQLite and on a real PostgreSQL.

PostgreSQL comes from env QNETKIT_TEST_PG_DSN, else from .pgtest/dsn at the repo root, else
``scripts/pg_test_cluster.sh start .pgtest`` is run (under a file lock: xdist workers may all
try at once). If PostgreSQL cannot be had the PostgreSQL tests fail, unless QNETKIT_SKIP_PG=1.
Each test gets its own database, dropped afterwards.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

REPO = Path(__file__).resolve().parents[2]
PG_DIR = REPO / ".pgtest"
PG_SCRIPT = REPO / "scripts" / "pg_test_cluster.sh"
BACKENDS = ("sqlite", "postgresql")

def _can_connect(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=5):
            return True
    except psycopg.Error:
        return False


def _start_pg() -> str:
    PG_DIR.mkdir(exist_ok=True)
    with open(PG_DIR / "start.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        dsn_file = PG_DIR / "dsn"
        if dsn_file.exists():
            dsn = dsn_file.read_text().strip()
            if _can_connect(dsn):
                return dsn
        proc = subprocess.run(
            ["bash", str(PG_SCRIPT), "start", str(PG_DIR)],
            capture_output=True, text=True, timeout=600, check=False,
        )
        if proc.returncode != 0:
            pytest.fail(
                "cannot start the PostgreSQL test cluster (set QNETKIT_SKIP_PG=1 to skip the "
                f"PostgreSQL tests):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}",
                pytrace=False,
            )
        return proc.stdout.strip().splitlines()[-1]


def _pg_url(admin_dsn: str, dbname: str) -> str:
    """A postgresql:// URL for database ``dbname`` on the server of ``admin_dsn``."""
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    user = quote(str(info.get("user", "postgres")), safe="")
    password = info.get("password")
    auth = f"{user}:{quote(str(password), safe='')}" if password else user
    host = str(info.get("host", "127.0.0.1"))
    port = str(info.get("port", "5432"))
    return f"postgresql://{auth}@{quote(host, safe='')}:{port}/{dbname}"


@pytest.fixture(scope="session")
def pg_admin_dsn() -> str:
    """DSN of a PostgreSQL server where tests may create databases."""
    if os.environ.get("QNETKIT_SKIP_PG") == "1":
        pytest.skip("QNETKIT_SKIP_PG=1")
    dsn = os.environ.get("QNETKIT_TEST_PG_DSN") or _start_pg()
    if not _can_connect(dsn):
        pytest.fail(f"PostgreSQL at {dsn} does not accept connections", pytrace=False)
    return dsn


@pytest.fixture
def kek() -> bytes:
    """The key-encryption key of test stores."""
    return bytes(range(32))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def url_factory(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[[], str]]:
    """Makes fresh, empty store URLs of the test's back end (a new file or database each)."""
    created: list[str] = []
    admin = request.getfixturevalue("pg_admin_dsn") if backend == "postgresql" else ""

    def make() -> str:
        name = f"qnk_{uuid.uuid4().hex[:16]}"
        if backend == "sqlite":
            return f"sqlite:///{tmp_path / (name + '.db')}"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        created.append(name)
        return _pg_url(admin, name)

    yield make
    if created:
        with psycopg.connect(admin, autocommit=True) as conn:
            for name in created:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def store_url(url_factory: Callable[[], str]) -> str:
    """A fresh store URL: a new SQLite file or a new PostgreSQL database."""
    return url_factory()


def raw_sql(url: str, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL (``?`` placeholders) on a store's database behind the store's back."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            with conn:
                return conn.execute(sql, params).fetchall()
        finally:
            conn.close()
    with psycopg.connect(url, autocommit=True) as pg:
        cur = pg.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def raw() -> Callable[..., list[tuple[object, ...]]]:
    """:func:`raw_sql` as a fixture (test modules cannot import conftest)."""
    return raw_sql

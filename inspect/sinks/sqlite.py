"""The results store: every inspection and its defects in one SQLite file; a sink writes, the page reads.

Durability. The file is in WAL mode with ``synchronous=NORMAL``: a commit has reached the write-ahead log (the
OS's page cache) before it returns, so killing the process at any moment (``kill -9``, the OOM killer, a
crash) loses nothing that was committed and never leaves a half-written inspection, since each one (its row
and its defect rows) is one transaction. What NORMAL gives up against FULL is only the last few commits on
an OS crash or power cut (the database still opens clean and consistent; WAL is never torn). FULL would
fsync on every board: on an edge box's eMMC or SD card that is a few milliseconds of stall and flash wear per
board for the rare power cut. ``synchronous="FULL"`` is there for a line that wants it.

Schema. ``PRAGMA user_version`` is the schema version; :data:`MIGRATIONS` step it up one at a time, each step
in a transaction of its own. A file written by a newer pcb-inspect is refused rather than guessed at.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from pathlib import Path

from pcb_inspect.inspect.errors import ConfigError
from pcb_inspect.inspect.records import Defect, Inspection, Verdict
from pcb_inspect.inspect.sinks.base import Result, Sink, SinkError

#: MIGRATIONS[n] takes a database from schema version n to n + 1.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE inspections (
            id TEXT PRIMARY KEY,
            time REAL NOT NULL,
            station TEXT NOT NULL,
            source TEXT NOT NULL,
            frame_index INTEGER NOT NULL,
            board_id TEXT NOT NULL,
            verdict TEXT NOT NULL CHECK (verdict IN ('PASS', 'FAIL', 'REVIEW', 'ERROR')),
            model_sha256 TEXT NOT NULL,
            latency_ms REAL NOT NULL,
            stage_ms TEXT NOT NULL,        -- JSON object, stage name -> milliseconds
            registration TEXT NOT NULL,    -- JSON object, shift/angle/scale/converged
            candidates INTEGER NOT NULL,
            error TEXT NOT NULL,
            n_defects INTEGER NOT NULL     -- reported defects (below-threshold ones not counted)
        )""",
        "CREATE INDEX inspections_time ON inspections (time)",
        "CREATE INDEX inspections_verdict ON inspections (verdict, time)",
        """CREATE TABLE defects (
            inspection_id TEXT NOT NULL REFERENCES inspections (id) ON DELETE CASCADE,
            reported INTEGER NOT NULL CHECK (reported IN (0, 1)),  -- 0: below its class threshold
            seq INTEGER NOT NULL,          -- order within the inspection's list
            cls TEXT NOT NULL,
            confidence REAL NOT NULL,
            x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, x2 INTEGER NOT NULL, y2 INTEGER NOT NULL,
            PRIMARY KEY (inspection_id, reported, seq)
        )""",
    ),
    (  # 1 -> 2: the operator's judgements (the page's feedback), for training. No foreign key to inspections:
        # feedback can arrive before the sink has written its board's row, and stands on its own for export.
        """CREATE TABLE feedback (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            inspection_id TEXT NOT NULL,   -- the board judged
            board_id TEXT NOT NULL,
            operator TEXT NOT NULL,        -- who, as signed in on the page
            time REAL NOT NULL,            -- when (epoch seconds); the newest feedback on a board is the one used
            note TEXT NOT NULL,
            images INTEGER NOT NULL CHECK (images IN (0, 1)),  -- tested image and template kept for export
            width INTEGER NOT NULL,        -- of the tested image; 0 when unknown
            height INTEGER NOT NULL
        )""",
        "CREATE INDEX feedback_inspection ON feedback (inspection_id, time)",
        """CREATE TABLE feedback_items (
            feedback_id INTEGER NOT NULL REFERENCES feedback (id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            judgement TEXT NOT NULL CHECK (judgement IN ('confirmed', 'false_call', 'other_class', 'added')),
            defect_seq INTEGER,            -- index into the inspection's defects + below_threshold; NULL: added
            model_cls TEXT,                -- what the model said; NULL for a box the operator added
            confidence REAL,
            cls TEXT NOT NULL,             -- the class after the judgement
            x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, x2 INTEGER NOT NULL, y2 INTEGER NOT NULL,
            PRIMARY KEY (feedback_id, seq)
        )""",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)
SYNCHRONOUS = ("NORMAL", "FULL")

_ID = re.compile(r"[0-9a-f]{32}")
_COLUMNS = ("id", "time", "station", "source", "frame_index", "board_id", "verdict", "model_sha256",
            "latency_ms", "stage_ms", "registration", "candidates", "error", "n_defects")
_INSERT = (f"INSERT OR IGNORE INTO inspections ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' * len(_COLUMNS))})")
_INSERT_DEFECT = ("INSERT INTO defects (inspection_id, reported, seq, cls, confidence, x1, y1, x2, y2) "
                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")


def check_db_path(path: str | os.PathLike, *, writable: bool) -> Path:
    """The store's path, checked before a run starts: its folder exists (and is writable), it is no folder
    and, if it exists, it is an SQLite file. One-line ConfigError otherwise."""
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ConfigError(f"results database {path}: folder {folder} does not exist")
    if writable and not os.access(folder, os.W_OK | os.X_OK):
        raise ConfigError(f"results database {path}: folder {folder} is not writable")
    if path.is_dir():
        raise ConfigError(f"results database {path} is a folder, need a file")
    if path.exists():
        if writable and not os.access(path, os.W_OK):
            raise ConfigError(f"results database {path} is not writable")
        try:
            with path.open("rb") as f:
                head = f.read(16)
        except OSError as exc:
            raise ConfigError(f"results database {path}: cannot read ({exc.strerror})") from None
        if head and head != b"SQLite format 3\x00":
            raise ConfigError(f"results database {path} is not an SQLite file")
    return path


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    """Bring the schema up to :data:`SCHEMA_VERSION`, one transaction per step."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise SinkError(f"results database {path} has schema version {version}, newer than this pcb-inspect "
                        f"knows ({SCHEMA_VERSION}); use a newer pcb-inspect or another file", permanent=True)
    for step in range(version, SCHEMA_VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] > step:  # another writer got there first
                conn.execute("COMMIT")
                continue
            for statement in MIGRATIONS[step]:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {step + 1}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise


class SQLiteSink(Sink):
    """Writes each inspection (its row and all its defects, reported and below threshold) in one transaction.

    Args:
        path: the database file; its folder must exist. Created with the schema when absent.
        synchronous: ``"NORMAL"`` (the default: survives a killed process) or ``"FULL"`` (also a power cut).
        **options: the queue and retry options of :class:`Sink`.
    """

    name = "sqlite"
    wants_images = "none"

    def __init__(self, path: str | os.PathLike, synchronous: str = "NORMAL", **options) -> None:
        super().__init__(**options)
        if str(synchronous).upper() not in SYNCHRONOUS:
            raise ConfigError(f"sqlite sink: synchronous {synchronous!r} is not one of "
                              f"{', '.join(SYNCHRONOUS)}")
        self.path = check_db_path(path, writable=True)
        self.synchronous = str(synchronous).upper()
        self._conn: sqlite3.Connection | None = None

    def open(self) -> None:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=10.0)
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise SinkError(f"results database {self.path}: cannot use WAL mode (got {mode})")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn, self.path)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if "not a database" in str(exc) or "malformed" in str(exc):
                raise SinkError(f"results database {self.path}: {exc}", permanent=True) from None
            raise
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    def write(self, result: Result) -> None:
        i = result.inspection
        conn = self._conn
        if conn is None:
            raise SinkError(f"results database {self.path} is not open")
        row = (i.id, i.time, i.station, i.source, i.frame_index, i.board_id, str(i.verdict), i.model_sha256,
               i.latency_ms, json.dumps(i.stage_ms), json.dumps(i.registration), i.candidates, i.error,
               len(i.defects))
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute(_INSERT, row).rowcount:  # 0: this id is stored already, defects and all
                conn.executemany(_INSERT_DEFECT, [
                    (i.id, reported, seq, d.cls, d.confidence, *d.box)
                    for reported, defects in ((1, i.defects), (0, i.below_threshold))
                    for seq, d in enumerate(defects)
                ])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    def teardown(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            conn.close()


class ResultsDB:
    """The read side of the store (the operator page, reports): read-only, safe beside a writing sink.

    Each call opens its own read-only connection, so any thread may call it; WAL lets it read the last
    committed state while the sink writes. A file the sink has not created yet reads as empty.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = check_db_path(path, writable=False)

    def _connect(self) -> sqlite3.Connection | None:
        if not self.path.exists():
            return None
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=10.0, check_same_thread=False)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            conn.close()
            return None
        if version > SCHEMA_VERSION:
            conn.close()
            raise ConfigError(f"results database {self.path} has schema version {version}, newer than this "
                              f"pcb-inspect knows ({SCHEMA_VERSION})")
        return conn

    def counts(self, since: float | None = None) -> dict[str, int]:
        """Inspections per verdict (keys PASS, FAIL, REVIEW, ERROR) and ``total``, since ``since`` or ever."""
        out = {str(v): 0 for v in Verdict}
        conn = self._connect()
        if conn is not None:
            try:
                where, args = ("WHERE time >= ?", (float(since),)) if since is not None else ("", ())
                for verdict, n in conn.execute(f"SELECT verdict, COUNT(*) FROM inspections {where} "
                                               "GROUP BY verdict", args):
                    out[verdict] = n
            finally:
                conn.close()
        out["total"] = sum(out.values())
        return out

    def recent(self, limit: int = 50, verdict: str | Verdict | None = None) -> list[Inspection]:
        """The newest inspections first (by capture time), optionally of one verdict only."""
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 10_000:
            raise ConfigError(f"recent: limit {limit!r} must be a whole number in 1..10000")
        if verdict is not None:
            try:
                verdict = Verdict(str(verdict).upper())
            except ValueError:
                raise ConfigError(f"recent: verdict {verdict!r} is not one of {', '.join(Verdict)}") from None
        where, args = ("WHERE verdict = ?", (str(verdict),)) if verdict is not None else ("", ())
        return self._load(f"SELECT {', '.join(_COLUMNS)} FROM inspections {where} "
                          "ORDER BY time DESC, rowid DESC LIMIT ?", (*args, limit))

    def get(self, inspection_id: str) -> Inspection | None:
        """One inspection by its id, with all its defects; None when it is not stored."""
        if not isinstance(inspection_id, str) or not _ID.fullmatch(inspection_id):
            raise ConfigError(f"inspection id {inspection_id!r} is not 32 lowercase hex digits")
        found = self._load(f"SELECT {', '.join(_COLUMNS)} FROM inspections WHERE id = ?", (inspection_id,))
        return found[0] if found else None

    def _load(self, query: str, args: tuple) -> list[Inspection]:
        conn = self._connect()
        if conn is None:
            return []
        try:
            conn.execute("BEGIN")  # one snapshot for the rows and their defects
            rows = conn.execute(query, args).fetchall()
            defects: dict[str, tuple[list[Defect], list[Defect]]] = {r[0]: ([], []) for r in rows}
            ids = list(defects)
            for start in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
                chunk = ids[start:start + 500]
                for iid, reported, cls, conf, x1, y1, x2, y2 in conn.execute(
                        "SELECT inspection_id, reported, cls, confidence, x1, y1, x2, y2 FROM defects "
                        f"WHERE inspection_id IN ({', '.join('?' * len(chunk))}) "
                        "ORDER BY inspection_id, reported DESC, seq", chunk):
                    defects[iid][0 if reported else 1].append(Defect(cls, conf, (x1, y1, x2, y2)))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return [_inspection(row, *defects[row[0]]) for row in rows]


def _inspection(row: tuple, reported: list[Defect], below: list[Defect]) -> Inspection:
    data = dict(zip(_COLUMNS, row))
    data.pop("n_defects")
    data["stage_ms"] = json.loads(data["stage_ms"])
    data["registration"] = json.loads(data["registration"])
    return Inspection.from_dict({**data, "defects": reported, "below_threshold": below})


# -- the operator's feedback ----------------------------------------------------------------------------------

_FEEDBACK_COLUMNS = ("id", "inspection_id", "board_id", "operator", "time", "note", "images", "width", "height")
_ITEM_COLUMNS = ("judgement", "defect_seq", "model_cls", "confidence", "cls", "x1", "y1", "x2", "y2")


def write_feedback(path: str | os.PathLike, feedback: dict) -> int:
    """Store one feedback (a dict with the ``feedback`` table's fields, less ``id``, and ``items``: dicts with
    ``judgement``, ``defect_seq``, ``model_cls``, ``confidence``, ``cls`` and ``box``) in one transaction; its id.

    The caller validates (``pcb_inspect.inspect.feedback``); this only writes. It opens its own connection (any
    thread), brings the schema up to date first, and waits up to 10 s for the sink's write lock.
    """
    path = check_db_path(path, writable=True)
    conn = sqlite3.connect(path, isolation_level=None, timeout=10.0)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        migrate(conn, path)
        conn.execute("BEGIN IMMEDIATE")
        try:
            fields = _FEEDBACK_COLUMNS[1:]
            cur = conn.execute(f"INSERT INTO feedback ({', '.join(fields)}) VALUES ({', '.join('?' * len(fields))})",
                               [feedback[k] for k in fields])
            feedback_id = int(cur.lastrowid)
            conn.executemany(
                f"INSERT INTO feedback_items (feedback_id, seq, {', '.join(_ITEM_COLUMNS)}) "
                f"VALUES ({', '.join('?' * (len(_ITEM_COLUMNS) + 2))})",
                [(feedback_id, seq, item["judgement"], item.get("defect_seq"), item.get("model_cls"),
                  item.get("confidence"), item["cls"], *item["box"])
                 for seq, item in enumerate(feedback["items"])])
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return feedback_id


def read_feedback(path: str | os.PathLike, inspection_id: str | None = None) -> list[dict]:
    """Feedback as dicts (the table's fields and ``items``, each with ``box``): every feedback on one board,
    oldest first, or with ``inspection_id=None`` the newest feedback on each board (what an export uses), boards
    in the order their first feedback arrived."""
    if inspection_id is not None and (not isinstance(inspection_id, str) or not _ID.fullmatch(inspection_id)):
        raise ConfigError(f"inspection id {inspection_id!r} is not 32 lowercase hex digits")
    db = ResultsDB(path)
    conn = db._connect()
    if conn is None:
        return []
    try:
        if conn.execute("PRAGMA user_version").fetchone()[0] < 2:  # written before feedback existed
            return []
        conn.execute("BEGIN")
        columns = ", ".join(f"f.{c}" for c in _FEEDBACK_COLUMNS)
        if inspection_id is not None:
            rows = conn.execute(f"SELECT {columns} FROM feedback f WHERE f.inspection_id = ? ORDER BY f.time, f.id",
                                (inspection_id,)).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {columns} FROM feedback f WHERE f.id = (SELECT g.id FROM feedback g WHERE "
                "g.inspection_id = f.inspection_id ORDER BY g.time DESC, g.id DESC LIMIT 1) "
                "ORDER BY (SELECT MIN(h.id) FROM feedback h WHERE h.inspection_id = f.inspection_id)"
            ).fetchall()
        out = []
        for row in rows:
            entry = dict(zip(_FEEDBACK_COLUMNS, row))
            entry["images"] = bool(entry["images"])
            entry["items"] = [
                {**dict(zip(_ITEM_COLUMNS[:5], item[:5])), "box": list(item[5:])}
                for item in conn.execute(f"SELECT {', '.join(_ITEM_COLUMNS)} FROM feedback_items "
                                         "WHERE feedback_id = ? ORDER BY seq", (entry["id"],))]
            out.append(entry)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return out

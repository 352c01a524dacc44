"""Schema migrations, one list entry per `PRAGMA user_version`.

Migrations only ever append: a DB at version k upgrades by running entries
k..n in order, each in its own transaction, so a crash mid-upgrade leaves a DB
at a known version that the next start finishes.
"""

from __future__ import annotations

V1_CORE = """
CREATE TABLE sessions(
  id            TEXT PRIMARY KEY,
  source        TEXT NOT NULL,
  source_id     TEXT,
  parent_id     TEXT,
  project       TEXT,
  agent         TEXT,
  phase         TEXT,
  title         TEXT,
  cwd           TEXT,
  git_branch    TEXT,
  model         TEXT,
  started_at    TEXT,
  ended_at      TEXT,
  message_count INTEGER NOT NULL DEFAULT 0,
  is_subagent   INTEGER NOT NULL DEFAULT 0,
  updated_at    TEXT NOT NULL
);
CREATE INDEX sessions_project ON sessions(project, started_at);
CREATE INDEX sessions_phase ON sessions(phase, started_at);
CREATE INDEX sessions_agent ON sessions(agent, started_at);

CREATE TABLE sources(
  id              INTEGER PRIMARY KEY,
  path            TEXT NOT NULL UNIQUE,
  format          TEXT NOT NULL,
  kind            TEXT NOT NULL,
  role            TEXT NOT NULL,
  session_id      TEXT,
  size            INTEGER NOT NULL DEFAULT 0,
  mtime_ns        INTEGER NOT NULL DEFAULT 0,
  bytes_read      INTEGER NOT NULL DEFAULT 0,
  lines_read      INTEGER NOT NULL DEFAULT 0,
  rows_stored     INTEGER NOT NULL DEFAULT 0,
  bad_lines       INTEGER NOT NULL DEFAULT 0,
  partial_offset  INTEGER,
  sha256          TEXT,
  imported_at     TEXT
);
CREATE INDEX sources_session ON sources(session_id);

CREATE TABLE raw_chunks(
  id         INTEGER PRIMARY KEY,
  source_id  INTEGER NOT NULL,
  first_seq  INTEGER NOT NULL,
  last_seq   INTEGER NOT NULL,
  size       INTEGER NOT NULL,
  data       BLOB NOT NULL,
  UNIQUE(source_id, first_seq)
);

CREATE TABLE raw_files(
  source_id INTEGER PRIMARY KEY,
  size      INTEGER NOT NULL,
  sha256    TEXT NOT NULL,
  data      BLOB NOT NULL
);

CREATE TABLE messages(
  id           INTEGER PRIMARY KEY,
  session_id   TEXT NOT NULL,
  source_id    INTEGER NOT NULL,
  seq          INTEGER NOT NULL,
  byte_offset  INTEGER,
  uuid         TEXT,
  parent_uuid  TEXT,
  type         TEXT,
  role         TEXT,
  model        TEXT,
  ts           TEXT,
  is_sidechain INTEGER NOT NULL DEFAULT 0,
  text         TEXT,
  tools        TEXT,
  parse_error  TEXT,
  redacted     INTEGER NOT NULL DEFAULT 0,
  raw_size     INTEGER NOT NULL,
  UNIQUE(source_id, seq)
);
CREATE INDEX messages_session ON messages(session_id, seq);
CREATE INDEX messages_uuid ON messages(uuid);
CREATE INDEX messages_role ON messages(role, session_id);

CREATE TABLE tool_calls(
  id          INTEGER PRIMARY KEY,
  session_id  TEXT NOT NULL,
  source_id   INTEGER NOT NULL,
  message_id  INTEGER,
  tool_use_id TEXT NOT NULL,
  name        TEXT NOT NULL,
  input       TEXT,
  output      TEXT,
  is_error    INTEGER,
  started_at  TEXT,
  finished_at TEXT,
  duration_ms REAL,
  UNIQUE(source_id, tool_use_id)
);
CREATE INDEX tool_calls_name ON tool_calls(name, duration_ms, is_error);
CREATE INDEX tool_calls_session ON tool_calls(session_id);

CREATE TABLE usage(
  message_key        TEXT NOT NULL,
  request_id         TEXT NOT NULL,
  session_id         TEXT NOT NULL,
  source_id          INTEGER NOT NULL,
  message_id         INTEGER,
  model              TEXT,
  ts                 TEXT,
  input_tokens       INTEGER NOT NULL DEFAULT 0,
  output_tokens      INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens  INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(message_key, request_id)
) WITHOUT ROWID;
CREATE INDEX usage_model ON usage(model, input_tokens, output_tokens,
  cache_write_tokens, cache_read_tokens);
CREATE INDEX usage_day ON usage(substr(ts, 1, 10), model, input_tokens, output_tokens,
  cache_write_tokens, cache_read_tokens, ts);
CREATE INDEX usage_session ON usage(session_id, model, input_tokens, output_tokens,
  cache_write_tokens, cache_read_tokens);
CREATE INDEX usage_source ON usage(source_id);

CREATE TABLE events(
  id          INTEGER PRIMARY KEY,
  session_id  TEXT NOT NULL,
  ts          TEXT NOT NULL,
  agent       TEXT,
  type        TEXT NOT NULL,
  tool        TEXT,
  duration_ms REAL,
  tokens_in   INTEGER,
  tokens_out  INTEGER,
  payload     TEXT,
  source_id   INTEGER,
  seq         INTEGER,
  UNIQUE(source_id, seq)
);
CREATE INDEX events_agent ON events(agent, ts, duration_ms);
CREATE INDEX events_tool ON events(tool, duration_ms);
CREATE INDEX events_session ON events(session_id, ts);
CREATE INDEX events_day ON events(substr(ts, 1, 10), type, ts);

CREATE TABLE phases(
  name       TEXT PRIMARY KEY,
  status     TEXT NOT NULL DEFAULT 'open',
  created_at TEXT NOT NULL,
  closed_at  TEXT
);
"""

V2_SEARCH = """
CREATE VIRTUAL TABLE messages_fts USING fts5(
  text, tools,
  content='messages', content_rowid='id',
  tokenize='unicode61 remove_diacritics 2'
);
CREATE TRIGGER messages_fts_ai AFTER INSERT ON messages BEGIN
  INSERT INTO messages_fts(rowid, text, tools) VALUES (new.id, new.text, new.tools);
END;
CREATE TRIGGER messages_fts_ad AFTER DELETE ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, text, tools)
  VALUES ('delete', old.id, old.text, old.tools);
END;
CREATE TRIGGER messages_fts_au AFTER UPDATE OF text, tools ON messages BEGIN
  INSERT INTO messages_fts(messages_fts, rowid, text, tools)
  VALUES ('delete', old.id, old.text, old.tools);
  INSERT INTO messages_fts(rowid, text, tools) VALUES (new.id, new.text, new.tools);
END;
INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
"""

V3_JOBS = """
CREATE TABLE jobs(
  id          INTEGER PRIMARY KEY,
  kind        TEXT NOT NULL,
  state       TEXT NOT NULL,
  title       TEXT NOT NULL DEFAULT '',
  params      TEXT NOT NULL DEFAULT '{}',
  steps_total INTEGER,
  steps_done  INTEGER NOT NULL DEFAULT 0,
  items_total INTEGER,
  items_done  INTEGER NOT NULL DEFAULT 0,
  bytes_total INTEGER,
  bytes_done  INTEGER NOT NULL DEFAULT 0,
  checkpoint  TEXT,
  result      TEXT,
  error       TEXT,
  created_at  TEXT NOT NULL,
  started_at  TEXT,
  finished_at TEXT,
  updated_at  TEXT NOT NULL
);
CREATE INDEX jobs_state ON jobs(state, id);
CREATE INDEX jobs_kind ON jobs(kind, created_at);
"""

V4_BACKUPS = """
CREATE TABLE backups(
  id            INTEGER PRIMARY KEY,
  session_id    TEXT NOT NULL,
  target        TEXT NOT NULL,
  phase         TEXT,
  prefix        TEXT NOT NULL,
  manifest      TEXT NOT NULL,
  raw_bytes     INTEGER NOT NULL,
  stored_bytes  INTEGER NOT NULL,
  created_at    TEXT NOT NULL,
  verified_at   TEXT,
  verify_status TEXT,
  verify_error  TEXT
);
CREATE INDEX backups_session ON backups(session_id, target, id);
"""

V5_WAITING_JOBS = """
ALTER TABLE jobs ADD COLUMN resource TEXT;
ALTER TABLE jobs ADD COLUMN wait_reason TEXT;
ALTER TABLE jobs ADD COLUMN needs_user INTEGER NOT NULL DEFAULT 0;
CREATE INDEX jobs_resource ON jobs(resource, state) WHERE resource IS NOT NULL;
"""

V6_ARCHIVES = """
CREATE TABLE archives(
  id             INTEGER PRIMARY KEY,
  phase          TEXT NOT NULL,
  target         TEXT NOT NULL,
  source_target  TEXT NOT NULL,
  key            TEXT NOT NULL,
  manifest_key   TEXT NOT NULL,
  manifest       TEXT NOT NULL,
  sessions       INTEGER NOT NULL,
  raw_bytes      INTEGER NOT NULL,
  stored_bytes   INTEGER NOT NULL,
  created_at     TEXT NOT NULL,
  verified_at    TEXT,
  verify_status  TEXT,
  tier2_deleted_at TEXT
);
CREATE INDEX archives_phase ON archives(phase, target, id);
"""

V7_METRICS = """
CREATE TABLE metrics(
  ts         TEXT NOT NULL,
  resolution TEXT NOT NULL,
  op         TEXT NOT NULL,
  tier       TEXT NOT NULL,
  count      INT NOT NULL,
  p50        REAL,
  p95        REAL,
  p99        REAL,
  bytes      INT NOT NULL DEFAULT 0,
  errors     INT NOT NULL DEFAULT 0,
  sum        REAL NOT NULL DEFAULT 0,
  hist       TEXT
);
CREATE INDEX metrics_series ON metrics(op, tier, resolution, ts);
CREATE INDEX metrics_age ON metrics(resolution, ts);
"""

V8_REDACTED_TOOL_CALLS = """
-- no change of shape: core/local/db/fixups.py redacts tool_calls' stored previews
"""

V9_RECOVERED = """
-- sessions rebuilt from a remote's catalog (core/recovery): listed, totalled, not yet local
CREATE TABLE recovered(
  session_id   TEXT PRIMARY KEY,
  target       TEXT NOT NULL,
  tier         INTEGER NOT NULL,
  prefix       TEXT,
  catalog      BLOB,
  recovered_at TEXT NOT NULL,
  restored_at  TEXT
);
"""

V10_REDACTED_LINES = """
-- which sources had a line redacted on the way in: their stored bytes are not the file's,
-- so a backup hashes them itself instead of trusting the import's digest
-- (core/local/packed_export.py); a few rows, so the index is tiny
CREATE INDEX messages_redacted ON messages(source_id) WHERE redacted = 1;
"""

MIGRATIONS: tuple[str, ...] = (
    V1_CORE, V2_SEARCH, V3_JOBS, V4_BACKUPS, V5_WAITING_JOBS, V6_ARCHIVES, V7_METRICS,
    V8_REDACTED_TOOL_CALLS, V9_RECOVERED, V10_REDACTED_LINES,
)  # fmt: skip
LATEST = len(MIGRATIONS)

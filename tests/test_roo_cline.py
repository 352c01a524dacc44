"""Roo Code / Cline task folders: discovery, detection, parsing and OS storage paths."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from roo_cline_data import (
    CLINE_CWD,
    CLINE_DELETED,
    CLINE_EXT,
    CLINE_MODEL,
    CLINE_USAGE,
    ROO_CWD,
    ROO_EXT,
    ROO_MODEL,
    ROO_USAGE,
    T0,
    cline_api_history_xml,
    cline_ui_messages,
    dump,
    roo_api_history,
    roo_ui_messages,
    write_cline_task,
    write_roo_task,
    write_task,
)

from core.errors import NotFoundError
from core.local.importers.records import ParsedMessage, SourceFile
from core.local.importers.roo_cline import (
    API_FILE,
    META_FILE,
    ROLE_API,
    ROLE_META,
    ROLE_UI,
    UI_FILE,
    ClineFormat,
    RooFormat,
    TaskFolderFormat,
    ms_to_iso,
    xml_tool_calls,
)
from core.local.importers.vscode_paths import candidate_task_roots, existing_task_roots

TASK_ID = "0f6a3c1e-8d2b-4a77-9e51-2b7c4d9a1f00"
CLINE_TASK_ID = "1718000000000"


def roo_tasks(tmp_path: Path) -> Path:
    return tmp_path / "config" / "Code" / "User" / "globalStorage" / ROO_EXT / "tasks"


def cline_tasks(tmp_path: Path) -> Path:
    return tmp_path / "config" / "Code" / "User" / "globalStorage" / CLINE_EXT / "tasks"


def parse_all(
    fmt: TaskFolderFormat, path: Path
) -> dict[str, tuple[SourceFile, list[ParsedMessage]]]:
    sources, warnings = fmt.discover(path)
    assert warnings == []
    return {s.role: (s, fmt.parse_document(s, Path(s.path).read_bytes())) for s in sources}


# -- discovery ------------------------------------------------------------------


def test_discover_roo_task_folder_lists_three_json_sources_sharing_one_session(
    tmp_path: Path,
) -> None:
    task = write_roo_task(roo_tasks(tmp_path), TASK_ID)
    sources, warnings = RooFormat().discover(task)
    assert warnings == []
    assert [(Path(s.path).name, s.role) for s in sources] == [
        (API_FILE, ROLE_API),
        (UI_FILE, ROLE_UI),
        (META_FILE, ROLE_META),
    ]
    assert {(s.kind, s.format) for s in sources} == {("json", "roo")}
    session = sources[0].session
    assert all(s.session is session for s in sources)
    assert (session.id, session.source, session.source_id, session.agent) == (
        TASK_ID,
        "roo",
        TASK_ID,
        "roo-code",
    )


def test_discover_cline_names_source_and_agent_cline(tmp_path: Path) -> None:
    task = write_cline_task(cline_tasks(tmp_path), CLINE_TASK_ID)
    sources, _ = ClineFormat().discover(task)
    session = sources[0].session
    assert {s.format for s in sources} == {"cline"}
    assert (session.id, session.source, session.agent) == (CLINE_TASK_ID, "cline", "cline")


def test_task_missing_a_file_returns_the_others_and_warns_naming_task_and_file(
    tmp_path: Path,
) -> None:
    task = write_task(
        roo_tasks(tmp_path) / TASK_ID, api=roo_api_history(), ui=None, meta={"files_in_context": []}
    )
    sources, warnings = RooFormat().discover(task)
    assert [s.role for s in sources] == [ROLE_API, ROLE_META]
    assert len(warnings) == 1
    assert TASK_ID in warnings[0]
    assert UI_FILE in warnings[0]


def test_discover_tasks_folder_and_extension_folder_find_every_task(tmp_path: Path) -> None:
    tasks = roo_tasks(tmp_path)
    write_roo_task(tasks, "b-task", T0 + 60_000)
    write_roo_task(tasks, "a-task")
    (tasks / "c-empty").mkdir()
    (tasks / "notes.txt").write_text("not a task")
    for path in (tasks, tasks.parent):
        sources, warnings = RooFormat().discover(path)
        assert [s.session.id for s in sources] == ["a-task"] * 3 + ["b-task"] * 3
        assert warnings == ["roo-code task c-empty: no task files; skipped"]


def test_discover_a_single_file(tmp_path: Path) -> None:
    task = write_roo_task(roo_tasks(tmp_path), TASK_ID)
    sources, warnings = RooFormat().discover(task / UI_FILE)
    assert warnings == []
    assert [(s.role, s.session.id) for s in sources] == [(ROLE_UI, TASK_ID)]


def test_discover_missing_path_raises_not_found_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "tasks"
    with pytest.raises(NotFoundError, match="nope"):
        RooFormat().discover(missing)


def test_discover_folder_without_tasks_returns_a_warning(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    sources, warnings = ClineFormat().discover(tmp_path / "empty")
    assert sources == []
    assert len(warnings) == 1
    assert "no cline task found" in warnings[0]


# -- detection --------------------------------------------------------------------


@pytest.mark.parametrize("level", ["task", "tasks", "extension", "file"])
def test_detect_each_level_and_only_the_owning_format_claims_it(tmp_path: Path, level: str) -> None:
    roo_task = write_roo_task(roo_tasks(tmp_path), TASK_ID)
    cline_task = write_cline_task(cline_tasks(tmp_path), CLINE_TASK_ID)
    pick = {
        "task": lambda t: t,
        "tasks": lambda t: t.parent,
        "extension": lambda t: t.parent.parent,
        "file": lambda t: t / API_FILE,
    }[level]
    assert RooFormat().detect(pick(roo_task))
    assert not ClineFormat().detect(pick(roo_task))
    assert ClineFormat().detect(pick(cline_task))
    assert not RooFormat().detect(pick(cline_task))


def test_detect_unowned_copy_is_claimed_by_exactly_one_format(tmp_path: Path) -> None:
    task = write_cline_task(tmp_path / "backup" / "tasks", CLINE_TASK_ID)
    assert RooFormat().detect(task)
    assert not ClineFormat().detect(task)
    assert ClineFormat(claim_unowned=True).detect(task)
    assert not RooFormat(claim_unowned=False).detect(task)


def test_detect_cline_cli_storage_as_cline(tmp_path: Path) -> None:
    task = write_cline_task(tmp_path / ".cline" / "data" / "tasks", CLINE_TASK_ID)
    assert ClineFormat().detect(task.parent)
    assert not RooFormat().detect(task.parent)


def test_detect_rejects_unrelated_folders_and_files(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "data.json").write_text("[]")
    (tmp_path / "proj" / "tasks").mkdir()
    (tmp_path / "session.jsonl").write_text("{}\n")
    for path in (tmp_path / "proj", tmp_path / "proj" / "tasks", tmp_path / "session.jsonl"):
        assert not RooFormat().detect(path)
        assert not ClineFormat().detect(path)
    assert not RooFormat().detect(tmp_path / "missing")


def test_a_task_with_only_metadata_is_not_detected_as_a_task(tmp_path: Path) -> None:
    task = write_task(tmp_path / "t1", meta={"files_in_context": []})
    assert not RooFormat().detect(task)


# -- parsing: Roo, native tool calls ------------------------------------------------


def test_roo_api_history_one_record_per_element_with_fields(tmp_path: Path) -> None:
    task = write_roo_task(roo_tasks(tmp_path), TASK_ID)
    _, records = parse_all(RooFormat(), task)[ROLE_API]
    elements = roo_api_history()
    assert len(records) == len(elements) == 8
    assert [r.seq for r in records] == list(range(8))
    assert [r.raw for r in records] == [orjson.dumps(e) for e in elements]
    assert all(r.byte_offset is None and r.parse_error is None for r in records)
    assert [r.role for r in records] == ["user", "assistant"] * 4
    assert {r.type for r in records} == {"message"}
    assert records[0].ts == "2024-06-10T06:13:20.000Z"
    assert records[4].ts == "2024-06-10T06:13:29.500Z"
    first = records[0].text or ""
    assert "Add a --verbose flag" in first
    assert "[image image/png]" in first
    assert "iVBOR" not in first  # image bytes stay out of the search text
    assert records[1].text == "I'll read the CLI entry point first."


def test_roo_tool_uses_pair_with_results_by_id(tmp_path: Path) -> None:
    task = write_roo_task(roo_tasks(tmp_path), TASK_ID)
    _, records = parse_all(RooFormat(), task)[ROLE_API]
    uses = {u.tool_use_id: u for r in records for u in r.tool_uses}
    results = {x.tool_use_id: x for r in records for x in r.tool_results}
    assert list(uses) == ["toolu_01ReadCli", "toolu_02Diff", "toolu_03Pytest", "toolu_04Done"]
    assert [u.name for u in uses.values()] == [
        "read_file",
        "apply_diff",
        "execute_command",
        "attempt_completion",
    ]
    assert orjson.loads(uses["toolu_03Pytest"].input or "") == {
        "command": "pytest -q tests/test_cli.py"
    }
    assert set(results) == {"toolu_01ReadCli", "toolu_02Diff", "toolu_03Pytest"}
    assert results["toolu_01ReadCli"].output == "1 | import argparse\n2 | parser = argparse."
    assert results["toolu_02Diff"].is_error is True
    assert results["toolu_03Pytest"].is_error is None
    assert results["toolu_03Pytest"].ts == "2024-06-10T06:13:41.000Z"
    # tool inputs and outputs are searchable
    assert "pytest -q tests/test_cli.py" in (records[5].tools or "")
    assert "3 passed" in (records[6].tools or "")


def test_roo_ui_messages_types_usage_and_session(tmp_path: Path) -> None:
    task = write_roo_task(roo_tasks(tmp_path), TASK_ID)
    src, records = parse_all(RooFormat(), task)[ROLE_UI]
    elements = roo_ui_messages()
    assert len(records) == len(elements)
    assert [r.raw for r in records] == [orjson.dumps(e) for e in elements]
    assert [r.type for r in records][:4] == ["task", "api_req_started", "text", "tool"]
    assert records[0].role == "user"
    assert records[1].role == "system"
    assert records[2].role == "assistant"
    assert records[6].text == "pytest -q tests/test_cli.py"
    assert records[6].tools == "pytest -q tests/test_cli.py"

    usages = [r.usage for r in records if r.usage is not None]
    assert len(usages) == 3  # the cancelled request carries no counts
    assert sum(u.input_tokens for u in usages) == 12_034 + 250 + 90
    assert sum(u.output_tokens for u in usages) == 210 + 380 + 120
    assert sum(u.cache_write_tokens for u in usages) == 11_800 + 300 + 40
    assert sum(u.cache_read_tokens for u in usages) == 11_800 + 12_100
    assert [(u.input_tokens, u.output_tokens) for u in usages] == [
        (a, b) for a, b, _, _ in ROO_USAGE
    ]
    assert usages[0].message_key == f"{TASK_ID}:{T0 + 100}"
    assert {u.request_id for u in usages} == {""}
    assert {u.model for u in usages} == {ROO_MODEL}
    assert usages[0].ts == "2024-06-10T06:13:20.100Z"
    assert len({u.message_key for u in usages}) == 3

    session = src.session
    assert session.title == "Add a --verbose flag to the CLI in src/cli.py"
    assert session.model == ROO_MODEL
    assert session.cwd == ROO_CWD
    assert session.started_at == "2024-06-10T06:13:20.000Z"
    assert session.ended_at == "2024-06-10T06:13:44.001Z"


def test_api_history_alone_sets_title_cwd_and_model(tmp_path: Path) -> None:
    task = write_task(tmp_path / "t", api=roo_api_history())
    sources, _ = RooFormat().discover(task)
    RooFormat().parse_document(sources[0], (task / API_FILE).read_bytes())
    session = sources[0].session
    assert session.title == "Add a --verbose flag to the CLI in src/cli.py"
    assert session.cwd == ROO_CWD
    assert session.model == ROO_MODEL
    assert session.ended_at == "2024-06-10T06:13:44.000Z"


def test_metadata_is_one_record_with_paths_searchable(tmp_path: Path) -> None:
    task = write_roo_task(roo_tasks(tmp_path), TASK_ID)
    _, records = parse_all(RooFormat(), task)[ROLE_META]
    assert len(records) == 1
    assert (records[0].seq, records[0].type, records[0].parse_error) == (0, "metadata", None)
    assert records[0].text == "src/cli.py\nREADME.md"


def test_long_title_is_cut_to_120_chars(tmp_path: Path) -> None:
    ui = [{"ts": T0, "type": "say", "say": "task", "text": "x" * 300 + "\nsecond line"}]
    task = write_task(tmp_path / "t", ui=ui)
    sources, _ = RooFormat().discover(task)
    RooFormat().parse_document(sources[0], (task / UI_FILE).read_bytes())
    assert sources[0].session.title == "x" * 120


# -- parsing: Cline, XML tools in text ----------------------------------------------


def test_cline_xml_tools_are_extracted_and_paired_with_results(tmp_path: Path) -> None:
    task = write_cline_task(cline_tasks(tmp_path), CLINE_TASK_ID)
    _, records = parse_all(ClineFormat(), task)[ROLE_API]
    assert len(records) == len(cline_api_history_xml()) == 6
    assert all(r.ts is None for r in records)  # this era wrote no ts
    uses = [u for r in records for u in r.tool_uses]
    assert [u.name for u in uses] == ["read_file", "execute_command", "attempt_completion"]
    assert len({u.tool_use_id for u in uses}) == 3
    assert orjson.loads(uses[0].input or "") == {"path": "tests/test_dates.py"}
    results = {x.tool_use_id: x.output for r in records for x in r.tool_results}
    assert results == {
        uses[0].tool_use_id: "def test_parse():\n    assert parse('2024-02-30')",
        uses[1].tool_use_id: "Command executed.\nOutput:\n1 passed",
    }
    assert "thinking" not in [u.name for u in uses]


def test_cline_ui_usage_includes_deleted_requests_and_model_info(tmp_path: Path) -> None:
    task = write_cline_task(cline_tasks(tmp_path), CLINE_TASK_ID)
    src, records = parse_all(ClineFormat(), task)[ROLE_UI]
    assert len(records) == len(cline_ui_messages())
    usages = [r.usage for r in records if r.usage]
    expected = [*CLINE_USAGE[:1], CLINE_DELETED, CLINE_USAGE[1]]
    assert [
        (u.input_tokens, u.output_tokens, u.cache_write_tokens, u.cache_read_tokens) for u in usages
    ] == expected
    assert {u.model for u in usages} == {CLINE_MODEL}
    assert records[1].model == CLINE_MODEL
    assert records[5].role == "user"  # user_feedback
    assert src.session.cwd == CLINE_CWD
    assert src.session.title == "Fix the failing date test in tests/test_dates.py"


def test_xml_tool_calls_ignore_prose_and_non_tool_tags() -> None:
    text = (
        "I could use <read_file> here.\n<thinking>plan</thinking>\n"
        "<search_files>\n<path>src</path>\n<regex>TODO</regex>\n</search_files>\n"
        "<my_custom_tool>\n<arg>1</arg>\n</my_custom_tool>\n<note_to_self>hi</note_to_self>"
    )
    calls = xml_tool_calls(text)
    assert calls == [
        ("search_files", {"path": "src", "regex": "TODO"}),
        ("my_custom_tool", {"arg": "1"}),
    ]


# -- broken documents ------------------------------------------------------------------


def _src(fmt: TaskFolderFormat, tmp_path: Path, role: str) -> SourceFile:
    task = write_roo_task(tmp_path / "tasks", TASK_ID)
    return next(s for s in fmt.discover(task)[0] if s.role == role)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'[{"role":"user","content":"hi"},{"role":"assis', "invalid JSON"),
        (b'[{"role":"user","content":"caf\xe9"}]', "not valid UTF-8 (bad byte at offset 30)"),
        (b"", "empty file"),
        (b"  \n", "empty file"),
        (b'{"role":"user"}', "expected a JSON array of messages, found dict"),
        (b"null", "expected a JSON array of messages, found null"),
        (b"42", "found int"),
    ],
)
@pytest.mark.parametrize("role", [ROLE_API, ROLE_UI])
def test_unusable_document_is_one_flagged_record_keeping_the_bytes(
    tmp_path: Path, data: bytes, reason: str, role: str
) -> None:
    fmt = RooFormat()
    records = fmt.parse_document(_src(fmt, tmp_path, role), data)
    assert len(records) == 1
    assert records[0].seq == 0
    assert records[0].raw == data
    assert reason in (records[0].parse_error or "")


def test_bad_metadata_is_one_flagged_record(tmp_path: Path) -> None:
    fmt = ClineFormat()
    src = _src(fmt, tmp_path, ROLE_META)
    for data, reason in ((b"{oops", "invalid JSON"), (b"[1,2]", "expected a JSON object")):
        records = fmt.parse_document(src, data)
        assert len(records) == 1
        assert reason in (records[0].parse_error or "")


def test_non_object_elements_keep_their_slot_so_counts_match(tmp_path: Path) -> None:
    fmt = RooFormat()
    elements: list[object] = [{"role": "user", "content": "hi", "ts": T0}, None, "x", [1], 7]
    records = fmt.parse_document(_src(fmt, tmp_path, ROLE_API), dump(elements))
    assert len(records) == 5
    assert records[0].parse_error is None and records[0].text == "hi"
    assert [r.parse_error for r in records[1:]] == [
        "expected an object, found null",
        "expected an object, found str",
        "expected an object, found list",
        "expected an object, found int",
    ]
    assert [r.raw for r in records] == [orjson.dumps(e) for e in elements]


def test_odd_values_inside_elements_do_not_break_parsing(tmp_path: Path) -> None:
    fmt = RooFormat()
    ui = [
        {"ts": "yesterday", "type": "say", "say": "api_req_started", "text": "{not json"},
        {"ts": T0, "type": "say", "say": "api_req_started", "text": '{"tokensIn": -5, '
         '"tokensOut": 12.7, "cacheReads": true, "cacheWrites": "9"}'},
        {"ts": 1e30, "type": "ask"},
        {"type": "say", "say": 5, "text": ["not", "a", "string"]},
        {"type": "say", "say": "api_req_started", "text": '{"tokensIn": 3}'},
    ]  # fmt: skip
    records = fmt.parse_document(_src(fmt, tmp_path, ROLE_UI), dump(ui))
    assert len(records) == 5
    assert all(r.parse_error is None for r in records)
    assert records[0].usage is None and records[0].ts is None
    usage = records[1].usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens) == (0, 12)
    assert (usage.cache_read_tokens, usage.cache_write_tokens) == (0, 0)
    assert records[2].ts is None
    last = records[4].usage
    assert last is not None and last.message_key == f"{TASK_ID}:seq4"  # no ts to key on
    api = [
        {"role": "assistant", "content": [{"type": "tool_use", "name": "read_file"}, 3, None]},
        {"role": "user", "content": [{"type": "tool_result", "content": {"odd": True}}]},
    ]
    records = fmt.parse_document(_src(fmt, tmp_path, ROLE_API), dump(api))
    assert len(records) == 2
    assert records[0].tool_uses[0].tool_use_id  # synthesized, never empty
    assert records[1].tool_results[0].output is None


def test_utf8_bom_is_tolerated(tmp_path: Path) -> None:
    fmt = RooFormat()
    data = b"\xef\xbb\xbf" + dump([{"role": "user", "content": "héllo"}])
    records = fmt.parse_document(_src(fmt, tmp_path, ROLE_API), data)
    assert [(r.text, r.parse_error) for r in records] == [("héllo", None)]


def test_parse_line_flags_instead_of_raising(tmp_path: Path) -> None:
    fmt = ClineFormat()
    rec = fmt.parse_line(_src(fmt, tmp_path, ROLE_UI), 3, 120, b'{"a":1}\n')
    assert (rec.seq, rec.byte_offset, rec.raw) == (3, 120, b'{"a":1}\n')
    assert "not a line format" in (rec.parse_error or "")


def test_ms_to_iso_rejects_nonsense() -> None:
    assert ms_to_iso(T0) == "2024-06-10T06:13:20.000Z"
    assert ms_to_iso(T0 + 7.9) == "2024-06-10T06:13:20.007Z"
    for bad in (None, True, "1718000000000", float("nan"), float("inf"), 1e30, -(10**15)):
        assert ms_to_iso(bad) is None


# -- storage paths per OS ----------------------------------------------------------------


def _paths(roots: list[tuple[str, Path]]) -> set[tuple[str, Path]]:
    return set(roots)


def test_linux_candidates_honour_xdg_config_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    xdg = tmp_path / "xdg"
    roots = candidate_task_roots("linux", home, {"XDG_CONFIG_HOME": str(xdg)})
    got = _paths(roots)
    assert ("roo", xdg / "Code" / "User" / "globalStorage" / ROO_EXT / "tasks") in got
    assert ("cline", xdg / "Cursor" / "User" / "globalStorage" / CLINE_EXT / "tasks") in got
    assert ("cline", xdg / "VSCodium" / "User" / "globalStorage" / CLINE_EXT / "tasks") in got
    assert not any(p.is_relative_to(home / ".config") for _, p in roots)
    remote = home / ".vscode-server" / "data" / "User" / "globalStorage" / ROO_EXT / "tasks"
    assert ("roo", remote) in got
    assert ("cline", home / ".cline" / "data" / "tasks") in got
    assert len(roots) == len(got)  # no duplicates


def test_linux_default_and_relative_xdg_fall_back_to_dot_config(tmp_path: Path) -> None:
    for env in ({}, {"XDG_CONFIG_HOME": "relative/dir"}):
        got = _paths(candidate_task_roots("linux", tmp_path, env))
        expected = tmp_path / ".config" / "Code - Insiders" / "User" / "globalStorage"
        assert ("roo", expected / ROO_EXT / "tasks") in got


def test_macos_candidates_live_in_application_support(tmp_path: Path) -> None:
    roots = candidate_task_roots("darwin", tmp_path, {"XDG_CONFIG_HOME": "/ignored"})
    support = tmp_path / "Library" / "Application Support"
    got = _paths(roots)
    for editor in ("Code", "Code - Insiders", "VSCodium", "Cursor", "Windsurf"):
        storage = support / editor / "User" / "globalStorage"
        assert ("roo", storage / ROO_EXT / "tasks") in got
        assert ("cline", storage / CLINE_EXT / "tasks") in got
    assert all(p.is_relative_to(support) or p.is_relative_to(tmp_path / ".cline") for _, p in roots)


def test_windows_candidates_use_appdata_or_its_default(tmp_path: Path) -> None:
    appdata = tmp_path / "Roaming"
    got = _paths(candidate_task_roots("win32", tmp_path, {"APPDATA": str(appdata)}))
    assert ("cline", appdata / "Code" / "User" / "globalStorage" / CLINE_EXT / "tasks") in got
    got = _paths(candidate_task_roots("windows", tmp_path, {}))
    default = tmp_path / "AppData" / "Roaming" / "Windsurf" / "User" / "globalStorage"
    assert ("roo", default / ROO_EXT / "tasks") in got


def test_cline_dir_env_moves_the_cli_root(tmp_path: Path) -> None:
    got = _paths(candidate_task_roots("linux", tmp_path, {"CLINE_DIR": str(tmp_path / "cl")}))
    assert ("cline", tmp_path / "cl" / "data" / "tasks") in got
    assert ("cline", tmp_path / ".cline" / "data" / "tasks") not in got


@pytest.mark.parametrize("platform", ["linux", "darwin", "win32"])
def test_existing_task_roots_lists_only_folders_present(tmp_path: Path, platform: str) -> None:
    home = tmp_path / "home"
    env = {"APPDATA": str(home / "AppData" / "Roaming")}
    candidates = candidate_task_roots(platform, home, env)
    assert existing_task_roots(platform, home, env) == []
    roo = next(p for f, p in candidates if f == "roo" and "Cursor" in p.parts)
    cline = next(p for f, p in candidates if f == "cline" and "Code" in p.parts)
    write_roo_task(roo, TASK_ID)
    cline.mkdir(parents=True)
    assert existing_task_roots(platform, home, env) == [
        item for item in candidates if item in {("roo", roo), ("cline", cline)}
    ]
    # and what is found there is detected as the right format
    assert RooFormat().detect(roo)
    assert not ClineFormat().detect(roo)

"""Roo Code / Cline task folders built in code, after the apps' documented file layout.

No permissively licensed real transcripts exist, so these mimic what the
extensions write: compact JSON, Anthropic-style API history (native tool_use
blocks for current Roo, XML-in-text tools for older Cline), ui_messages with
`api_req_started` token counts, and task_metadata.json.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

ROO_EXT = "rooveterinaryinc.roo-cline"
CLINE_EXT = "saoudrizwan.claude-dev"

T0 = 1_718_000_000_000  # 2024-06-10T06:13:20.000Z
ROO_MODEL = "claude-sonnet-4-20250514"
CLINE_MODEL = "claude-3-7-sonnet-20250219"
ROO_CWD = "/home/dev/projects/todo-cli"
CLINE_CWD = "/Users/dev/code/date utils (v2)"

PNG_1PX = (  # a 1x1 PNG, base64
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJ"
    "RU5ErkJggg=="
)

Json = dict[str, Any]


def roo_env(cwd: str = ROO_CWD, model: str = ROO_MODEL, *, files: bool = True) -> str:
    listing = f"\n\n# Current Workspace Directory ({cwd}) Files\nsrc/\nsrc/cli.py\ntests/\n"
    return (
        "<environment_details>\n# VSCode Visible Files\nsrc/cli.py\n\n"
        "# VSCode Open Tabs\nsrc/cli.py,README.md\n\n"
        "# Current Time\nCurrent time in ISO 8601 UTC format: 2024-06-10T06:13:20.000Z\n\n"
        "# Current Cost\n$0.00\n\n"
        f"# Current Mode\n<slug>code</slug>\n<name>💻 Code</name>\n<model>{model}</model>"
        + (listing if files else "")
        + "</environment_details>"
    )


def cline_env(cwd: str = CLINE_CWD) -> str:
    return (
        "<environment_details>\n# VSCode Visible Files\ntests/test_dates.py\n\n"
        "# Current Time\n6/10/2024, 8:13:20 AM (Europe/Berlin, UTC+2:00)\n\n"
        f"# Current Working Directory ({cwd}) Files\ndates.py\ntests/test_dates.py\n\n"
        "# Current Mode\nACT MODE\n</environment_details>"
    )


ROO_PROMPT = "Add a --verbose flag to the CLI in src/cli.py\nIt should print each step."


def roo_api_history(t0: int = T0) -> list[Json]:
    """Current Roo: native tool_use/tool_result blocks, `ts` on every message."""
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"<task>\n{ROO_PROMPT}\n</task>"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG_1PX},
                },
                {"type": "text", "text": roo_env()},
            ],
            "ts": t0,
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "I'll read the CLI entry point first."},
                {
                    "type": "tool_use",
                    "id": "toolu_01ReadCli",
                    "name": "read_file",
                    "input": {"path": "src/cli.py"},
                },
            ],
            "ts": t0 + 4_000,
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01ReadCli",
                    "content": [
                        {"type": "text", "text": "1 | import argparse\n2 | parser = argparse."}
                    ],
                },
                {"type": "text", "text": roo_env(files=False)},
            ],
            "ts": t0 + 5_000,
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Adding the flag next to --quiet."},
                {
                    "type": "tool_use",
                    "id": "toolu_02Diff",
                    "name": "apply_diff",
                    "input": {
                        "path": "src/cli.py",
                        "diff": "<<<<<<< SEARCH\n:start_line:2\n-------\nparser = x\n"
                        "=======\nparser = y\n>>>>>>> REPLACE",
                    },
                },
            ],
            "ts": t0 + 9_000,
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_02Diff",
                    "content": "Error: no sufficiently similar match found at line 2",
                    "is_error": True,
                }
            ],
            "ts": t0 + 9_500,
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_03Pytest",
                    "name": "execute_command",
                    "input": {"command": "pytest -q tests/test_cli.py"},
                }
            ],
            "ts": t0 + 15_000,
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_03Pytest",
                    "content": "Command executed.\nOutput:\n3 passed in 0.21s",
                }
            ],
            "ts": t0 + 21_000,
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "All tests pass."},
                {
                    "type": "tool_use",
                    "id": "toolu_04Done",
                    "name": "attempt_completion",
                    "input": {"result": "Added --verbose, which prints each step."},
                },
            ],
            "ts": t0 + 24_000,
        },
    ]


def api_req(request: str, usage: tuple[int, int, int, int] | None, cost: float | None) -> str:
    """The JSON string Roo/Cline store as the `text` of an `api_req_started` message."""
    info: Json = {"request": request, "apiProtocol": "anthropic"}
    if usage is not None:
        tin, tout, cw, cr = usage
        info |= {"tokensIn": tin, "tokensOut": tout, "cacheWrites": cw, "cacheReads": cr}
    if cost is not None:
        info["cost"] = cost
    return json.dumps(info, ensure_ascii=False)


# (tokensIn, tokensOut, cacheWrites, cacheReads) of the completed Roo requests.
ROO_USAGE = [(12_034, 210, 11_800, 0), (250, 380, 300, 11_800), (90, 120, 40, 12_100)]


def roo_ui_messages(t0: int = T0) -> list[Json]:
    first_request = f"<task>\n{ROO_PROMPT}\n</task>\n\n[Image]\n\n{roo_env()}\n\nLoading..."
    return [
        {"ts": t0, "type": "say", "say": "task", "text": ROO_PROMPT, "images": ["data:image/png"]},
        {
            "ts": t0 + 100,
            "type": "say",
            "say": "api_req_started",
            "text": api_req(first_request, ROO_USAGE[0], 0.0481),
        },
        {"ts": t0 + 4_000, "type": "say", "say": "text", "text": "I'll read the CLI entry point."},
        {
            "ts": t0 + 4_100,
            "type": "ask",
            "ask": "tool",
            "text": json.dumps({"tool": "readFile", "path": "src/cli.py", "isOutsideWorkspace": 0}),
        },
        {"ts": t0 + 4_900, "type": "say", "say": "checkpoint_saved", "text": "9f2c1e0"},
        {
            "ts": t0 + 5_100,
            "type": "say",
            "say": "api_req_started",
            "text": api_req("[read_file for 'src/cli.py'] Result:", ROO_USAGE[1], 0.0102),
        },
        {"ts": t0 + 15_000, "type": "ask", "ask": "command", "text": "pytest -q tests/test_cli.py"},
        {
            "ts": t0 + 20_000,
            "type": "ask",
            "ask": "command_output",
            "text": "3 passed in 0.21s",
        },
        {
            "ts": t0 + 21_100,
            "type": "say",
            "say": "api_req_started",
            "text": api_req("[execute_command] Result:", ROO_USAGE[2], 0.0031),
        },
        # The request the user cancelled while it streamed: no counts, no usage row.
        {
            "ts": t0 + 23_000,
            "type": "say",
            "say": "api_req_started",
            "text": api_req("[attempt_completion] Result:", None, None),
        },
        {
            "ts": t0 + 24_000,
            "type": "say",
            "say": "completion_result",
            "text": "Added --verbose, which prints each step.",
        },
        {"ts": t0 + 24_001, "type": "ask", "ask": "completion_result", "text": ""},
    ]


def roo_metadata(t0: int = T0) -> Json:
    return {
        "files_in_context": [
            {
                "path": "src/cli.py",
                "record_state": "active",
                "record_source": "read_tool",
                "roo_read_date": t0 + 5_000,
                "roo_edit_date": None,
            },
            {
                "path": "README.md",
                "record_state": "stale",
                "record_source": "user_edited",
                "roo_read_date": None,
                "roo_edit_date": None,
                "user_edit_date": t0 + 7_000,
            },
        ]
    }


CLINE_PROMPT = "Fix the failing date test in tests/test_dates.py"


def cline_api_history_xml() -> list[Json]:
    """Older Cline: tools written as XML in assistant text, no `ts` on messages."""
    return [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": f"<task>\n{CLINE_PROMPT}\n</task>"},
                {"type": "text", "text": cline_env()},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": "<thinking>Look at the test first.</thinking>\n\n"
                    "<read_file>\n<path>tests/test_dates.py</path>\n</read_file>",
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "[read_file for 'tests/test_dates.py'] Result:"},
                {"type": "text", "text": "def test_parse():\n    assert parse('2024-02-30')"},
                {"type": "text", "text": cline_env()},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": "February 30 is invalid; fixing the test.\n\n"
                    "<execute_command>\n<command>pytest tests/test_dates.py</command>\n"
                    "<requires_approval>false</requires_approval>\n</execute_command>",
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "text",
                    "text": "[execute_command for 'pytest tests/test_dates.py'] Result:",
                },
                {"type": "text", "text": "Command executed.\nOutput:\n1 passed"},
                {"type": "text", "text": cline_env()},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": "<attempt_completion>\n<result>The test now uses a valid date."
                    "</result>\n</attempt_completion>",
                }
            ],
        },
    ]


CLINE_USAGE = [(3_100, 150, 2_900, 0), (400, 90, 350, 2_900)]
CLINE_DELETED = (20_000, 1_000, 0, 15_000)  # folded counts of truncated requests


def cline_ui_messages(t0: int = T0) -> list[Json]:
    info = {"providerId": "anthropic", "modelId": CLINE_MODEL, "mode": "act"}
    return [
        {"ts": t0, "type": "say", "say": "task", "text": CLINE_PROMPT},
        {
            "ts": t0 + 50,
            "type": "say",
            "say": "api_req_started",
            "text": api_req(
                f"<task>\n{CLINE_PROMPT}\n</task>\n\n{cline_env()}", CLINE_USAGE[0], 0.02
            ),
            "modelInfo": info,
            "conversationHistoryIndex": -1,
        },
        {
            "ts": t0 + 3_000,
            "type": "say",
            "say": "tool",
            "text": json.dumps({"tool": "readFile", "path": "tests/test_dates.py"}),
            "conversationHistoryIndex": 0,
        },
        {
            "ts": t0 + 3_500,
            "type": "say",
            "say": "deleted_api_reqs",
            "text": json.dumps(
                dict(
                    zip(
                        ("tokensIn", "tokensOut", "cacheWrites", "cacheReads"),
                        CLINE_DELETED,
                        strict=True,
                    )
                )
                | {"cost": 0.31}
            ),
        },
        {
            "ts": t0 + 4_000,
            "type": "say",
            "say": "api_req_started",
            "text": api_req("[read_file for 'tests/test_dates.py'] Result:", CLINE_USAGE[1], 0.004),
            "modelInfo": info,
        },
        {"ts": t0 + 6_000, "type": "say", "say": "user_feedback", "text": "use 2024-02-29 instead"},
        {
            "ts": t0 + 9_000,
            "type": "say",
            "say": "completion_result",
            "text": "The test now uses a valid date.",
        },
    ]


def cline_metadata(t0: int = T0) -> Json:
    return {
        "files_in_context": [
            {
                "path": "tests/test_dates.py",
                "record_state": "active",
                "record_source": "read_tool",
                "cline_read_date": t0 + 3_000,
                "cline_edit_date": None,
            }
        ],
        "model_usage": [
            {
                "ts": t0 + 50,
                "model_id": CLINE_MODEL,
                "model_provider_id": "anthropic",
                "mode": "act",
            }
        ],
        "environment_history": [
            {
                "ts": t0,
                "os_name": "darwin",
                "os_version": "23.5.0",
                "os_arch": "arm64",
                "host_name": "Visual Studio Code",
                "host_version": "1.90.0",
                "cline_version": "3.17.0",
            }
        ],
    }


def dump(value: object) -> bytes:
    """Compact JSON like JSON.stringify, non-ASCII kept as UTF-8."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def write_task(
    task_dir: Path,
    *,
    api: list[Json] | None = None,
    ui: list[Json] | None = None,
    meta: Json | None = None,
) -> Path:
    """A task folder holding the files given (None leaves that file out)."""
    task_dir.mkdir(parents=True, exist_ok=True)
    for name, value in (
        ("api_conversation_history.json", api),
        ("ui_messages.json", ui),
        ("task_metadata.json", meta),
    ):
        if value is not None:
            (task_dir / name).write_bytes(dump(value))
    return task_dir


def write_roo_task(tasks_dir: Path, task_id: str, t0: int = T0) -> Path:
    return write_task(
        tasks_dir / task_id,
        api=roo_api_history(t0),
        ui=roo_ui_messages(t0),
        meta=roo_metadata(t0),
    )


def write_cline_task(tasks_dir: Path, task_id: str, t0: int = T0) -> Path:
    return write_task(
        tasks_dir / task_id,
        api=cline_api_history_xml(),
        ui=cline_ui_messages(t0),
        meta=cline_metadata(t0),
    )


def global_storage(config: Path, editor: str = "Code") -> Path:
    return config / editor / "User" / "globalStorage"

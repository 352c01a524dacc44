"""Runs a command's coroutine and turns failures into one clear line and an exit code."""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import typer

from core.cli.output import err
from core.errors import ExitCode, TierkeeperError


def debug_enabled() -> bool:
    return os.environ.get("TIERKEEPER_DEBUG", "") not in ("", "0")


def exit_with(exc: TierkeeperError) -> NoReturn:
    """One clear line (and the hint), then the error's exit code."""
    err.print(f"[bold red]error:[/] {exc.message}", highlight=False)
    if exc.hint:
        err.print(f"  {exc.hint}", highlight=False)
    if debug_enabled():
        err.print(traceback.format_exc(), highlight=False)
    raise typer.Exit(int(exc.exit_code)) from None


@contextmanager
def reported() -> Iterator[None]:
    """For a command's work before its coroutine (reading a passphrase): its errors end
    the command as `run_async` ends it, not as a traceback with exit code 1."""
    try:
        yield
    except TierkeeperError as exc:
        exit_with(exc)


def run_async(fn: Callable[[], Awaitable[Any]]) -> Any:
    if debug_enabled():
        logging.basicConfig(level=logging.DEBUG)
    try:
        return asyncio.run(_call(fn))
    except TierkeeperError as exc:
        exit_with(exc)
    except KeyboardInterrupt:
        err.print("interrupted; work done so far is kept and a re-run carries on")
        raise typer.Exit(130) from None
    except typer.Exit:
        raise
    except Exception as exc:
        err.print(f"[bold red]internal error:[/] {type(exc).__name__}: {exc}", highlight=False)
        if debug_enabled():
            err.print(traceback.format_exc(), highlight=False)
        else:
            err.print("  re-run with --debug for the details")
        raise typer.Exit(int(ExitCode.FAILED)) from None


async def _call(fn: Callable[[], Awaitable[Any]]) -> Any:
    return await fn()

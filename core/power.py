"""Is the machine on battery, is the network metered: what a scheduled run asks first.

Linux only, and only where the system says so: the kernel's power supply
class in sysfs, and NetworkManager's `Metered` property over D-Bus (asked
through `busctl` or `gdbus`, so no D-Bus library is needed). Anything that
cannot be read is "unknown", which never stops a run: a desktop without a
battery or a system without NetworkManager backs up as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from pathlib import Path
from typing import Literal

PowerSource = Literal["ac", "battery", "unknown"]

SYS_POWER_SUPPLY = Path("/sys/class/power_supply")
EXTERNAL = ("Mains", "USB", "USB_C", "USB_PD", "USB_PD_DRP", "Wireless")
"""Supply types that feed the machine from outside."""

NM_METERED_YES = (1, 3)
"""NetworkManager's NMMetered: 1 yes, 3 guess-yes (0 unknown, 2 no, 4 guess-no)."""
_NM = ("org.freedesktop.NetworkManager", "/org/freedesktop/NetworkManager")
METERED_COMMANDS: tuple[tuple[str, ...], ...] = (
    ("busctl", "--system", "get-property", _NM[0], _NM[1], _NM[0], "Metered"),
    ("gdbus", "call", "--system", "--dest", _NM[0], "--object-path", _NM[1],
     "--method", "org.freedesktop.DBus.Properties.Get", _NM[0], "Metered"),
)  # fmt: skip
_LAST_NUMBER = re.compile(r"(\d+)\D*$")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None


def read_power_source(root: Path = SYS_POWER_SUPPLY) -> PowerSource:
    """A discharging system battery, or a battery with every outside supply offline,
    means battery. A peripheral's battery (scope "Device": a mouse) is ignored."""
    try:
        supplies = sorted(root.iterdir())
    except OSError:
        return "unknown"
    batteries: list[str | None] = []
    external: list[bool] = []
    for supply in supplies:
        kind = _read(supply / "type")
        if kind == "Battery":
            if _read(supply / "scope") != "Device":
                batteries.append(_read(supply / "status"))
        elif kind in EXTERNAL:
            online = _read(supply / "online")
            if online is not None:
                external.append(online == "1")
    if any(status == "Discharging" for status in batteries):
        return "battery"
    if batteries and external and not any(external):
        return "battery"
    if batteries or any(external):
        return "ac"
    return "unknown"


async def power_source() -> PowerSource:
    return await asyncio.to_thread(read_power_source)


def parse_metered(output: str) -> bool | None:
    """`busctl` prints "u 4", `gdbus` prints "(<uint32 4>,)"."""
    found = _LAST_NUMBER.search(output.strip())
    return None if found is None else int(found.group(1)) in NM_METERED_YES


async def metered(timeout: float = 2.0) -> bool | None:  # noqa: ASYNC109 - a subprocess's limit
    """True or False as NetworkManager says, None when it cannot be asked."""
    for command in METERED_COMMANDS:
        exe = shutil.which(command[0])
        if exe is None:
            continue
        try:
            proc = await asyncio.create_subprocess_exec(
                exe, *command[1:], stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
        except OSError:
            continue
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
            continue
        if proc.returncode == 0:
            answer = parse_metered(out.decode("utf-8", "replace"))
            if answer is not None:
                return answer
    return None

"""What each tier card says, from the client's plain data.

The wording follows the UI principles: a state a person can act on, the
numbers that matter, and, when something waits on them, the button that frees
it (Set up… opens the wizard), with the terminal command as a second way.
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtWidgets import QPushButton, QWidget

from core.models import JobInfo, JobState, Status, TargetInfo
from gui.format import first_part, home_relative, human_ago, human_size, plural
from gui.tier_card import Health, TierCard

RUNNING = (JobState.QUEUED, JobState.RUNNING)
ADD_TARGET = "tierkeeper target add folder usb /media/usb"
ARCHIVE_KINDS = frozenset({"s3"})
"""Target kinds that hold Tier 3 archives (closed phases), not Tier 2 backups."""


def is_archive(info: TargetInfo) -> bool:
    return info.kind in ARCHIVE_KINDS


def code(text: str) -> str:
    """A command, kept on one line so it can be read (and copied) whole."""
    return f"<code>{html.escape(text).replace(' ', '&nbsp;')}</code>"


def target_resource(name: str) -> str:
    """The queue resource a target's jobs name (JobInfo.resource)."""
    return f"target:{name}"


def _where(path: str) -> str:
    return home_relative(Path(path)) if path.startswith("/") else path


class LocalCard(TierCard):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Tier 1 · local", parent)
        self.import_button = self.add_button(
            "Import…", "Import agent transcripts from a folder (only what changed is read)"
        )
        self.set_heading("This computer")
        self.set_state(Health.OFF, "Loading…")

    def show_status(self, status: Status, active: list[JobInfo]) -> None:
        self.set_heading("This computer", _where(status.workspace), tooltip=status.workspace)
        importing = any(j.kind == "import" and j.state in RUNNING for j in active)
        if importing:
            self.set_state(Health.BUSY, "Importing…")
        elif status.sessions == 0:
            self.set_state(Health.OFF, "No sessions yet")
        else:
            self.set_state(Health.OK, f"{plural(status.sessions, 'session')} stored")
        facts = [f"{plural(status.messages, 'message')} · database {human_size(status.db_bytes)}"]
        if status.last_import is not None:
            facts.append(f"Last import {human_ago(status.last_import)}")
        self.set_facts(facts)
        self.set_note(
            "Import Claude Code transcripts to start: each session is copied into the "
            "database, searchable, ready to back up."
            if status.sessions == 0 and not importing
            else None
        )
        self.import_button.setEnabled(not importing)


class TargetCard(TierCard):
    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__("Tier 2 · backup", parent)
        self.name = name
        self.backup_button = self.add_button("Back up now")
        self.verify_button = self.add_button("Verify")
        self.retry_button = self.add_button("Retry now", "Try the waiting jobs again at once")
        self.retry_button.hide()
        self.unlock_button = self.add_button(
            "Unlock…", "Give the passphrase or recovery code of this target's key"
        )
        self.unlock_button.hide()
        self.sign_in_button = self.add_button(
            "Sign in again…", "Sign in to Google in your browser; the waiting jobs then go on"
        )
        self.sign_in_button.hide()
        self.info: TargetInfo | None = None
        self.locked_reason: str | None = None
        self.signed_out_reason: str | None = None

    def show_target(self, info: TargetInfo, active: list[JobInfo]) -> None:
        self.info = info
        kind = {"folder": "Folder", "drive": "Google Drive"}.get(info.kind, info.kind)
        where = f"{kind} · {_where(info.where)}" if info.kind == "folder" else info.where
        if info.encrypted:
            where += " · encrypted"
        self.set_heading(info.name, where, tooltip=info.where)

        mine = [j for j in active if j.resource == target_resource(info.name)]
        backing = any(j.kind == "backup" and j.state in RUNNING for j in mine)
        verifying = any(j.kind == "verify" and j.state in RUNNING for j in mine)
        parked = [j for j in mine if j.state == JobState.WAITING]
        paused = paused_backup(info.name, active)
        waiting = max(info.waiting_jobs, len(parked))
        reason = info.wait_reason or next((j.wait_reason for j in parked if j.wait_reason), None)
        needs_user = info.needs_user or any(j.needs_user for j in parked)

        note: str | None = None
        locked = bool(waiting and needs_user and reason and "unlock" in reason.lower())
        self.locked_reason = reason if locked else None
        signed_out = bool(waiting and needs_user and not locked)
        self.signed_out_reason = (reason or "") if signed_out else None
        if waiting:
            jobs = plural(waiting, "job")
            if locked:
                self.set_state(Health.BUSY, f"Locked — {jobs} waiting for the key")
                note = _needs_user(reason, f"tierkeeper target unlock {info.name}")
            elif signed_out:
                self.set_state(Health.BUSY, f"Signed out — {jobs} waiting")
                note = _needs_user(reason, f"tierkeeper target reconnect {info.name}")
            else:
                self.set_state(Health.BUSY, f"Unreachable — {jobs} waiting")
                note = (
                    html.escape(reason or f"{info.name} does not answer")
                    + "<br>Waiting jobs continue by themselves when it answers again."
                )
        elif paused is not None:
            self.set_state(Health.BUSY, "Backup paused")
            done = f"{paused.items_done} of {paused.items_total} sessions backed up. "
            note = html.escape(
                (done if paused.items_total else "")
                + "Resume backup goes on from there; other jobs on this target wait for it."
            )
        elif info.verify_failures:
            self.set_state(
                Health.ERROR, f"{plural(info.verify_failures, 'backup')} failed verification"
            )
            note = "Back up now stores fresh copies; the History page lists what failed."
        elif backing:
            self.set_state(Health.BUSY, "Backing up…")
        elif verifying:
            self.set_state(Health.BUSY, "Verifying…")
        elif info.sessions == 0:
            self.set_state(Health.OFF, "No backups yet")
        else:
            self.set_state(Health.OK, "Backed up")
        self.set_note(note)

        facts = [f"{plural(info.sessions, 'session')} · {human_size(info.stored_bytes)} stored"]
        if info.sessions:
            facts.append(f"Last backup {human_ago(info.last_backup_at)}")
            facts.append(f"Last verified {human_ago(info.last_verified_at)}")
        self.set_facts(facts)

        _busy(self.backup_button, backing, "Resume backup" if paused else "Back up now",
              "Backing up…")  # fmt: skip
        self.backup_button.setToolTip(
            f"Go on with the paused backup to {info.name}"
            if paused
            else f"Back up every session to {info.name}"
        )
        _busy(self.verify_button, verifying, "Verify", "Verifying…")
        self.verify_button.setEnabled(not verifying and info.sessions > 0)
        self.verify_button.setToolTip(
            f"Check every backup on {info.name} against its manifest"
            if info.sessions
            else "Nothing to verify yet"
        )
        self.unlock_button.setVisible(locked)
        self.sign_in_button.setVisible(signed_out and info.kind == "drive")
        self.retry_button.setVisible(bool(waiting) and not locked and not signed_out)


def _needs_user(reason: str | None, command: str) -> str:
    return (
        html.escape(first_part(reason) or "This target waits for you")
        + f"<br><small>From a terminal:<br>{code(command)}</small>"
    )


def paused_backup(target: str, active: list[JobInfo]) -> JobInfo | None:
    """The oldest paused backup to `target`: Back up now resumes it rather than queue
    a second one behind it (which would wait for it anyway)."""
    here = target_resource(target)
    found = [j for j in active if j.resource == here and j.kind == "backup"
             and j.state == JobState.PAUSED]  # fmt: skip
    return min(found, key=lambda j: j.id) if found else None


def _busy(button: QPushButton, busy: bool, idle: str, working: str) -> None:
    button.setText(working if busy else idle)
    button.setEnabled(not busy)


class NoTargetCard(TierCard):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Tier 2 · backup", parent)
        self.set_heading("No backup target yet")
        self.set_state(Health.OFF, "Sessions live only on this computer")
        self.set_note(
            "Set up a folder (an external disk, a NAS share) or Google Drive.<br>"
            f"<small>From a terminal:<br>{code(ADD_TARGET)}</small>"
        )
        self.setup_button = self.add_button("Set up…", "Open the set-up wizard")
        self.setup_button.setAccessibleName("Set up a backup target")


class ArchiveCard(TierCard):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Tier 3 · archive", parent)
        self.setup_button = self.add_button("Set up…", "Open the set-up wizard")
        self.setup_button.setAccessibleName("Set up the archive")
        self.show_archives([], [])

    def show_archives(self, infos: list[TargetInfo], active: list[JobInfo]) -> None:
        """`infos`: the archive (S3) targets; none means the tier is not set up."""
        if not infos:
            self.set_heading("S3 Deep Archive", "Amazon S3 · Glacier Deep Archive")
            self.set_state(Health.OFF, "Not set up yet")
            self.set_note(
                "Closed phases move to S3 Glacier Deep Archive: about $1 per TB a month, "
                "restores take hours.<br><small>From a terminal:<br>"
                f"{code('tierkeeper target add s3 NAME --bucket BUCKET')}</small>"
            )
            self.setup_button.show()
            return
        self.setup_button.hide()
        info = infos[0]
        self.set_heading(info.name, info.where, tooltip=info.where)
        mine = [j for j in active if j.resource == target_resource(info.name)]
        waiting = max(info.waiting_jobs, sum(j.state == JobState.WAITING for j in mine))
        note = f"Archive a closed phase:<br>{code('tierkeeper archive PHASE')}"
        if waiting:
            self.set_state(Health.BUSY, f"{plural(waiting, 'job')} waiting")
            note = html.escape(info.wait_reason or f"{info.name} does not answer yet")
        elif any(j.state in RUNNING for j in mine):
            self.set_state(Health.BUSY, "Working…")
        else:
            self.set_state(Health.OK, "Set up")
        others = [i.name for i in infos[1:]]
        self.set_facts([f"Also: {', '.join(others)}"] if others else [])
        self.set_note(note)

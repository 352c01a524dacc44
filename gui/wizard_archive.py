"""Tier 3, the archive: an S3 bucket (AWS or any S3-compatible service), or not now.

Test connection is the service's real check of a spec not saved yet (the
bucket's facts, then a probe put, read back and deleted), shown under the
fields; Next runs the same check and saves the target with its keys in the
keyring. The cost preview prices what is stored locally now, so the user sees
cents before choosing a storage class.
"""

from __future__ import annotations

import html
from typing import Any

from pydantic import SecretStr
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from core.client import S3TargetSpec, TargetTestResult
from core.errors import TierkeeperError
from gui.format import human_size, plural
from gui.wizard_common import CheckedPage, Message, note
from gui.wizard_state import SavedTarget, SetupState

STORAGE_CLASSES = (
    ("Glacier Deep Archive: cheapest, restores take up to 48 h", "DEEP_ARCHIVE"),
    ("Glacier Flexible Retrieval: restores in minutes to hours", "GLACIER"),
    ("Glacier Instant Retrieval", "GLACIER_IR"),
    ("Standard-IA: infrequent access", "STANDARD_IA"),
    ("Standard", "STANDARD"),
)
EXAMPLE_BYTES = 100 * 1000**3
"""Priced when nothing is stored yet, so the preview still says something."""


def usd(amount: float) -> str:
    return "under $0.01" if amount < 0.01 else f"${amount:,.2f}"


def probe_lines(result: TargetTestResult) -> str:
    lines = [
        f"Connected: a {human_size(result.probe_bytes)} probe was written, read back and deleted "
        f"in {result.round_trip_ms:.0f} ms."
    ]
    if result.bucket is not None:
        lines += [f"Advice: {a}" for a in result.bucket.advice]
    return "\n".join(lines)


class ArchivePage(CheckedPage):
    def __init__(self, state: SetupState) -> None:
        super().__init__(state.runner)
        self._state = state
        self._saved_name: str | None = None
        self._defaulted = False
        self.setTitle("Archive (Tier 3)")
        self.setSubTitle("Finished phases move to cold storage for cents a month.")

        self.s3_choice = QRadioButton("Amazon S3 or an S3-compatible service", self)
        self.skip_choice = QRadioButton("Not now", self)
        group = QButtonGroup(self)
        group.addButton(self.s3_choice)
        group.addButton(self.skip_choice)
        self.s3_choice.setChecked(True)

        self.fields = QWidget(self)
        self.name_edit = QLineEdit("archive", self.fields)
        self.endpoint_edit = QLineEdit(self.fields)
        self.endpoint_edit.setPlaceholderText("empty for AWS; https://… for another service")
        self.region_edit = QLineEdit(self.fields)
        self.region_edit.setPlaceholderText("e.g. eu-central-1")
        self.bucket_edit = QLineEdit(self.fields)
        self.access_edit = QLineEdit(self.fields)
        self.secret_edit = QLineEdit(self.fields)
        self.secret_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.class_box = QComboBox(self.fields)
        for label, value in STORAGE_CLASSES:
            self.class_box.addItem(label, value)
        self.test_button = QPushButton("Test connection", self.fields)
        self.test_button.clicked.connect(
            lambda: self._state.runner.spawn(self.test_connection(), busy=self.test_button)
        )
        self.test_result = Message(self.fields)
        test_row = QHBoxLayout()
        test_row.setContentsMargins(0, 0, 0, 0)
        test_row.addWidget(self.test_button)
        test_row.addStretch(1)
        self.cost_label = note("", self.fields)
        form = QFormLayout(self.fields)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Name:", self.name_edit)
        form.addRow("Endpoint:", self.endpoint_edit)
        form.addRow("Region:", self.region_edit)
        form.addRow("Bucket:", self.bucket_edit)
        form.addRow("Access key:", self.access_edit)
        form.addRow("Secret key:", self.secret_edit)
        form.addRow("Storage class:", self.class_box)
        form.addRow("", test_row)
        form.addRow("", self.test_result)
        form.addRow("Cost:", self.cost_label)

        self.s3_choice.toggled.connect(self.fields.setVisible)
        self.s3_choice.toggled.connect(lambda _on: self.completeChanged.emit())
        for edit in (self.name_edit, self.bucket_edit):
            edit.textChanged.connect(self.completeChanged)
        self.class_box.currentIndexChanged.connect(lambda _i: self.preview_soon())

        layout = QVBoxLayout(self)
        layout.addWidget(self.s3_choice)
        layout.addWidget(self.skip_choice)
        layout.addSpacing(6)
        layout.addWidget(self.fields)
        layout.addWidget(self.busy)
        layout.addWidget(self.message)
        layout.addStretch(1)

    def initializePage(self) -> None:
        settings = self._state.settings
        have = [t.name for t in settings.targets if t.kind == "s3"] if settings else []
        if have and not self._defaulted:  # a re-run: adding another is the exception
            self.skip_choice.setChecked(True)
            self.message.info(f"Already set up: {', '.join(have)}. Choose Not now to keep it.")
        self._defaulted = True
        self.preview_soon()

    # the spec ---------------------------------------------------------------
    def spec(self) -> S3TargetSpec:
        endpoint = self.endpoint_edit.text().strip() or None
        secret = self.secret_edit.text()
        return S3TargetSpec(
            name=self.name_edit.text().strip(),
            bucket=self.bucket_edit.text().strip(),
            endpoint_url=endpoint,
            region=self.region_edit.text().strip() or None,
            # S3-compatible services (MinIO, SeaweedFS, Ceph) want bucket names in the path
            addressing="path" if endpoint else "auto",
            storage_class=str(self.class_box.currentData()),
            access_key=self.access_edit.text().strip() or None,
            secret_key=SecretStr(secret) if secret else None,
            passphrase=self._state.passphrase,
        )

    def inputs(self) -> list[QWidget]:
        return [self.fields, self.s3_choice, self.skip_choice]

    def ready(self) -> bool:
        if self.skip_choice.isChecked():
            return True
        return bool(self.name_edit.text().strip() and self.bucket_edit.text().strip())

    def check_key(self) -> Any:
        return self.spec() if self.s3_choice.isChecked() else None

    def busy_text(self) -> str:
        return "Checking the bucket and saving the archive target…"

    async def check(self, key: Any) -> None:
        assert isinstance(key, S3TargetSpec)
        client = self._state.client
        if self._saved_name is not None:
            await client.remove_target(self._saved_name)
            self._state.forget(self._saved_name)
            self._saved_name = None
        added = await client.add_target(key)
        t = added.target
        self._saved_name = t.name
        self._state.remember(SavedTarget(t.name, t.kind, t.where, t.encryption is not None))

    # test and price ---------------------------------------------------------
    async def test_connection(self) -> None:
        if not self.bucket_edit.text().strip():
            self.test_result.error("Name the bucket first.")
            return
        self.test_result.info("Testing…")
        try:
            result = await self._state.client.test_target(self.spec())
        except TierkeeperError as exc:
            self.test_result.error(str(exc))
            return
        self.test_result.ok(probe_lines(result))

    def preview_soon(self) -> None:
        self._state.runner.spawn(self.preview())

    async def preview(self) -> None:
        size = self._state.local_bytes
        storage_class = str(self.class_box.currentData())
        client = self._state.client
        try:
            (price,) = await client.cost_preview(size or EXAMPLE_BYTES, storage_class)
            example = None
            if size and price.monthly_usd < 0.01:  # tiny today: show what it grows to
                (example,) = await client.cost_preview(EXAMPLE_BYTES, storage_class)
        except (TierkeeperError, ValueError) as exc:
            self.cost_label.setText(html.escape(f"No price for {storage_class}: {exc}"))
            return
        if size:
            what = f"Your {plural(self._state.sessions, 'session')} ({human_size(size)})"
        else:
            what = f"Nothing is imported yet; {human_size(EXAMPLE_BYTES)}"
        text = f"{what} would cost about <b>{usd(price.monthly_usd)} a month</b>"
        if example is not None:
            text += f" ({human_size(EXAMPLE_BYTES)}: {usd(example.monthly_usd)} a month)"
        if price.min_days:
            text += f", billed for at least {price.min_days} days"
        if price.retrieval_usd is not None:
            text += f"; bringing it all back once: {usd(price.retrieval_usd)}"
        self.cost_label.setText(text + ".")

"""A fake Google Drive v3 for tests of code that uses the real google-api-python-client.

No Drive emulator exists, so this package serves the subset of Drive v3 a backup tool needs
over real HTTP on 127.0.0.1, with fault injection for failures that cannot be provoked
against the real service. See README.md here for what is supported.
"""

from __future__ import annotations

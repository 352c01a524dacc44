"""The bundle's `tierkeeper-gui`: the window, with no console on Windows and macOS.

The same as the wheel's `tierkeeper-gui` script; the desktop entry runs it.
"""

from __future__ import annotations

import sys

from gui.app import main

if __name__ == "__main__":
    sys.exit(main())

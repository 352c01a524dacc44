"""`python -m gui [--workspace DIR] [--screenshot PNG --page NAME [--query TEXT]]`."""

from __future__ import annotations

import sys

from gui.app import main

sys.exit(main())

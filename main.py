#!/usr/bin/env python3
"""``python main.py …`` — the guide's command line; the same as ``latentlapse train …``."""

import sys
from pathlib import Path

try:
    from latentlapse.xray.cli import train_main
except ModuleNotFoundError:  # run from a checkout without installing: use the src/ layout
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))
    from latentlapse.xray.cli import train_main

if __name__ == "__main__":
    sys.exit(train_main())

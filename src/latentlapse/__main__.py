"""``python -m latentlapse`` is the ``latentlapse`` command."""

import sys

from latentlapse.xray.cli import main

sys.exit(main())

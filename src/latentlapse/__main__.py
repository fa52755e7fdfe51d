"""``python -m latentlapse`` is the ``latentlapse`` command."""

import sys

from latentlapse.cli import main

sys.exit(main())

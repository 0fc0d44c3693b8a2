"""``python -m recorder.cli``: the ``palpation`` command."""

import sys

from recorder.cli import main

sys.exit(main())

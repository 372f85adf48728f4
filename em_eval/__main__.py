"""``python -m em_eval``."""

import sys

from em_eval.cli import main

sys.exit(main())

"""``python -m ivr.nlu eval ...`` / ``python -m ivr.nlu try ...``."""

import sys

from ivr.nlu.cli import main

sys.exit(main())

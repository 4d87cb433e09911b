"""`python -m bot.cli`: the same entry as the `lianjian` console script."""

import sys

from bot.cli import main

sys.exit(main())

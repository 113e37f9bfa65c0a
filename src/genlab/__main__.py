"""`python -m genlab ...` is `genlab ...` (the studio starts trainings this way)."""

import sys

from genlab.cli import main

sys.exit(main())

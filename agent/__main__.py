"""`python -m agent` is `obt-agent`."""

import sys

from agent.cli import main

sys.exit(main())

"""`python -m gateway.sandbox` (the command SPEC §8 names): the same as `python -m sandbox`."""

import sys

from sandbox.cli import main

sys.exit(main(prog="python -m gateway.sandbox"))

"""`python -m sandbox`: run the local WhatsApp-like chat server."""

import sys

from sandbox.cli import main

sys.exit(main())

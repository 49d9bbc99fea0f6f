"""`python -m lsp_server`: the same command as the `nexttoken` console script."""

import sys

from lsp_server.cli import main

sys.exit(main())

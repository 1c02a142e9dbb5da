"""``python -m authstate.cli``: the same as the ``authstate`` command."""

import sys

from authstate.cli import main

sys.exit(main())

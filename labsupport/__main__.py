"""``python -m labsupport …`` — see ``python -m labsupport --help``."""

import sys

from labsupport.commands import main

sys.exit(main())

"""``python -m labsupport.openssl …`` — the same as the ``cloudhsm-openssl`` command."""

import sys

from labsupport.openssl.launcher import main

sys.exit(main())

"""Entry point of the frozen app: the ``photocaption`` command (``photocaption gui`` opens the window)."""

import sys

from desktop_app.cli import main

if __name__ == "__main__":
    sys.exit(main())

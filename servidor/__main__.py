"""``python -m servidor``: see :mod:`servidor.cli`."""

from servidor.cli import main

raise SystemExit(main())

"""``python -m veza_storage`` runs the ``veza-storage`` command line."""

from veza_storage._cli import main

raise SystemExit(main())

"""``python -m veza_cdn`` runs the ``veza-cdn`` command line."""

from veza_cdn._cli import main

raise SystemExit(main())

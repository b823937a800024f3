"""``python -m veza_webrtc`` runs the ``veza-webrtc`` command line."""

from veza_webrtc._cli import main

raise SystemExit(main())

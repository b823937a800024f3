"""veza-reference-app: the thin server where the veza packages meet.

Routes translate HTTP to package calls and back; the packages hold the logic. Read it
file by file (the docs' "Build your own" guide walks through it), run it with
``veza-demo``.
"""

from veza_reference._app import create_app
from veza_reference._config import AppConfig, AppConfigurationError
from veza_reference._services import Services, build_services
from veza_reference._version import __version__

__all__ = [
    "AppConfig",
    "AppConfigurationError",
    "Services",
    "__version__",
    "build_services",
    "create_app",
]

"""Root conftest: loads the shared service fixtures for every test suite in the repo.

The fixtures live in ``testing/veza_services.py`` (on ``sys.path`` through pytest's
``pythonpath`` setting) so that package test suites, which run in isolated
virtual environments, share one convention for PostgreSQL, S3, coturn and Chromium.
"""

pytest_plugins = ["veza_services"]

"""schemathesis against the app's own OpenAPI schema: no generated request gets a 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable


@pytest.fixture(scope="module")
def app_services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from veza_reference import build_services

    services = build_services(
        {
            "VEZA_DATA_DIR": str(tmp_path_factory.mktemp("schema")),
            "VEZA_PORT": "0",
            "VEZA_WORKERS": "false",
            "PATH": os.environ.get("PATH", ""),
        }
    )
    yield services
    services.close()


@pytest.fixture(scope="module")
def api_schema(app_services: Any) -> Any:
    from veza_reference import create_app
    from veza_reference._demo import seed

    seed(app_services, hls=False)
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(app_services))


def test_no_generated_request_gets_a_server_error(api_schema: Any, app_services: Any) -> None:
    """Every operation, generated inputs (valid and not), admin token included: never a 5xx."""
    headers = {"Authorization": f"Bearer {app_services.config.admin_token.reveal()}"}
    failures: list[str] = []
    operations = 0
    calls: list[int] = []
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in modes:

            @settings(
                max_examples=20,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode))
            def run(case: Any) -> None:
                response = case.call(headers=headers)
                calls.append(response.status_code)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} -> "
                        f"{response.status_code}: {response.text[:200]}"
                    )

            try:
                run()
            except Unsatisfiable:  # nothing about this operation can be made invalid
                assert mode is schemathesis.GenerationMode.NEGATIVE
    assert operations >= 15 and len(calls) >= 10 * operations
    print(  # noqa: T201 - the figure, with -s
        f"schemathesis: {operations} operations, {len(calls)} requests, "
        f"statuses {sorted(set(calls))}"
    )
    assert 422 in calls  # invalid inputs were generated too, and refused cleanly
    assert failures == []

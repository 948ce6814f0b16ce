"""Property-based fuzzing of the API from its OpenAPI schema (schemathesis), on both databases.

Every documented operation gets generated requests (valid and invalid) with an admin token and
with a customer token; each response must not be a 5xx and must conform to the schema (status
code documented, content type, body schema, headers). Bounded to run in well under a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from federation.server.api import create_app  # noqa: E402
from federation.server.registry import publish_model  # noqa: E402
from tests.test_registry_support import (  # noqa: E402
    api_settings,
    database_url,
    make_tokens,
    signing_key_file,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
_TOKENS: dict[str, str] = {}
MAX_EXAMPLES = 20


def _app(backend: str, tmp_path: Path) -> object:
    url = database_url(backend, tmp_path)
    key_path = signing_key_file(tmp_path)
    app = create_app(api_settings(url, tmp_path, key_path))
    tokens = make_tokens(url)
    _TOKENS.update(admin=tokens.admin, acme=tokens.acme)
    with app.state.sessions() as session:
        for version in ("v1", "0"):
            publish_model(
                session,
                app.state.store,
                version=version,
                weights={"w": np.zeros(2, np.float32)},
                signing_key=key_path,
            )
    return app


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def api_schema(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    app = _app(request.param, tmp_path_factory.mktemp(f"fuzz-{request.param}"))
    yield schemathesis.openapi.from_asgi("/openapi.json", app)
    app.state.engine.dispose()  # type: ignore[attr-defined]


@pytest.mark.parametrize("role", ["admin", "acme"])
def test_api_conforms_to_its_schema(api_schema: Any, role: str) -> None:
    headers = {"Authorization": f"Bearer {_TOKENS[role]}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == 10
    for operation in operations:
        strategies = [
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        ]
        if "{customer_id}" in operation.path:  # also reach the customer's real records
            fixed = {"customer_id": "acme"}
            strategies.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=fixed))
        for strategy in strategies:

            @given(case=strategy)
            @settings(
                max_examples=MAX_EXAMPLES,
                deadline=None,
                suppress_health_check=list(HealthCheck),
                derandomize=True,
                database=None,
            )
            def check(case: Any) -> None:
                case.call_and_validate(headers=headers, checks=CHECKS)

            try:
                check()
            except Unsatisfiable:  # no invalid request exists (an operation without inputs)
                assert operation.path in {"/v1/health", "/metrics"}, operation.path

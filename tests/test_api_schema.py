"""Property-based checks of the whole API from its OpenAPI description
(schemathesis): generated requests, as a rep and as an admin, never get a 5xx
and every answer matches the documented schema."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("schemathesis", reason="schemathesis is a test dependency")

import schemathesis  # noqa: E402
from api_helpers import make_api  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import response_schema_conformance  # noqa: E402

MAX_EXAMPLES = 10


@pytest.mark.slow
@pytest.mark.parametrize("who", ["zhang", "boss"])
def test_generated_requests_get_no_5xx_and_match_the_schema(
    crm: Any, crm_clock: Any, who: str
) -> None:
    web = make_api(crm, crm_clock, web={"rate_limit": 100_000})
    headers = {"Authorization": f"Bearer {web.token(who)}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", web.app)
    failures: list[str] = []
    for operation in schema.get_all_operations():
        op = operation.ok()

        @given(case=op.as_strategy())
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def run(case: Any) -> None:
            try:
                case.call_and_validate(
                    headers=headers, checks=[not_a_server_error, response_schema_conformance]
                )
            except Exception as e:  # collected: one report names every failing route
                failures.append(f"{case.method} {case.path}: {str(e)[:600]}")
                raise

        try:
            run()
        except Exception:
            continue
    assert not failures, "\n".join(failures)

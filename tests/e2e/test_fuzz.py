"""Fuzz every operation of the OpenAPI schema against a live server: no input may produce a 5xx.

schemathesis generates valid and invalid requests from the schema; each
operation gets FUZZ_EXAMPLES examples (default 25) as an admin, which reaches
every handler past authorization.
"""
import asyncio
import os

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.core.result import Err

from tests.conftest import make_key

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))


def _fuzz(base_url: str, secret: str) -> tuple[int, list[str]]:
    schema = schemathesis.openapi.from_url(base_url + "/openapi.json")
    headers = {"Authorization": f"Bearer {secret}"}
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        if isinstance(result, Err):
            failures.append(f"schema error: {result.err()}")
            continue
        op = result.ok()
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def run(case):
            response = case.call(base_url=base_url, headers=headers, timeout=30)
            if response.status_code >= 500:
                failures.append(f"{op.label}: {response.status_code} for {case.as_curl_command()}\n{response.text[:300]}")
            elif response.status_code >= 400:
                ctype = response.headers.get("content-type", "")
                ctype = ctype[0] if isinstance(ctype, list) else ctype
                if not ctype.startswith("application/problem+json"):
                    failures.append(f"{op.label}: {response.status_code} without problem+json ({ctype})")

        run()
    return operations, failures


async def test_no_5xx_for_any_input(live_server):
    secret = await make_key("admin", rate_limit="1000000/minute")
    operations, failures = await asyncio.to_thread(_fuzz, live_server, secret)
    assert operations >= 10
    assert not failures, "\n\n".join(failures[:20])

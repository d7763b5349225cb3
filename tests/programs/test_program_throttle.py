"""execute_program is rate limited per API key (PROGRAM_API_RATE), with the shared sliding-window counter."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.programs.conftest import EXECUTE_URL

pytestmark = pytest.mark.django_db


def test_calls_past_the_rate_of_one_key_answer_429_while_another_key_still_gets_through(settings):
    settings.PROGRAM_API_RATE = "2/min"
    client = APIClient()

    def call(key: str) -> int:
        return client.post(EXECUTE_URL, {"promptql_api_key": key, "code": "print(1)"}, format="json").status_code

    first = [call("ps_aaaa_one"), call("ps_aaaa_one")]
    refused = client.post(EXECUTE_URL, {"promptql_api_key": "ps_aaaa_one", "code": "print(1)"}, format="json")

    assert 429 not in first
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert call("ps_bbbb_two") != 429

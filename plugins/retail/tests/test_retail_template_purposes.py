"""Which retail messages are marketing: the quiet hours and frequency caps of
``[messages]`` apply to those, never to what a customer asked for."""

from __future__ import annotations

from crm_retail.messaging import TEMPLATES


def test_greetings_and_member_day_are_marketing_and_the_rest_transactional():
    purposes = {t.name: t.purpose for t in TEMPLATES}
    assert purposes == {
        "retail.birthday": "marketing",
        "retail.member_day": "marketing",
        "retail.abc_survey": "transactional",
        "retail.survey": "transactional",
        "retail.restock": "transactional",
    }

"""A refused field is named the same way by every route: its path joined with dots
(``observations.2.value``), as the OpenAPI Problem schema's example shows."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.vitals.readings import observation, reading

PLAUSIBLE = [
    observation("PULSE", 88, "beats/min"),
    observation("TEMP", 37.1, "C"),
    observation("RESP", 16, "breaths/min"),
    observation("OXYSAT", 97, "%"),
]


def _url(dosing_session, path=""):
    return f"/api/v1/dosing-sessions/{dosing_session.id}/vital-readings{path}"


def _fields(problem):
    return [e["field"] for e in problem["errors"]]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data(), count=st.integers(min_value=1, max_value=len(PLAUSIBLE)))
def test_one_reading_and_a_batch_name_a_refused_observation_alike(
    client, dosing_session, data, count
):
    observations = [dict(o) for o in PLAUSIBLE[:count]]
    bad = data.draw(st.integers(min_value=0, max_value=count - 1), label="refused observation")
    impossible = {**observations[bad], "value": 100000}
    with_control = {**observations[bad], "unit": observations[bad]["unit"] + "\u0007"}
    for refused, field in ((impossible, "value"), (with_control, "unit")):
        sent = reading(60, *observations[:bad], refused, *observations[bad + 1 :])
        expected = [f"observations.{bad}.{field}"]

        one = client.post(_url(dosing_session), json=sent)
        assert one.status_code == 422, one.text
        assert _fields(one.json()) == expected

        batch = client.post(_url(dosing_session, "/batch"), json={"readings": [sent]})
        assert batch.status_code == 200, batch.text
        assert _fields(batch.json()["results"][0]["problem"]) == expected

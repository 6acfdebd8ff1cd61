"""``GET /interventions/v2/rs/lifecycle``: the transition table as data, generated from
``lifecycle.TRANSITIONS`` (nothing here changes the table: every expectation is read from it or
from what ``lifecycle.apply`` does), and the detail's ``actions`` flags, which read the same
table, for every status of every kind."""

from __future__ import annotations

from typing import Any

import httpx
from pydantic.alias_generators import to_snake
from sqlalchemy import update

from interventions.interventions import lifecycle
from interventions.interventions.lifecycle import TRANSITIONS, Kind, Status
from interventions.interventions.models import Intervention
from interventions.interventions.schemas import ActionsRead
from tests.factories import Factory, Org
from tests.helpers import (
    CURATIVE,
    ROUTINE,
    RS,
    TRAINING,
    assert_problem,
    create,
    curative_body,
    intervention_url,
    ok,
    routine_body,
    training_create_body,
)

LIFECYCLE = f"{RS}/lifecycle"


async def _lifecycle(client: httpx.AsyncClient, org: Org) -> dict[str, Any]:
    data: dict[str, Any] = ok(await client.get(LIFECYCLE, headers=org.viewer.headers))
    return data


async def test_every_role_reads_it_and_nobody_else(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    answers = [
        ok(await client.get(LIFECYCLE, headers=member.headers))
        for member in (org.admin, org.manager, org.viewer)
    ]
    assert answers[0] == answers[1] == answers[2]
    assert_problem(await client.get(LIFECYCLE), 401)
    # A literal path, not a bad intervention id; other methods are 405s.
    r = await client.post(LIFECYCLE, json={}, headers=org.admin.headers)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET"


async def test_enums_are_the_lifecycles(client: httpx.AsyncClient, factory: Factory) -> None:
    data = await _lifecycle(client, await factory.org())
    for member, enum in (
        ("statuses", lifecycle.Status),
        ("kinds", lifecycle.Kind),
        ("creationStatuses", lifecycle.CreationStatus),
        ("decisions", lifecycle.Decision),
        ("anomalyStatuses", lifecycle.AnomalyStatus),
    ):
        assert [m["value"] for m in data[member]] == [int(e) for e in enum], member
        for item in data[member]:
            name, label = lifecycle.NAMES[enum][item["value"]]
            assert (item["name"], item["label"]) == (name, label)
    assert data["statuses"][0] == {"value": 1, "name": "toSchedule", "label": "to schedule"}
    assert [s["name"] for s in data["creationStatuses"]] == ["toScheduled", "scheduled", "done"]


def _described_target(target: Any) -> dict[str, Any]:
    if isinstance(target, lifecycle.Rule):
        return {"rule": target.name}
    return {"status": int(target)}


async def test_transitions_are_the_table(client: httpx.AsyncClient, factory: Factory) -> None:
    data = await _lifecycle(client, await factory.org())
    described = {t["action"]: t for t in data["transitions"]}
    assert list(described) == [action.value for action in TRANSITIONS]
    for action, transition in TRANSITIONS.items():
        got = described[action.value]
        assert got["label"] == transition.past
        assert got["creates"] == (None in transition.sources)
        assert got["sources"] == sorted(s for s in transition.sources if s is not None)
        assert got["kinds"] == sorted(transition.kinds)
        assert _described_target(transition.target).items() <= got["target"].items()
        assert [g["name"] for g in got["guards"]] == [g.name for g in transition.guards]
        for guard, shown in zip(transition.guards, got["guards"], strict=True):
            assert shown["status"] == guard.refusal().status
            assert shown["detail"] == guard.refusal().detail
        move = transition.anomalies
        if move is None:
            assert got["anomalies"] is None
        else:
            assert got["anomalies"]["source"] == move.source
            assert _described_target(move.target).items() <= got["anomalies"]["target"].items()
    verify = described["verify"]
    assert verify["sources"] == [4]
    assert verify["target"]["values"] == {"1": 5, "2": 6}
    assert described["check-in"]["target"] == {"status": 3}


def _inputs(rule: dict[str, Any], value: int, *, changed: bool) -> dict[str, Any]:
    """A request bringing ``value`` for the rule's input; ``changed``: a creation status other
    than the intervention's own (re-planning reads both). Guards' inputs hold."""
    inputs: dict[str, Any] = {"pin_matches": True, "signed": True}
    if rule.get("input") is not None:
        inputs[to_snake(rule["input"])] = value
        inputs["previous_creation_status"] = (value + 1) % 3 if changed else value
    return inputs


async def test_described_targets_are_what_the_service_does(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """Each target as described (a status, or a rule's values) is what ``lifecycle.apply``
    gives from every source status on every kind the transition applies to."""
    data = await _lifecycle(client, await factory.org())
    checked = 0
    for transition in data["transitions"]:
        action = lifecycle.Action(transition["action"])
        sources: list[int | None] = [None] if transition["creates"] else []
        sources += transition["sources"]
        target = transition["target"]
        for source in sources:
            for kind in transition["kinds"]:
                if "status" in target:
                    got = lifecycle.apply(action, source, kind, **_inputs(target, 0, changed=True))
                    assert got == target["status"], (action, source, kind)
                    checked += 1
                    continue
                if not target["values"]:  # no input: the status is kept
                    assert target["keeps"]
                    assert (
                        lifecycle.apply(action, source, kind, **_inputs(target, 0, changed=True))
                        == source
                    )
                    continue
                for value, status in target["values"].items():
                    changed = _inputs(target, int(value), changed=True)
                    assert lifecycle.apply(action, source, kind, **changed) == status
                    same = lifecycle.apply(
                        action, source, kind, **_inputs(target, int(value), changed=False)
                    )
                    assert same in ({status, source} if target["keeps"] else {status})
                    checked += 1
    assert checked > 50


async def _one_of_each_kind(client: httpx.AsyncClient, org: Org) -> dict[Kind, int]:
    return {
        Kind.PREVENTIVE: await create(client, ROUTINE, routine_body(org), org),
        Kind.CURATIVE: await create(client, CURATIVE, curative_body(org), org),
        Kind.TRAINING: await create(client, TRAINING, training_create_body(org), org),
    }


async def test_actions_flags_follow_the_table_for_every_status_and_kind(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    described = await _lifecycle(client, org)
    flags = {f["flag"]: f["actions"] for f in described["actionFlags"]}
    assert set(flags) == {field.alias for field in ActionsRead.model_fields.values()}
    ids = await _one_of_each_kind(client, org)
    for kind, intervention_id in ids.items():
        for status in Status:
            # The status set as it is: the flags read the table, whatever led there.
            async with factory.db.writer() as s, s.begin():
                await s.execute(
                    update(Intervention)
                    .where(Intervention.id == intervention_id)
                    .values(status=status)
                )
            for member in (org.admin, org.manager, org.viewer):
                r = await client.get(intervention_url(intervention_id), headers=member.headers)
                actions = ok(r)["actions"]
                writer = member is not org.viewer
                want = {
                    flag: writer
                    and any(lifecycle.allows(lifecycle.Action(a), status, kind) for a in names)
                    for flag, names in flags.items()
                }
                assert actions == want, (kind, status, member.role)
    # And the flags mean what they say: an update is allowed exactly where flagged.
    assert flags["canBeUpdated"] == ["update"]
    assert flags["canBeExecuted"] == ["check-in", "execute"]

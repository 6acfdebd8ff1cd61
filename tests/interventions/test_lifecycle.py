"""The intervention lifecycle (SPEC §4.3): the transition table, then the same rules over HTTP.

Statuses: 1 toSchedule · 2 scheduled · 3 inProgress · 4 toVerify · 5 validated · 6 rejected ·
7 cancelled. Anomaly statuses: 0 open · 1 in repair · 2 resolved.
"""

from __future__ import annotations

import ast
import asyncio
import re
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

import interventions
from interventions.errors import (
    AlreadyCancelled,
    AlreadyCheckedIn,
    AlreadyExecuted,
    AlreadyVerified,
    AppError,
    AttendeesForDrillsOnly,
    Conflict,
    LifecycleConflict,
    NotCheckedIn,
    NotExecuted,
    NotForThisKind,
    SignatureMissing,
    WrongPin,
)
from interventions.interventions import lifecycle
from interventions.interventions.lifecycle import STATUS_NAMES, Action, AnomalyStatus, Kind, Status
from interventions.notifications.models import OutboxEmail
from interventions.references.models import Anomaly, CompanyContact
from tests.factories import Org
from tests.helpers import (
    END,
    MB,
    RS,
    SIGNATURE,
    START,
    HistoryEntry,
    check_resource,
    intervention_history,
)

KINDS = ["preventive", "curative", "training"]


# --- the transition table, as data -------------------------------------------------------

ALL_KINDS = frozenset(Kind)
NEW = None  # the "status" of an intervention not created yet

# What SPEC §4.3 and the README's decisions say, action by action: (statuses it is allowed
# from, kinds it applies to).
SPEC_TABLE: dict[Action, tuple[frozenset[int | None], frozenset[Kind]]] = {
    Action.CREATE: (frozenset({NEW}), ALL_KINDS),
    Action.AUTO_CREATE: (frozenset({NEW}), frozenset({Kind.PREVENTIVE})),  # routines
    # The PATCH endpoints are the preventive (002) and training (003) ones.
    Action.UPDATE: (frozenset({1, 2, 6}), frozenset({Kind.PREVENTIVE, Kind.TRAINING})),
    Action.VERIFY: (frozenset({4}), ALL_KINDS),
    Action.VALIDATE_TRAINING: (frozenset({1, 2, 4}), frozenset({Kind.TRAINING})),
    Action.CHECK_IN: (frozenset({1, 2}), ALL_KINDS),
    Action.EXECUTE: (frozenset({3}), ALL_KINDS),
    Action.CANCEL: (frozenset({1, 2, 3, 6}), ALL_KINDS),
    Action.SEND_INFORMATION: (frozenset({1, 2, 3, 4, 5, 6}), ALL_KINDS),
}

# The action names the history has recorded since the first release: stored, never renamed.
HISTORY_NAMES = {
    Action.CREATE: "create",
    Action.AUTO_CREATE: "auto-create",
    Action.UPDATE: "update",
    Action.VALIDATE_TRAINING: "validate",
    Action.CHECK_IN: "check-in",
    Action.EXECUTE: "execute",
    Action.VERIFY: "verify",
    Action.CANCEL: "cancel",
    Action.SEND_INFORMATION: "information-email",
}


def test_every_action_has_a_transition() -> None:
    assert set(lifecycle.TRANSITIONS) == set(Action) == set(SPEC_TABLE)
    for action, transition in lifecycle.TRANSITIONS.items():
        assert transition.action == action


def test_action_names_are_the_history_names() -> None:
    assert {action: action.value for action in Action} == HISTORY_NAMES


@pytest.mark.parametrize("action", list(SPEC_TABLE), ids=lambda a: a.value)
def test_allows_matches_the_spec(action: Action) -> None:
    statuses, kinds = SPEC_TABLE[action]
    got = {(s, k): lifecycle.allows(action, s, k) for s in [NEW, *Status] for k in Kind}
    want = {(s, k): (s in statuses and k in kinds) for s in [NEW, *Status] for k in Kind}
    assert got == want


def test_check_in_is_before_execution_only() -> None:
    # The provider checks in on a planned intervention, never on one already under way or done.
    assert lifecycle.allows(Action.CHECK_IN, Status.SCHEDULED, Kind.PREVENTIVE)
    for status in (3, 4, 5, 6, 7):
        for kind in Kind:
            assert not lifecycle.allows(Action.CHECK_IN, status, kind), (status, kind)


def test_nothing_leaves_cancelled() -> None:
    for action in Action:
        for kind in Kind:
            assert not lifecycle.allows(action, Status.CANCELLED, kind), (action, kind)


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_ensure_raises_409_exactly_when_not_allowed(action: Action) -> None:
    for status in [NEW, *Status]:
        for kind in Kind:
            if lifecycle.allows(action, status, kind):
                assert lifecycle.ensure(action, status, kind) is None
            elif status is not NEW:
                with pytest.raises(Conflict) as caught:
                    lifecycle.ensure(action, status, kind)
                assert isinstance(caught.value, LifecycleConflict)
                assert caught.value.status == 409
                assert caught.value.slug == Conflict.slug
                assert caught.value.detail


def test_refusals_are_named_for_the_state() -> None:
    def refusal(action: Action, status: int, kind: Kind = Kind.PREVENTIVE) -> type[Exception]:
        with pytest.raises(LifecycleConflict) as caught:
            lifecycle.ensure(action, status, kind)
        return type(caught.value)

    for action in Action:
        if action not in (Action.CREATE, Action.AUTO_CREATE):
            assert refusal(action, Status.CANCELLED, Kind.TRAINING) is AlreadyCancelled
    assert refusal(Action.EXECUTE, Status.SCHEDULED) is NotCheckedIn
    assert refusal(Action.EXECUTE, Status.TO_SCHEDULE) is NotCheckedIn
    assert refusal(Action.CHECK_IN, Status.IN_PROGRESS) is AlreadyCheckedIn
    for status in (1, 2, 3):
        assert refusal(Action.VERIFY, status) is NotExecuted
    for status in (5, 6):
        assert refusal(Action.VERIFY, status) is AlreadyVerified
        assert refusal(Action.VALIDATE_TRAINING, status, Kind.TRAINING) is AlreadyVerified
    assert refusal(Action.CANCEL, Status.TO_VERIFY) is AlreadyExecuted
    assert refusal(Action.UPDATE, Status.TO_VERIFY) is AlreadyExecuted
    assert refusal(Action.VALIDATE_TRAINING, Status.SCHEDULED, Kind.CURATIVE) is NotForThisKind
    assert refusal(Action.UPDATE, Status.SCHEDULED, Kind.CURATIVE) is NotForThisKind
    # The message names the state, as the README promises for cancelled interventions.
    with pytest.raises(AlreadyCancelled, match="that is cancelled cannot be executed"):
        lifecycle.ensure(Action.EXECUTE, Status.CANCELLED, Kind.TRAINING)


def test_status_for_creation() -> None:
    assert lifecycle.status_for_creation(0) == Status.TO_SCHEDULE == 1
    assert lifecycle.status_for_creation(1) == Status.SCHEDULED == 2
    assert lifecycle.status_for_creation(2) == Status.TO_VERIFY == 4
    for value in (0, 1, 2):
        assert isinstance(lifecycle.status_for_creation(value), Status)
    for bad in (-1, 3, 7):
        with pytest.raises((ValueError, KeyError)):
            lifecycle.status_for_creation(bad)


def test_status_after_decision() -> None:
    assert lifecycle.status_after_decision(1) == Status.VALIDATED == 5
    assert lifecycle.status_after_decision(2) == Status.REJECTED == 6


def inputs_for(action: Action, kind: Kind, creation_status: int = 1) -> lifecycle.Inputs:
    """What a valid request of ``action`` brings (the walks below send these)."""
    if action in (Action.CREATE, Action.AUTO_CREATE):
        return {"creation_status": creation_status}
    if action == Action.UPDATE:
        return {"creation_status": creation_status, "previous_creation_status": creation_status}
    if action == Action.VERIFY:
        return {"decision": 1}
    if action == Action.CHECK_IN:
        return {"pin_matches": True}
    if action == Action.EXECUTE:
        return {"signed": True, "attendee_count": 3 if kind == Kind.TRAINING else None}
    return {}


# SPEC §4.3's targets, for valid inputs: (action, status, kind, inputs) -> status.
def spec_target(action: Action, status: int | None, inputs: lifecycle.Inputs) -> int | None:
    if action in (Action.CREATE, Action.AUTO_CREATE):
        return {0: 1, 1: 2, 2: 4}[inputs["creation_status"]]
    if action == Action.UPDATE:
        replanned = inputs["creation_status"] != inputs["previous_creation_status"]
        if replanned or status == 6:
            return {0: 1, 1: 2, 2: 4}[inputs["creation_status"]]
        return status
    if action == Action.VERIFY:
        return {1: 5, 2: 6}[inputs["decision"]]
    return {
        Action.VALIDATE_TRAINING: 5,
        Action.CHECK_IN: 3,
        Action.EXECUTE: 4,
        Action.CANCEL: 7,
        Action.SEND_INFORMATION: status,  # not a status change
    }[action]


@pytest.mark.parametrize("action", list(Action), ids=lambda a: a.value)
def test_apply_gives_the_spec_target_and_refuses_the_rest(action: Action) -> None:
    for status in [NEW, *Status]:
        for kind in Kind:
            variants: list[lifecycle.Inputs] = [inputs_for(action, kind)]
            if action in (Action.CREATE, Action.AUTO_CREATE, Action.UPDATE):
                variants = [inputs_for(action, kind, c) for c in (0, 1, 2)]
                if action == Action.UPDATE:
                    variants += [
                        {"creation_status": new, "previous_creation_status": old}
                        for new in (0, 1, 2)
                        for old in (0, 1, 2)
                    ]
            if action == Action.VERIFY:
                variants.append({"decision": 2})
            for inputs in variants:
                if lifecycle.allows(action, status, kind):
                    got = lifecycle.apply(action, status, kind, **inputs)
                    assert isinstance(got, Status)
                    assert got == spec_target(action, status, inputs), (status, kind, inputs)
                elif status is not NEW:
                    with pytest.raises(LifecycleConflict):
                        lifecycle.apply(action, status, kind, **inputs)


def test_guards_refuse_with_their_own_errors() -> None:
    with pytest.raises(WrongPin):
        lifecycle.apply(Action.CHECK_IN, Status.SCHEDULED, Kind.PREVENTIVE, pin_matches=False)
    with pytest.raises(WrongPin):  # a guard holds only on what the request says
        lifecycle.apply(Action.CHECK_IN, Status.SCHEDULED, Kind.PREVENTIVE)
    with pytest.raises(SignatureMissing):
        lifecycle.apply(Action.EXECUTE, Status.IN_PROGRESS, Kind.PREVENTIVE, signed=False)
    for kind in (Kind.PREVENTIVE, Kind.CURATIVE):
        with pytest.raises(AttendeesForDrillsOnly):
            lifecycle.apply(Action.EXECUTE, Status.IN_PROGRESS, kind, signed=True, attendee_count=3)
        assert lifecycle.apply(Action.EXECUTE, Status.IN_PROGRESS, kind, signed=True) == 4
    drill = lifecycle.apply(
        Action.EXECUTE, Status.IN_PROGRESS, Kind.TRAINING, signed=True, attendee_count=0
    )
    assert drill == Status.TO_VERIFY
    # The status comes first: a cancelled intervention is a 409 whatever the PIN.
    with pytest.raises(AlreadyCancelled):
        lifecycle.apply(Action.CHECK_IN, Status.CANCELLED, Kind.PREVENTIVE, pin_matches=False)
    for transition in lifecycle.TRANSITIONS.values():
        for guard in transition.guards:
            assert guard.name
            assert isinstance(guard.refusal(), AppError)


def test_anomalies_move_beside_the_transitions() -> None:
    A = AnomalyStatus
    moves = {
        (action, decision): lifecycle.anomaly_move(action, Kind.CURATIVE, decision=decision)
        for action in Action
        for decision in (1, 2)
    }
    assert {key: move for key, move in moves.items() if move is not None} == {
        (Action.CREATE, 1): (A.OPEN, A.IN_REPAIR),
        (Action.CREATE, 2): (A.OPEN, A.IN_REPAIR),
        (Action.VERIFY, 1): (A.IN_REPAIR, A.RESOLVED),
        (Action.VERIFY, 2): (A.IN_REPAIR, A.OPEN),
        (Action.CANCEL, 1): (A.IN_REPAIR, A.OPEN),
        (Action.CANCEL, 2): (A.IN_REPAIR, A.OPEN),
    }
    for action in Action:
        for kind in (Kind.PREVENTIVE, Kind.TRAINING):  # they have no anomalies
            assert lifecycle.anomaly_move(action, kind, decision=1) is None


# --- every status change goes through the table ------------------------------------------

SRC = Path(interventions.__file__).parent
LIFECYCLE = SRC / "interventions" / "lifecycle.py"
STATUS_ENUMS = {"Status", "AnomalyStatus"}
# SQL comparisons that are method calls: filters, not targets.
COMPARING_METHODS = {"in_", "not_in", "is_", "is_not", "is_distinct_from"}


def _is_status_enum(node: ast.AST) -> bool:
    """``Status`` or ``lifecycle.Status`` (or ``AnomalyStatus``)."""
    return (isinstance(node, ast.Name) and node.id in STATUS_ENUMS) or (
        isinstance(node, ast.Attribute) and node.attr in STATUS_ENUMS
    )


def _is_literal(node: ast.AST, kind: type) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) is kind


def literal_targets(source: str, *, literal_ints: bool = True) -> list[str]:
    """Where ``source`` picks a status itself instead of asking the lifecycle: a member of
    ``Status``/``AnomalyStatus`` used other than in a comparison, ``Status(<literal>)``,
    and (``literal_ints``) an integer literal written as a ``status``. Also history action
    names written as string literals instead of ``Action`` members. ``line: code`` each."""
    tree = ast.parse(source)
    compared: set[int] = set()
    for node in ast.walk(tree):
        operands: list[ast.expr] = []
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in COMPARING_METHODS
        ):
            operands = list(node.args)
        for operand in operands:
            compared.add(id(operand))
            if isinstance(operand, ast.Tuple | ast.List | ast.Set):
                compared.update(id(e) for e in operand.elts)

    found: list[ast.expr] = []

    def written(name: str, value: ast.expr) -> None:
        """``value`` is written under the member ``name``."""
        if name == "status" and literal_ints and _is_literal(value, int):
            found.append(value)
        if name == "action" and _is_literal(value, str):
            found.append(value)

    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_status_enum(node.value):
            if id(node) not in compared:
                found.append(node)
        elif isinstance(node, ast.Call):
            if _is_status_enum(node.func) and any(isinstance(a, ast.Constant) for a in node.args):
                found.append(node)
            for keyword in node.keywords:
                if keyword.arg is not None:
                    written(keyword.arg, keyword.value)
            # ChangeSet.set("status", …) and setattr(x, "status", …)
            is_setattr = isinstance(node.func, ast.Name) and node.func.id == "setattr"
            args = node.args[1:] if is_setattr else node.args
            if len(args) >= 2 and _is_literal(args[0], str):
                written(str(getattr(args[0], "value", "")), args[1])
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if key is not None and _is_literal(key, str):
                    written(str(getattr(key, "value", "")), value)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if node.value is not None and isinstance(target, ast.Attribute | ast.Name):
                    written(
                        target.attr if isinstance(target, ast.Attribute) else target.id, node.value
                    )
    lines = source.splitlines()
    return sorted({f"{n.lineno}: {lines[n.lineno - 1].strip()}" for n in found})


@pytest.mark.parametrize(
    "code",
    [
        "intervention.status = Status.CANCELLED",
        "intervention.status = lifecycle.Status.CANCELLED",
        "row = Intervention(status=Status.SCHEDULED)",
        "rows = [{'status': Status.SCHEDULED}]",
        "changes.set('status', Status.VALIDATED)",
        "history = {'status': (before, Status.IN_PROGRESS)}",
        "values(status=AnomalyStatus.IN_REPAIR)",
        "new = Status(7)",
        "target = Status.TO_VERIFY if accepted else Status.REJECTED",
        "intervention.status = 7",
        "update(t).values(status=3)",
        "rows = [{'status': 2}]",
        "changes.set('status', 5)",
        "setattr(intervention, 'status', 5)",
        "record_history(session, i, action='verify')",
        "rows = [{'action': 'auto-create'}]",
        "action = 'validate'",
    ],
)
def test_the_check_catches_a_status_picked_outside_the_lifecycle(code: str) -> None:
    assert literal_targets(code) == [f"1: {code}"]


@pytest.mark.parametrize(
    "code",
    [
        "if intervention.status == Status.TO_VERIFY: pass",
        "stmt.where(Intervention.status != Status.CANCELLED)",
        "ok = status in (Status.TO_SCHEDULE, Status.SCHEDULED)",
        "stmt.where(Intervention.status.in_([Status.SCHEDULED, Status.IN_PROGRESS]))",
        "intervention.status = apply(Action.CANCEL, intervention.status, kind)",
        "changes.set('status', target)",
        "current = Status(status)",
        "rows = [{'status': status, 'action': Action.AUTO_CREATE}]",
        "record_history(session, i, action=Action.VERIFY)",
        "for status in Status: pass",
    ],
)
def test_the_check_lets_comparisons_and_the_lifecycle_through(code: str) -> None:
    assert literal_targets(code) == []


def test_no_module_outside_the_lifecycle_picks_a_status() -> None:
    """Every status change asks ``lifecycle.apply``; history actions are ``Action`` members.

    Integer literals written as a ``status`` are checked in the interventions package only:
    elsewhere ``status`` is another thing's (an anomaly created open, an e-mail pending)."""
    package = SRC / "interventions"
    found = {
        str(path.relative_to(SRC)): hits
        for path in sorted(SRC.rglob("*.py"))
        if path != LIFECYCLE and "migrations" not in path.parts
        for hits in [literal_targets(path.read_text(), literal_ints=path.is_relative_to(package))]
        if hits
    }
    assert found == {}


# --- HTTP helpers --------------------------------------------------------------------------


async def create(
    client: httpx.AsyncClient,
    org: Org,
    kind: str,
    creation_status: int = 0,
    *,
    anomaly_ids: list[int] | None = None,
    start: str = START,
    end: str = END,
) -> dict[str, Any]:
    """A new intervention of ``kind`` created by the organisation's admin."""
    common = {"scheduledStart": start, "scheduledEnd": end, "creationStatus": creation_status}
    if kind == "preventive":
        path, body = f"{RS}/preventive/routine", {**common, "routineId": org.routine_id}
    elif kind == "curative":
        ids = anomaly_ids if anomaly_ids is not None else [org.anomaly_ids[0]]
        path, body = f"{RS}/curative", {**common, "anomalyIds": ids}
    else:
        path = f"{RS}/training-exercise"
        body = {**common, "ruleId": org.training_rule_id, "siteIds": [org.site_ids[0]]}
    r = await client.post(path, json=body, headers=org.admin.headers)
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def verify(
    client: httpx.AsyncClient, org: Org, intervention_id: int, decision: int, **extra: Any
) -> httpx.Response:
    body = {"decision": decision, "decisionComment": f"decision {decision}", **extra}
    return await client.patch(
        f"{RS}/{intervention_id}/verify", json=body, headers=org.manager.headers
    )


# Members the single read adds to the intervention resource (sites, history, actions…).
DETAIL_ONLY = {"sites", "siteRules", "rules", "anomalies", "signatureUrl", "history", "actions"}


async def get(client: httpx.AsyncClient, org: Org, intervention_id: int) -> dict[str, Any]:
    """The intervention resource as GET shows it, without the detail-only members."""
    r = await client.get(f"{RS}/{intervention_id}", headers=org.viewer.headers)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    assert data.keys() >= DETAIL_ONLY
    return {k: v for k, v in data.items() if k not in DETAIL_ONLY}


async def in_status(client: httpx.AsyncClient, org: Org, kind: str, status: int) -> dict[str, Any]:
    """An intervention brought to ``status`` (1, 2, 4, 5 or 6) through the API."""
    anomaly = [org.anomaly_ids[status % 4]]
    creation = {1: 0, 2: 1}.get(status, 2)
    data = await create(client, org, kind, creation, anomaly_ids=anomaly)
    if status in (5, 6):
        r = await verify(client, org, data["id"], 1 if status == 5 else 2)
        assert r.status_code == 200, r.text
        data = r.json()["data"]
    assert data["status"] == status
    return data


def assert_problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert body["status"] == status
    assert {"type", "title", "status", "detail"} <= body.keys()
    return body


async def anomaly_status(factory: Any, anomaly_id: int) -> Anomaly:
    async with factory.db.reader() as s:
        row = await s.get(Anomaly, anomaly_id)
        assert row is not None
        return row


async def history(factory: Any, intervention_id: int) -> list[HistoryEntry]:
    return await intervention_history(factory.db, intervention_id)


async def outbox(factory: Any, intervention_id: int) -> list[OutboxEmail]:
    async with factory.db.reader() as s:
        rows = await s.execute(
            select(OutboxEmail)
            .where(OutboxEmail.intervention_id == intervention_id)
            .order_by(OutboxEmail.id)
        )
        return list(rows.scalars())


# --- creation --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("creation_status", "status"), [(0, 1), (1, 2), (2, 4)])
async def test_creation_status_sets_status(
    client: httpx.AsyncClient, factory: Any, kind: str, creation_status: int, status: int
) -> None:
    org: Org = await factory.org()
    data = await create(client, org, kind, creation_status)
    check_resource(data)
    assert data["status"] == status
    assert data["creationStatus"] == creation_status
    assert data["scheduledStart"] == START
    assert data["scheduledEnd"] == END
    if creation_status == 2:
        # "Done": recorded after the fact, it happened as planned.
        assert data["actualStart"] == START
        assert data["actualEnd"] == END
    else:
        assert data["actualStart"] is None
        assert data["actualEnd"] is None
    assert data["verifiedAt"] is None
    assert data["verifiedByUserId"] is None
    assert await get(client, org, data["id"]) == data


async def test_code_pin_is_six_digits_and_drawn_per_creation(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    pins = [(await create(client, org, "preventive"))["codePin"] for _ in range(10)]
    for pin in pins:
        assert isinstance(pin, int)
        assert not isinstance(pin, bool)
        assert 100000 <= pin <= 999999
        assert re.fullmatch(r"\d{6}", str(pin))
    # Ten draws from 900 000 values: two equal pairs would be a one-in-a-billion event.
    assert len(set(pins)) >= 9, pins


# --- verify -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("decision", [1, 2])
async def test_verify_from_to_verify(
    client: httpx.AsyncClient, factory: Any, kind: str, decision: int
) -> None:
    org: Org = await factory.org()
    data = await in_status(client, org, kind, 4)
    r = await verify(client, org, data["id"], decision)
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    check_resource(out)
    assert out["status"] == (5 if decision == 1 else 6)
    assert out["decisionComment"] == f"decision {decision}"
    assert out["verifiedByUserId"] == out["verifiedById"] == org.manager.user_id
    assert out["verifiedAt"] is not None
    assert await get(client, org, data["id"]) == out


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", [1, 2, 5, 6])
async def test_verify_outside_to_verify_is_409(
    client: httpx.AsyncClient, factory: Any, kind: str, status: int
) -> None:
    org: Org = await factory.org()
    data = await in_status(client, org, kind, status)
    before = await get(client, org, data["id"])
    for decision in (1, 2):
        r = await verify(client, org, data["id"], decision)
        assert_problem(r, 409)
    assert await get(client, org, data["id"]) == before


async def test_concurrent_verifications_one_wins(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = await create(client, org, "preventive", 2)
    responses = await asyncio.gather(
        *(
            client.patch(
                f"{RS}/{data['id']}/verify",
                json={"decision": 1 + n % 2, "decisionComment": f"attempt {n}"},
                headers=(org.admin if n % 3 else org.manager).headers,
            )
            for n in range(10)
        )
    )
    counts = Counter(r.status_code for r in responses)
    assert counts == {200: 1, 409: 9}, [r.text for r in responses]
    winner = next(r for r in responses if r.status_code == 200).json()["data"]
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409)
    final = await get(client, org, data["id"])
    assert final["status"] == winner["status"] in (5, 6)
    assert final["decisionComment"] == winner["decisionComment"]
    assert final["verifiedByUserId"] == winner["verifiedByUserId"]
    verifies = [h for h in await history(factory, data["id"]) if h.action == "verify"]
    assert len(verifies) == 1


# --- PATCH (re-planning) -----------------------------------------------------------------


@pytest.mark.parametrize("status", [1, 2, 6])
async def test_update_preventive_allowed(
    client: httpx.AsyncClient, factory: Any, status: int
) -> None:
    org: Org = await factory.org()
    data = await in_status(client, org, "preventive", status)
    r = await client.patch(
        f"{RS}/preventive/{data['id']}",
        json={
            "description": "Re-planned",
            "scheduledStart": "2025-01-02T08:00:00.000Z",
            "scheduledEnd": "2025-01-02T09:00:00.000Z",
        },
        headers=org.admin.headers,
    )
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    assert out["description"] == "Re-planned"
    assert out["scheduledStart"] == "2025-01-02T08:00:00.000Z"
    assert out["scheduledEnd"] == "2025-01-02T09:00:00.000Z"
    if status in (1, 2):
        assert out["status"] == status
    assert await get(client, org, data["id"]) == out


async def test_rejected_is_re_planned(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = await in_status(client, org, "preventive", 6)
    r = await client.patch(
        f"{RS}/preventive/{data['id']}", json={"creationStatus": 1}, headers=org.admin.headers
    )
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    assert out["status"] == 2
    assert out["creationStatus"] == 1
    # Scheduled again: it can be executed and verified afresh, not verified as it stands.
    assert_problem(await verify(client, org, data["id"], 1), 409)


@pytest.mark.parametrize("kind", ["preventive", "training"])
@pytest.mark.parametrize("status", [4, 5])
async def test_update_after_execution_is_409(
    client: httpx.AsyncClient, factory: Any, kind: str, status: int
) -> None:
    org: Org = await factory.org()
    data = await in_status(client, org, kind, status)
    before = await get(client, org, data["id"])
    path = f"{RS}/{'preventive' if kind == 'preventive' else 'training-exercise'}/{data['id']}"
    for body in ({"description": "Too late"}, {"creationStatus": 0}, {"scheduledEnd": END}):
        assert_problem(await client.patch(path, json=body, headers=org.admin.headers), 409)
    assert await get(client, org, data["id"]) == before


@pytest.mark.parametrize("kind", ["preventive", "training"])
async def test_update_creation_status_moves_status(
    client: httpx.AsyncClient, factory: Any, kind: str
) -> None:
    org: Org = await factory.org()
    data = await create(client, org, kind, 0)
    path = f"{RS}/{'preventive' if kind == 'preventive' else 'training-exercise'}/{data['id']}"
    for creation_status, status in ((1, 2), (0, 1), (1, 2), (2, 4)):
        r = await client.patch(
            path, json={"creationStatus": creation_status}, headers=org.admin.headers
        )
        assert r.status_code == 200, r.text
        out = r.json()["data"]
        assert (out["creationStatus"], out["status"]) == (creation_status, status)
    # Done: it happened as planned.
    assert out["actualStart"] == START
    assert out["actualEnd"] == END
    # Now awaiting verification: no more re-planning.
    assert_problem(
        await client.patch(path, json={"creationStatus": 1}, headers=org.admin.headers), 409
    )


async def test_update_without_creation_status_keeps_status(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    data = await create(client, org, "preventive", 1)
    r = await client.patch(
        f"{RS}/preventive/{data['id']}", json={"description": "x"}, headers=org.admin.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["data"]["status"] == 2


# --- training validation -----------------------------------------------------------------


@pytest.mark.parametrize("status", [1, 2, 4])
async def test_training_validation(client: httpx.AsyncClient, factory: Any, status: int) -> None:
    org: Org = await factory.org()
    data = await in_status(client, org, "training", status)
    path = f"{RS}/training-exercise/{data['id']}"
    r = await client.patch(path, json={"validateIntervention": True}, headers=org.manager.headers)
    assert r.status_code == 200, r.text
    out = r.json()["data"]
    assert out["status"] == 5
    assert out["verifiedByUserId"] == out["verifiedById"] == org.manager.user_id
    assert out["verifiedAt"] is not None
    assert await get(client, org, data["id"]) == out
    # Validated: neither validated again nor verified.
    again = await client.patch(path, json={"validateIntervention": True}, headers=org.admin.headers)
    assert_problem(again, 409)
    assert_problem(await verify(client, org, data["id"], 1), 409)
    assert await get(client, org, data["id"]) == out


async def test_training_validation_from_validated_is_409(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    data = await in_status(client, org, "training", 5)
    r = await client.patch(
        f"{RS}/training-exercise/{data['id']}",
        json={"validateIntervention": True},
        headers=org.manager.headers,
    )
    assert_problem(r, 409)
    assert (await get(client, org, data["id"]))["verifiedByUserId"] == data["verifiedByUserId"]


async def test_validation_is_for_training_only(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = await create(client, org, "preventive", 2)
    r = await client.patch(
        f"{RS}/preventive/{data['id']}",
        json={"validateIntervention": True},
        headers=org.admin.headers,
    )
    # Not a member of the preventive update: an unknown field.
    assert_problem(r, 400)
    assert (await get(client, org, data["id"]))["status"] == 4


# --- curative and anomalies -------------------------------------------------------------


async def test_curative_takes_its_anomalies(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    first, second = org.anomaly_ids[0], org.anomaly_ids[1]
    data = await create(client, org, "curative", 0, anomaly_ids=[first, second])
    assert data["anomalyIds"] == sorted([first, second])
    assert (await anomaly_status(factory, first)).status == 1
    assert (await anomaly_status(factory, second)).status == 1
    assert (await anomaly_status(factory, org.anomaly_ids[2])).status == 0
    for ids in ([first], [second], [org.anomaly_ids[2], second]):
        r = await client.post(
            f"{RS}/curative",
            json={
                "scheduledStart": START,
                "scheduledEnd": END,
                "anomalyIds": ids,
                "creationStatus": 0,
            },
            headers=org.admin.headers,
        )
        body = assert_problem(r, 422)
        assert "anomalyIds" in [e["field"] for e in body["errors"]]
    # The refused attempt changed nothing.
    assert (await anomaly_status(factory, org.anomaly_ids[2])).status == 0


async def test_accepting_a_curative_resolves_its_anomalies(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    ids = [org.anomaly_ids[0], org.anomaly_ids[3]]
    data = await create(client, org, "curative", 2, anomaly_ids=ids)
    assert data["status"] == 4
    r = await verify(client, org, data["id"], 1)
    assert r.status_code == 200, r.text
    for anomaly_id in ids:
        anomaly = await anomaly_status(factory, anomaly_id)
        assert anomaly.status == 2
        assert anomaly.resolved_at is not None
        assert anomaly.resolved_by_user_id == org.manager.user_id
    # Resolved: no further repair of it.
    r = await client.post(
        f"{RS}/curative",
        json={
            "scheduledStart": START,
            "scheduledEnd": END,
            "anomalyIds": [ids[0]],
            "creationStatus": 0,
        },
        headers=org.admin.headers,
    )
    assert "anomalyIds" in [e["field"] for e in assert_problem(r, 422)["errors"]]
    assert (await anomaly_status(factory, org.anomaly_ids[1])).status == 0


async def test_rejecting_a_curative_reopens_its_anomalies(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    ids = [org.anomaly_ids[1], org.anomaly_ids[2]]
    data = await create(client, org, "curative", 2, anomaly_ids=ids)
    r = await verify(client, org, data["id"], 2)
    assert r.status_code == 200, r.text
    for anomaly_id in ids:
        anomaly = await anomaly_status(factory, anomaly_id)
        assert anomaly.status == 0
        assert anomaly.resolved_at is None
    # Open again: a new curative may take them.
    again = await create(client, org, "curative", 0, anomaly_ids=ids)
    assert again["id"] != data["id"]
    for anomaly_id in ids:
        assert (await anomaly_status(factory, anomaly_id)).status == 1


# --- history -----------------------------------------------------------------------------


async def test_history_is_appended(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = await create(client, org, "preventive", 0)
    rows = await history(factory, data["id"])
    assert [h.action for h in rows] == ["create"]
    assert rows[0].user_id == org.admin.user_id
    r = await client.patch(
        f"{RS}/preventive/{data['id']}",
        json={"creationStatus": 2, "description": "Done on Monday"},
        headers=org.manager.headers,
    )
    assert r.status_code == 200, r.text
    r = await verify(client, org, data["id"], 1)
    assert r.status_code == 200, r.text
    rows = await history(factory, data["id"])
    assert [h.action for h in rows] == ["create", "update", "verify"]
    assert [h.user_id for h in rows] == [
        org.admin.user_id,
        org.manager.user_id,
        org.manager.user_id,
    ]
    for h in rows:
        assert h.organization_id == org.id
        assert h.created_at is not None
        assert h.changes
    assert "status" in rows[1].changes
    assert "description" in rows[1].changes
    assert "status" in rows[2].changes
    assert rows[0].created_at <= rows[1].created_at <= rows[2].created_at


async def test_training_validation_is_recorded(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = await create(client, org, "training", 1)
    r = await client.patch(
        f"{RS}/training-exercise/{data['id']}",
        json={"validateIntervention": True},
        headers=org.manager.headers,
    )
    assert r.status_code == 200, r.text
    rows = await history(factory, data["id"])
    assert len(rows) == 2
    assert rows[1].user_id == org.manager.user_id
    assert "status" in rows[1].changes


async def test_refused_changes_leave_no_history(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = await create(client, org, "preventive", 0)
    assert_problem(await verify(client, org, data["id"], 1), 409)
    r = await client.patch(
        f"{RS}/preventive/{data['id']}",
        json={"scheduledStart": "2024-11-02T08:00:00.000Z"},  # after scheduledEnd
        headers=org.admin.headers,
    )
    assert_problem(r, 422)
    assert [h.action for h in await history(factory, data["id"])] == ["create"]


# --- e-mails on reassignment ---------------------------------------------------------------


async def patch_preventive(
    client: httpx.AsyncClient, org: Org, intervention_id: int, body: dict[str, Any]
) -> dict[str, Any]:
    r = await client.patch(
        f"{RS}/preventive/{intervention_id}", json=body, headers=org.admin.headers
    )
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    return data


async def test_update_email_only_when_asked(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    iid = (await create(client, org, "preventive", 1))["id"]
    await patch_preventive(client, org, iid, {"assignedProfileId": org.manager.profile_id})
    await patch_preventive(
        client,
        org,
        iid,
        {"assignedProfileId": org.admin.profile_id, "sendUpdateEmailToCurrentAssignee": False},
    )
    assert await outbox(factory, iid) == []

    await patch_preventive(
        client,
        org,
        iid,
        {"assignedProfileId": org.manager.profile_id, "sendUpdateEmailToCurrentAssignee": True},
    )
    mails = await outbox(factory, iid)
    # To the new assignee only: the previous one was not asked for.
    assert [m.recipient for m in mails] == [org.manager.email]
    assert mails[0].intervention_id == iid
    assert mails[0].subject
    assert mails[0].body

    # The current assignee is told of a change that keeps them assigned, when asked.
    await patch_preventive(
        client,
        org,
        iid,
        {"description": "New access code", "sendUpdateEmailToCurrentAssignee": True},
    )
    mails = await outbox(factory, iid)
    assert [m.recipient for m in mails] == [org.manager.email, org.manager.email]
    await patch_preventive(client, org, iid, {"description": "Quiet change"})
    assert len(await outbox(factory, iid)) == 2


async def test_previous_assignee_email_only_when_the_assignee_changed(
    client: httpx.AsyncClient, factory: Any
) -> None:
    org: Org = await factory.org()
    iid = (await create(client, org, "preventive", 1))["id"]
    await patch_preventive(client, org, iid, {"assignedProfileId": org.manager.profile_id})
    notice = {"sendEmail": True, "reason": "Away on holiday"}

    # Unchanged assignee (not given, or given again): no previous assignee to tell.
    await patch_preventive(
        client, org, iid, {"description": "x", "previousAssigneeNotification": notice}
    )
    await patch_preventive(
        client,
        org,
        iid,
        {"assignedProfileId": org.manager.profile_id, "previousAssigneeNotification": notice},
    )
    assert await outbox(factory, iid) == []

    # Reassigned without asking: nothing either.
    await patch_preventive(
        client,
        org,
        iid,
        {
            "assignedProfileId": org.viewer.profile_id,
            "previousAssigneeNotification": {"sendEmail": False, "reason": "no"},
        },
    )
    assert await outbox(factory, iid) == []

    # Reassigned and asked: the previous assignee, with the reason; not the new one.
    await patch_preventive(
        client,
        org,
        iid,
        {"assignedProfileId": org.admin.profile_id, "previousAssigneeNotification": notice},
    )
    mails = await outbox(factory, iid)
    assert [m.recipient for m in mails] == [org.viewer.email]
    assert "Away on holiday" in mails[0].body
    assert mails[0].intervention_id == iid
    assert mails[0].subject


async def test_both_emails_on_contact_reassignment(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    async with factory.db.reader() as s:
        contact_emails = {
            c.id: c.email
            for c in (
                await s.execute(
                    select(CompanyContact).where(CompanyContact.id.in_(org.contact_ids))
                )
            ).scalars()
        }
    iid = (await create(client, org, "preventive", 1))["id"]
    await patch_preventive(client, org, iid, {"assignedCompanyContactId": org.contact_ids[0]})
    assert await outbox(factory, iid) == []
    out = await patch_preventive(
        client,
        org,
        iid,
        {
            "assignedCompanyContactId": org.contact_ids[1],
            "sendUpdateEmailToCurrentAssignee": True,
            "previousAssigneeNotification": {"sendEmail": True, "reason": "Contract ended"},
        },
    )
    assert out["assignedCompanyContactId"] == org.contact_ids[1]
    assert out["companyId"] == org.company_ids[1]
    mails = await outbox(factory, iid)
    assert sorted(m.recipient for m in mails) == sorted(
        [contact_emails[org.contact_ids[0]], contact_emails[org.contact_ids[1]]]
    )
    previous = next(m for m in mails if m.recipient == contact_emails[org.contact_ids[0]])
    assert "Contract ended" in previous.body


async def test_refused_update_queues_no_email(client: httpx.AsyncClient, factory: Any) -> None:
    org: Org = await factory.org()
    data = await create(client, org, "preventive", 2)  # awaiting verification: 409 on PATCH
    r = await client.patch(
        f"{RS}/preventive/{data['id']}",
        json={
            "assignedProfileId": org.manager.profile_id,
            "sendUpdateEmailToCurrentAssignee": True,
        },
        headers=org.admin.headers,
    )
    assert_problem(r, 409)
    async with factory.db.reader() as s:
        count = (
            await s.execute(
                select(func.count())
                .select_from(OutboxEmail)
                .where(OutboxEmail.organization_id == org.id)
            )
        ).scalar_one()
    assert count == 0


# --- the whole table over HTTP: the API and the table cannot disagree --------------------

KIND_OF = {"preventive": Kind.PREVENTIVE, "curative": Kind.CURATIVE, "training": Kind.TRAINING}
EDIT_PATHS = {"preventive": "preventive", "training": "training-exercise"}


async def brought_to(client: httpx.AsyncClient, org: Org, kind: str, status: int) -> dict[str, Any]:
    """A new intervention brought to ``status`` (any of 1–7) through the API; a curative one
    on an anomaly of its own."""
    anomaly_ids = None
    if kind == "curative":
        r = await client.post(
            "/anomalies/v1/rs",
            json={"siteId": org.site_ids[0], "title": f"For status {status}"},
            headers=org.admin.headers,
        )
        assert r.status_code == 201, r.text
        anomaly_ids = [r.json()["data"]["id"]]
    data = await create(
        client, org, kind, {1: 0, 2: 1, 3: 1, 7: 1}.get(status, 2), anomaly_ids=anomaly_ids
    )
    iid, h = data["id"], org.admin.headers
    if status == 3:
        pin = {"interventionId": iid, "codePin": data["codePin"]}
        assert (await client.patch(f"{MB}/check-in", json=pin, headers=h)).status_code == 200
    elif status in (5, 6):
        assert (await verify(client, org, iid, 1 if status == 5 else 2)).status_code == 200
    elif status == 7:
        assert (await client.request("DELETE", f"{RS}/{iid}", headers=h)).status_code == 204
    data = await get(client, org, iid)
    assert data["status"] == status
    return data


def request_of(
    action: Action, kind: str, data: dict[str, Any]
) -> tuple[str, str, dict[str, Any]] | None:
    """The request that performs ``action`` with ``inputs_for``'s inputs; None when no
    endpoint offers it on this kind."""
    iid = data["id"]
    if action == Action.UPDATE:
        if kind not in EDIT_PATHS:
            return None
        return "PATCH", f"{RS}/{EDIT_PATHS[kind]}/{iid}", {"description": "Walked"}
    if action == Action.VALIDATE_TRAINING:
        if kind != "training":
            return None  # not a member of the other bodies (400)
        return "PATCH", f"{RS}/training-exercise/{iid}", {"validateIntervention": True}
    if action == Action.CHECK_IN:
        return "PATCH", f"{MB}/check-in", {"interventionId": iid, "codePin": data["codePin"]}
    if action == Action.EXECUTE:
        body = {"interventionId": iid, "firstName": "A", "lastName": "B", "signature": SIGNATURE}
        return "PATCH", f"{MB}/execute", body | ({"attendeeCount": 3} if kind == "training" else {})
    if action == Action.VERIFY:
        return "PATCH", f"{RS}/{iid}/verify", {"decision": 1, "decisionComment": "Walked"}
    if action == Action.CANCEL:
        return "DELETE", f"{RS}/{iid}", {"cancellationReason": "Walked"}
    if action == Action.SEND_INFORMATION:
        return "POST", f"{RS}/{iid}/emails/informations", {"email": "walk@example.org"}
    return None  # creations start from no status


def flags_of(status: int, kind: Kind) -> dict[str, bool]:
    """The ``actions`` member the table implies for a writer."""

    def can(*actions: Action) -> bool:
        return any(lifecycle.allows(a, status, kind) for a in actions)

    return {
        "canBeUpdated": can(Action.UPDATE),
        "canBeDeleted": can(Action.CANCEL),
        "canBeExecuted": can(Action.CHECK_IN, Action.EXECUTE),
        "canBeVerified": can(Action.VERIFY, Action.VALIDATE_TRAINING),
    }


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("status", list(Status), ids=lambda s: s.name.lower())
async def test_the_api_follows_the_table(
    client: httpx.AsyncClient, factory: Any, kind: str, status: Status
) -> None:
    """Every action from ``status``: through HTTP it succeeds exactly when ``allows`` says so,
    lands on ``apply``'s target, records its action name, moves the anomalies as the table
    says; refused, it is a 409 that changes nothing. The ``actions`` flags agree."""
    org: Org = await factory.org()
    kind_enum = KIND_OF[kind]
    for action in Action:
        data = await brought_to(client, org, kind, status)
        iid = data["id"]
        inputs = inputs_for(action, kind_enum, data["creationStatus"])
        request = request_of(action, kind, data)
        if request is None:
            assert not any(lifecycle.allows(action, s, kind_enum) for s in Status), action
            continue
        for member in (org.admin, org.viewer):
            r = await client.get(f"{RS}/{iid}", headers=member.headers)
            flags = flags_of(status, kind_enum)
            if member is org.viewer:
                flags = dict.fromkeys(flags, False)
            assert r.json()["data"]["actions"] == flags
        anomaly_before = (
            (await anomaly_status(factory, data["anomalyIds"][0])).status
            if kind == "curative"
            else None
        )
        before_history = [h.action for h in await history(factory, iid)]
        method, path, body = request
        r = await client.request(method, path, json=body, headers=org.admin.headers)
        after = await get(client, org, iid)
        anomaly_after = (
            (await anomaly_status(factory, data["anomalyIds"][0])).status
            if kind == "curative"
            else None
        )
        after_history = [h.action for h in await history(factory, iid)]
        where = (action.value, status.name, kind)
        if lifecycle.allows(action, status, kind_enum):
            assert r.status_code in (200, 204), (where, r.text)
            target = lifecycle.apply(action, status, kind_enum, **inputs)
            assert after["status"] == target, where
            assert after_history == [*before_history, action.value], where
            move = lifecycle.anomaly_move(action, kind_enum, **inputs)
            if move is not None and anomaly_before == move[0]:
                assert anomaly_after == move[1], where
            else:
                assert anomaly_after == anomaly_before, where
        else:
            assert_problem(r, 409)
            assert STATUS_NAMES[status] in r.json()["detail"], where
            assert after == data, where
            assert after_history == before_history, where
            assert anomaly_after == anomaly_before, where

"""Domain-named refusals (``AlreadyVerified``, ``WrongPin``…): each is one of the generic
errors, so its status and its problem+json are that error's; only the name and the message
say more."""

from __future__ import annotations

import inspect
import json

import pytest

from interventions import errors
from interventions.errors import AppError

GENERIC = set(errors._BY_STATUS.values())
DOMAIN = sorted(
    (
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, AppError) and cls is not AppError and cls not in GENERIC
    ),
    key=lambda cls: cls.__name__,
)

REFUSED = "An intervention that is cancelled cannot be updated."
# One instance of each, as the services raise them.
SAMPLES: dict[type[AppError], AppError] = {
    errors.LifecycleConflict: errors.LifecycleConflict(REFUSED),
    errors.NotCheckedIn: errors.NotCheckedIn(REFUSED),
    errors.NotExecuted: errors.NotExecuted(REFUSED),
    errors.AlreadyCheckedIn: errors.AlreadyCheckedIn(REFUSED),
    errors.AlreadyExecuted: errors.AlreadyExecuted(REFUSED),
    errors.AlreadyVerified: errors.AlreadyVerified(REFUSED),
    errors.AlreadyCancelled: errors.AlreadyCancelled(REFUSED),
    errors.NotForThisKind: errors.NotForThisKind(REFUSED),
    errors.VerifiedMeanwhile: errors.VerifiedMeanwhile(),
    errors.ChangedMeanwhile: errors.ChangedMeanwhile(),
    errors.AnomalyTaken: errors.AnomalyTaken(),
    errors.NotNullable: errors.NotNullable("ruleId"),
    errors.SignatureMissing: errors.SignatureMissing(),
    errors.SignatureTooLarge: errors.SignatureTooLarge("signature.size", 10),
    errors.EndsBeforeStart: errors.EndsBeforeStart(),
    errors.StartsInTheFuture: errors.StartsInTheFuture(),
    errors.AnomaliesNotOpen: errors.AnomaliesNotOpen([3, 5]),
    errors.NotSiteRules: errors.NotSiteRules([(1, 2), (3, 4)]),
    errors.NotATrainingRule: errors.NotATrainingRule(7),
    errors.RoutineWithoutSiteRules: errors.RoutineWithoutSiteRules(9),
    errors.WrongPin: errors.WrongPin(),
    errors.AttendeesForDrillsOnly: errors.AttendeesForDrillsOnly(),
}


def test_every_domain_error_has_a_sample() -> None:
    assert set(SAMPLES) == set(DOMAIN)


@pytest.mark.parametrize("cls", DOMAIN, ids=lambda cls: cls.__name__)
def test_a_domain_error_renders_as_its_generic_error(cls: type[AppError]) -> None:
    (generic,) = [base for base in cls.__mro__ if base in GENERIC]
    assert (cls.status, cls.slug, cls.title) == (generic.status, generic.slug, generic.title)
    error = SAMPLES[cls]
    response = errors.render(error, "/somewhere")
    assert response.status_code == generic.status
    assert response.media_type == errors.PROBLEM_JSON
    body = json.loads(bytes(response.body))
    assert body["type"] == errors.PROBLEM_BASE + generic.slug
    assert body["title"] == generic.title
    assert body["detail"] == error.detail
    assert body["detail"].endswith(".")


def test_messages_and_fields_are_the_ones_clients_know() -> None:
    """The wording the API gave before these errors had names."""
    assert errors.AnomaliesNotOpen([3, 5]).detail == (
        "Anomalies 3, 5 are already resolved or being repaired."
    )
    assert errors.AnomaliesNotOpen([3, 5]).errors == [
        {"field": "anomalyIds", "message": "Not open: 3, 5."}
    ]
    assert errors.NotNullable("siteIds").errors == [
        {"field": "siteIds", "message": "Cannot be null."}
    ]
    assert errors.NotSiteRules([(1, 2)]).errors == [
        {"field": "ruleIds", "message": "Not a site rule: (site 1, rule 2)."}
    ]
    assert errors.SignatureTooLarge("signature.size", 10).errors == [
        {"field": "signature.size", "message": "At most 10 bytes."}
    ]
    assert errors.WrongPin().errors == [{"field": "codePin", "message": "Wrong PIN code."}]
    assert errors.EndsBeforeStart().errors == [
        {"field": "scheduledEnd", "message": "Must not be before scheduledStart."}
    ]

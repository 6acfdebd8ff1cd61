"""Which routes a path belongs to (``routing.py``): the index the method guard uses gives what
matching every route would, on every path the application declares."""

from __future__ import annotations

import re

from interventions.app import create_app
from interventions.config import Settings
from interventions.routing import RouteIndex, RouteShape, resource_of, route_shapes

_PARAM = re.compile(r"{[^}]*}")


def _everything(shapes: list[RouteShape], path: str) -> list[RouteShape]:
    """The definition: of all the routes that match, those of the most literal rank."""
    matching = [s for s in shapes if s.regex.match(path)]
    if not matching:
        return []
    best = min(s.rank for s in matching)
    return [s for s in matching if s.rank == best]


def _paths(shapes: list[RouteShape]) -> set[str]:
    """Each template with its parameters as numbers and as words (which a literal route of
    the same place may take), shortened and lengthened by a segment, and a few strangers."""
    paths = {"/", "/nothing", "/interventions/v2/rs", "/interventions/v2/rs/1/2/3/4/5"}
    for shape in shapes:
        for value in ("7", "abc", "curative", "lifecycle"):
            path = _PARAM.sub(value, shape.template)
            paths |= {path, path + "/x", path.rsplit("/", 1)[0] or "/"}
    return paths


def test_the_index_finds_the_routes_matching_every_route_would(settings: Settings) -> None:
    shapes = route_shapes(create_app(settings).router.routes)
    index = RouteIndex(shapes)
    paths = _paths(shapes)
    assert len(paths) > 100
    resolved = 0
    for path in sorted(paths):
        expected = _everything(shapes, path)
        assert resource_of(index.candidates(path), path) == expected, path
        resolved += bool(expected)
    assert resolved > 50  # the comparison is not between two empty answers


def test_a_literal_route_is_the_resource_of_its_path_not_the_parameter_one(
    settings: Settings,
) -> None:
    shapes = route_shapes(create_app(settings).router.routes)
    index = RouteIndex(shapes)
    path = "/interventions/v2/rs/curative"
    templates = {s.template for s in resource_of(index.candidates(path), path)}
    assert templates == {"/interventions/v2/rs/curative"}
    path = "/interventions/v2/rs/12"
    templates = {s.template for s in resource_of(index.candidates(path), path)}
    assert templates == {"/interventions/v2/rs/{interventionId}"}

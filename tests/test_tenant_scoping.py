"""Tenant scoping in one place (issue 10, item 3): every statement the service runs through the
executor (``db.Sql``) that reads or writes a tenant table — one with an ``organization_id``
column — names the organisation for that table: in its WHERE clause or its joins' ON
clauses (reads, updates, deletes), or among the columns it inserts. A statement that cannot,
the authentication's session look-up (what finds the organisation), says why."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Delete, Insert, Select, Table, Update
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, ColumnClause
from sqlalchemy.sql.selectable import Join

import interventions
from interventions.db import Sql


def _all_statements() -> list[Sql]:
    for module in pkgutil.walk_packages(interventions.__path__, "interventions."):
        if ".migrations" not in module.name:
            importlib.import_module(module.name)
    return [sql for sql in Sql.registry if sql.module.startswith("interventions.")]


def _tables_of(from_: Any) -> Iterator[tuple[Table, list[Any]]]:
    """The tables of a FROM element, each with the ON clauses of the joins above it."""
    if isinstance(from_, Table):
        yield from_, []
    elif isinstance(from_, Join):
        for table, ons in _tables_of(from_.left):
            yield table, [*ons, from_.onclause]
        for table, ons in _tables_of(from_.right):
            yield table, [*ons, from_.onclause]


_SCOPING_OPERATORS = {operators.eq, operators.in_op}


def _scoped_tables(*criteria: Any) -> set[Table]:
    """The tables whose ``organization_id`` a criterion compares with something."""
    found: set[Table] = set()
    for criterion in criteria:
        if criterion is None:
            continue
        for element in visitors.iterate(criterion):
            if isinstance(element, BinaryExpression) and element.operator in _SCOPING_OPERATORS:
                # A table is scoped by comparing its organization_id with a parameter (the
                # caller's organisation), not with another table's column.
                for side, other in ((element.left, element.right), (element.right, element.left)):
                    if (
                        isinstance(side, ColumnClause)
                        and side.name == "organization_id"
                        and isinstance(side.table, Table)
                        and isinstance(other, BindParameter)
                    ):
                        found.add(side.table)
    return found


def _is_parameter(element: Any) -> bool:
    """A bound parameter, maybe under a label (``SELECT $1 AS anon_1``)."""
    inner = getattr(element, "element", element)
    return isinstance(inner, BindParameter)


def _tenant(table: Table) -> bool:
    return "organization_id" in table.c


def unscoped_tables(statement: Any) -> list[str]:
    """The tenant tables a statement touches without naming the organisation for them."""
    missing: list[str] = []
    # A subquery correlated with an enclosing SELECT (``EXISTS (… WHERE link.intervention_id
    # = interventions.id)``) lists the enclosing table among its FROMs; that table is scoped
    # where it is selected from, so a subquery is not asked to name it again.
    enclosing: set[Table] = set()
    for element in [statement, *visitors.iterate(statement)]:
        if isinstance(element, Select):
            criteria = [element.whereclause]
            tables: list[tuple[Table, list[Any]]] = []
            for from_ in element.get_final_froms():
                tables.extend(_tables_of(from_))
            for table, ons in tables:
                scoped = _scoped_tables(*criteria, *ons)
                if element is not statement and table in enclosing:
                    continue
                if _tenant(table) and table not in scoped:
                    missing.append(f"SELECT … FROM {table.name}")
                elif element is statement:
                    enclosing.add(table)
        elif isinstance(element, (Update, Delete)):
            table = element.table
            if (
                isinstance(table, Table)
                and _tenant(table)
                and table not in _scoped_tables(element.whereclause)
            ):
                missing.append(f"{type(element).__name__.upper()} {table.name}")
        elif isinstance(element, Insert):
            table = element.table
            if isinstance(table, Table) and _tenant(table):
                if element.select is not None:  # INSERT … SELECT: the organisation a parameter
                    names = [str(n) for n in element._select_names or ()]
                    columns = list(element.select.selected_columns)
                    given = dict(zip(names, columns, strict=False)).get("organization_id")
                    if given is None or not _is_parameter(given):
                        missing.append(f"INSERT {table.name}")
                    continue
                named = {c.key if hasattr(c, "key") else str(c) for c in element._values or {}}
                if element._multi_values or "organization_id" not in named:
                    missing.append(f"INSERT {table.name}")
    return sorted(set(missing))


STATEMENTS = _all_statements()


def test_the_executors_statements_are_found() -> None:
    assert len(STATEMENTS) >= 4  # the caller's session look-up and the detailed read at least


@pytest.mark.parametrize("sql", STATEMENTS, ids=lambda s: str(s.statement)[:60])
def test_every_statement_names_the_organisation(sql: Sql) -> None:
    missing = unscoped_tables(sql.statement)
    if sql.unscoped is not None:
        assert missing, f"marked unscoped ({sql.unscoped}) but scoped: drop the mark"
        return
    assert missing == [], f"tenant tables without the organisation predicate: {missing}"


def test_the_check_catches_a_missing_predicate() -> None:
    """The check itself: a statement joining a link table by intervention id only fails."""
    from sqlalchemy import bindparam, select

    from interventions.interventions.models import InterventionSite
    from interventions.references.models import Site

    unscoped = (
        select(Site.id)
        .join(InterventionSite, InterventionSite.site_id == Site.id)
        .where(InterventionSite.intervention_id == bindparam("id"))
    )
    assert unscoped_tables(unscoped) == [
        "SELECT … FROM intervention_sites",
        "SELECT … FROM sites",
    ]
    scoped = unscoped.where(
        Site.organization_id == bindparam("organization_id"),
        InterventionSite.organization_id == bindparam("organization_id"),
    )
    assert unscoped_tables(scoped) == []


def _shaped_statements() -> list[Sql]:
    """The statements built per shape of a list's filters, on first use (``functools.cache``
    builders): every shape of the profile and invitation lists, and each filter of the
    intervention list alone, all of them together and none."""
    import itertools

    from interventions.interventions import search
    from interventions.organizations import repository as organizations

    built: list[Any] = []
    for shape in itertools.product((False, True), repeat=3):
        listing = organizations._profiles(*shape)
        built += [listing.rows, listing.count]
    for status in (None, "pending", "accepted", "revoked", "expired"):
        listing = organizations._invitations(status)
        built += [listing.rows, listing.count]
    names = [*search._LIST_FILTERS, *search._LINK_FILTERS, *search._RANGES, "q", *search._FLAGS]
    for given in [frozenset(), frozenset(names), *(frozenset({n}) for n in names)]:
        for sort in ((search.SortKey.SCHEDULED_START_DESC,), (search.SortKey.ID,)):
            built += list(search._list_statements(given, sort))
    return built


SHAPED = _shaped_statements()


@pytest.mark.parametrize("sql", SHAPED, ids=lambda s: str(s.statement)[:60])
def test_every_shape_of_a_list_names_the_organisation(sql: Sql) -> None:
    assert sql.unscoped is None
    assert unscoped_tables(sql.statement) == []

"""The test suite. It mirrors ``src/interventions/``: the tests of ``auth/`` are in ``auth/``,
those of a top-level module (``db.py``, ``cli.py``…) at the top. Shared helpers live in
``helpers.py``, data in ``factories.py``; no test file imports from another."""

import pytest

# The helpers assert as the test files do: pytest rewrites their assertions too, so that a
# failure shows the values compared. Registered here, before conftest.py imports the module.
pytest.register_assert_rewrite("tests.helpers")

"""The page-test fixtures (fabricated runs, stand-in workers) for reliability tests too."""

from tests.app.conftest import fake_worker, run_factory  # noqa: F401 - registers the fixtures

"""Reliability tests use the sync tests' organisation and connection helpers."""
from tests.wizard.conftest import fast_password_hashing, organisation  # noqa: F401 - fixtures

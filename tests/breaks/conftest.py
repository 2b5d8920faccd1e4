"""The break matrix stands on the validation tests' simulated companies."""
from tests.validation.conftest import fast_password_hashing, simulator  # noqa: F401 - fixtures

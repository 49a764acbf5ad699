from tests.services.conftest import members  # noqa: F401 - the in-process members service fixture

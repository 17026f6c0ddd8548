"""Where the test data lives: everything is inside the repository (a user's clone has nothing beside it)."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
REPO = TESTS.parent
FIXTURES = TESTS / "fixtures"
#: Schemas made by the OpenStack projects' own migrations (see fixtures/README.md).
SCHEMAS = FIXTURES / "schemas"
NOVA_API_SAMPLES = FIXTURES / "nova-api-samples"
KEYSTONE_API_SAMPLES = FIXTURES / "keystone-api-samples"
READER_FIXTURES = FIXTURES / "reader"
MACHINE_FIXTURES = FIXTURES / "machines"

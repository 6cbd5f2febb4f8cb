"""One emulator (with the test app of tests/emulator/app) shared by the emulator tests,
so execution environments stay warm across them; tests that need other settings start
their own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulator import Emulator, run_in_thread
from tests.emulator.support import app_config, management_client


@pytest.fixture(scope="session")
def record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("emulator-records")


@pytest.fixture(scope="session")
def emulator(record_dir: Path) -> Iterator[Emulator]:
    with run_in_thread(app_config(record_dir, max_environments=4)) as emu:
        yield emu


@pytest.fixture(scope="session")
def management(emulator: Emulator) -> Any:
    return management_client(emulator.management_url)

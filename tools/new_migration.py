"""Developer tool: autogenerate a migration from core.models against a scratch SQLite file.

python tools/new_migration.py "add something"
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path

from alembic import command

from core.db import make_engine
from core.schema import alembic_config, upgrade


async def main(message: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(str(Path(tmp) / "scratch.sqlite3"))
        await upgrade(engine)
        async with engine.begin() as conn:
            await conn.run_sync(
                lambda sync: command.revision(
                    alembic_config(sync), message=message, autogenerate=True
                )
            )
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "change"))

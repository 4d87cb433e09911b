"""A running server keeps the templates of its own version: an upgrade that replaces the files
under it must not pair its code with the next version's templates (a tester's correction post
got a 500 when a new template asked for a variable the running code did not pass)."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer
from jinja2 import TemplateNotFound

from bot.config import load_settings
from bot.server import make_app
from core import render


async def test_serve_compiles_every_template_before_it_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = render.environment()
    names = env.list_templates()
    assert env.cache is not None
    env.cache.clear()  # as in a fresh process: nothing rendered yet
    settings = load_settings(database_url=str(tmp_path / "lj.sqlite3"), link_secret="s" * 40)
    client = TestClient(TestServer(await make_app(settings), host="127.0.0.1"))
    await client.start_server()

    def replaced(*args: object) -> None:
        raise TemplateNotFound("the files under the running server were replaced")

    try:
        monkeypatch.setattr(env.loader, "get_source", replaced)
        for name in names:
            assert env.get_template(name).name == name  # still this version's, compiled
        resp = await client.get("/public/")
        assert resp.status == 200 and "双随机" in await resp.text()
    finally:
        monkeypatch.undo()
        await client.close()

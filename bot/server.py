"""`lianjian serve`: settings → migrated database → adapters → aiohttp app on host:port."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import signal
import socket
from collections.abc import AsyncIterator, Iterator
from functools import partial
from pathlib import Path

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.app import create_app
from bot.config import Settings, link_secret, link_secret_differs
from bot.platforms.base import PlatformAdapter
from bot.platforms.dingtalk import SignLedger
from bot.platforms.longconn import LongConnection
from bot.platforms.tokens import TokenStore
from bot.replays import SignatureLedger
from bot.services import SERVICES, Services
from bot.token_store import SharedTokens
from core import render
from core.clock import Clock, SystemClock
from core.db import check_connection, make_engine, make_sessionmaker
from core.demo_clock import DemoClock
from core.errors import ValidationFailed, os_reason
from core.messages import Platform
from core.schema import upgrade
from core.workdays import ALLOW_EMPTY, HolidayFile, NoHolidays, parse_holiday_file

log = logging.getLogger(__name__)


def build_adapters(
    settings: Settings,
    clock: Clock,
    ledger: SignLedger | None = None,
    tokens: TokenStore | None = None,
) -> dict[Platform, PlatformAdapter]:
    """`ledger` remembers used DingTalk signatures (bot.replays.SignatureLedger); `tokens`
    shares access tokens between processes (bot.token_store.SharedTokens)."""
    adapters: dict[Platform, PlatformAdapter] = {}
    if settings.wecom is not None:
        from bot.platforms.wecom import WeComAdapter

        adapters[Platform.WECOM] = WeComAdapter(settings.wecom, clock, tokens)
    if settings.dingtalk is not None:
        from bot.platforms.dingtalk import DingTalkAdapter

        adapters[Platform.DINGTALK] = DingTalkAdapter(
            settings.dingtalk, clock, ledger, tokens, public_base_url=settings.base_url
        )
    if settings.wecom_aibot is not None:
        from bot.platforms.wecom_aibot import WeComAiBotAdapter

        # answers the AI bot cannot deliver itself go through the self-built app, if any
        adapters[Platform.WECOM_AIBOT] = WeComAiBotAdapter(
            settings.wecom_aibot, clock, app=adapters.get(Platform.WECOM)
        )
    return adapters


def build_connections(
    adapters: dict[Platform, PlatformAdapter], clock: Clock
) -> list[LongConnection]:
    """The outbound connections the configured modes need (none in HTTP callback mode)."""
    from bot.platforms.dingtalk import DingTalkAdapter

    connections: list[LongConnection] = []
    dingtalk = adapters.get(Platform.DINGTALK)
    if isinstance(dingtalk, DingTalkAdapter) and dingtalk.settings.mode == "stream":
        from bot.platforms.dingtalk.stream import DingTalkStream

        connections.append(DingTalkStream(dingtalk, clock))
    from bot.platforms.wecom_aibot import WeComAiBotAdapter

    aibot = adapters.get(Platform.WECOM_AIBOT)
    if isinstance(aibot, WeComAiBotAdapter) and aibot.ws is not None:
        connections.append(aibot.ws)
    return connections


async def build_services(settings: Settings, clock: Clock | None = None) -> Services:
    """Migrate the database (idempotent) and assemble what routes and workers share."""
    clock = clock or SystemClock()
    secret = link_secret(settings)  # on PostgreSQL a configured one: refused before migrating
    engine = make_engine(settings.database_url)
    try:
        return await _assemble(settings, engine, clock, secret)
    except BaseException:  # refused (a newer database…): the process goes on, in tests
        await engine.dispose()
        raise


async def _assemble(
    settings: Settings, engine: AsyncEngine, clock: Clock, secret: bytes
) -> Services:
    await check_connection(engine)
    await upgrade(engine)
    sessionmaker = make_sessionmaker(engine)
    await _run_upgrade_steps(settings, sessionmaker, clock)
    await _confirm_link_key(settings, sessionmaker, clock, secret)
    services = Services(
        settings=settings,
        sessionmaker=sessionmaker,
        clock=clock,
        rules=settings.rules,
        link_secret=secret,
        public_base_url=settings.base_url,
        engine=engine,
    )
    # the adapters need the services' database for the replay ledger and the shared access
    # tokens: added afterwards
    services.adapters.update(
        build_adapters(settings, clock, SignatureLedger(services), SharedTokens(services))
    )
    services.connections += build_connections(services.adapters, clock)
    if settings.holidays_file:
        await _load_holidays(services)
    return services


async def _run_upgrade_steps(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """What the upgrade left to do, with the county's rules (core.deadlines.run_upgrade_steps)."""
    from core.changes import Ctx
    from core.deadlines import run_upgrade_steps

    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, rules=settings.rules, actor_label="system:upgrade")
        await run_upgrade_steps(ctx)
        await session.commit()


async def _confirm_link_key(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], clock: Clock, key: bytes
) -> None:
    """Refuse a key other than the one the database's links are signed with."""
    from core.changes import Ctx
    from core.link_key import link_key_matches

    async with sessionmaker() as session:
        ctx = Ctx(session=session, clock=clock, actor_label="system:config")
        if not await link_key_matches(ctx, key):
            raise ValidationFailed(link_secret_differs(settings))
        await session.commit()


def configured_holidays(settings: Settings) -> HolidayFile:
    """The holiday file `holidays_file` names; a refusal names the key."""
    try:
        return parse_holiday_file(Path(settings.holidays_file))
    except NoHolidays as err:  # serve takes no --allow-empty: load it once from the CLI
        raise ValidationFailed(
            f"holidays_file：{err.problem}；确实要载入没有放假日期的年度，请运行"
            f"“lianjian holidays load {settings.holidays_file} {ALLOW_EMPTY}”，"
            "并删去配置中的 holidays_file（否则每次启动都会拒绝）"
        ) from None
    except ValidationFailed as err:
        raise ValidationFailed(f"holidays_file：{err.message}") from None


class PortInUse(ValidationFailed):
    """The port is taken: `serve` refuses to start, yet `setup check` run beside the live
    server finds it so by design."""


def serve_refusals(settings: Settings) -> tuple[list[str], list[str]]:
    """What `serve` refuses before it starts, for `setup check`: the listening address and
    the holiday file. (problems, notes): a port in use is a note, since the server that
    holds it may be this county's own `serve`."""

    def bind() -> None:
        with listening_sockets(settings.host, settings.port):
            pass

    checks = [bind] + ([partial(configured_holidays, settings)] if settings.holidays_file else [])
    problems, notes = [], []
    for check in checks:
        try:
            check()
        except PortInUse as err:
            notes.append(f"{err.message}；若占用它的正是运行中的 lianjian serve，可忽略此条")
        except ValidationFailed as err:
            problems.append(err.message)
    return problems, notes


async def _load_holidays(services: Services) -> None:
    """Load the configured holiday file unless that year is already in the database (loading
    recomputes provisional deadlines and is audited: once, not at every start)."""
    from core.changes import Ctx
    from core.holidays import has_holiday_year, load_holiday_year

    holiday_file = configured_holidays(services.settings)
    async with services.sessionmaker() as session:
        ctx = Ctx(
            session=session, clock=services.clock, rules=services.rules, actor_label="system:config"
        )
        if await has_holiday_year(ctx, holiday_file.year):
            return
        await load_holiday_year(ctx, holiday_file)
        await session.commit()
    log.info(
        "loaded holiday arrangement for %s from %s",
        holiday_file.year,
        services.settings.holidays_file,
    )


DEMO_SEED, DEMO_TARGETS = 2026, 2000


async def load_demo_county(services: Services) -> bool:
    """`serve --demo`: fill an empty database with the synthetic county of `lianjian demo`
    (its files written to a temporary folder and imported with the real importers), so a
    newcomer can run a task in the simulator. A database that already has officers is left
    alone. Returns whether data was loaded."""
    import tempfile
    from pathlib import Path

    from core.officers import any_officers
    from core.synthetic import generate_county

    async with services.sessionmaker() as session:
        if await any_officers(services.core_ctx(session)):
            log.info("--demo: the database already has officers; nothing loaded")
            return False
        with tempfile.TemporaryDirectory(prefix="lianjian-demo-") as folder:
            facts = await generate_county(
                services.core_ctx(session),
                Path(folder),
                seed=DEMO_SEED,
                targets=DEMO_TARGETS,
                year=services.clock.today().year,
            )
        await session.commit()
    log.info(
        "--demo: loaded a synthetic county: %s departments, %s officers, %s targets",
        facts.departments,
        facts.officers,
        facts.targets,
    )
    return True


async def start_demo(services: Services, clock: DemoClock) -> None:
    """`serve --demo`: the demo clock where it was left, and on a fresh database the
    synthetic county with one task waiting for its participants' answers."""
    from core.demo_clock import restore_offset
    from core.demo_guide import start_demo_task

    async with services.sessionmaker() as session:
        await restore_offset(services.core_ctx(session), clock)
    if not await load_demo_county(services):
        return
    async with services.sessionmaker() as session:
        task = await start_demo_task(services.core_ctx(session))
        await session.commit()
    if task is not None:
        log.info("--demo: task %s is waiting for the participants' answers", task.code)


async def make_app(settings: Settings, *, demo: bool = False) -> web.Application:
    clock = DemoClock(SystemClock()) if demo else None
    services = await build_services(settings, clock=clock)
    if clock is not None:
        await start_demo(services, clock)
    app = create_app(services)
    app.cleanup_ctx.insert(0, _dispose_engine)
    log.debug("settings: %s", settings.redacted())
    app.on_startup.append(freeze_startup_objects)
    return app


async def freeze_startup_objects(app: web.Application) -> None:
    """Move everything built so far (models, templates, the dispatcher's tables) out of the
    garbage collector's sight: a full collection then walks only what the running server
    made, instead of pausing every socket and callback for 100–300 ms (measured with
    bench/stream.py: three gen-2 collections of up to 345 ms in one run). Every template is
    compiled first (render.load_all_templates), so the process keeps its own version's."""
    render.load_all_templates()
    gc.collect()
    gc.freeze()


async def _dispose_engine(app: web.Application) -> AsyncIterator[None]:
    yield  # first in, last out: the workers are stopped before the pool closes
    engine = app[SERVICES].engine
    if engine is not None:
        await engine.dispose()


def run(settings: Settings, *, demo: bool = False) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(serve(settings, demo=demo))


async def serve(settings: Settings, *, demo: bool = False) -> None:
    """Start, serve until SIGTERM or SIGINT, then stop in order: no new requests, the callbacks
    in flight answered, the long connections, scheduler, inbox worker and sender stopped (each
    finishing or handing back what it holds), the platform clients closed, the database pool
    disposed last (bot.app's cleanup order).

    Not aiohttp's run_app: it turns a signal into an exception thrown into whatever runs at
    that moment, and a second signal during the clean-up (an impatient operator, a supervisor
    signalling the process group) cancelled the clean-up itself, the pool mid-close among it:
    a CancelledError traceback logged as an ERROR and exit status 1. Here a signal only sets
    an event; later ones are logged and the shutdown under way goes on. A signal during start-up
    (migrations, --demo loading) lets the start-up's transaction finish, then stops."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stopped = False

    def on_signal(signum: int) -> None:
        if stopped:
            # read by the loop before the handlers were removed, handled after: the exit is
            # under way and "stopped" was said, nothing to add
            return
        if stop.is_set():
            log.warning("%s again: already stopping", signal.Signals(signum).name)
            return
        log.info("%s: stopping", signal.Signals(signum).name)
        stop.set()

    with listening_sockets(settings.host, settings.port) as sockets:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        app = await make_app(settings, demo=demo)
        # no access log: callback query strings carry signatures and nonces, and the callback
        # route logs every rejection itself
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()  # the workers start here (cleanup_ctx)
        try:
            if not stop.is_set():
                for sock in sockets:
                    await web.SockSite(runner, sock).start()
                _log_serving(app)
                await stop.wait()
        finally:
            await runner.cleanup()
            for signum in (signal.SIGTERM, signal.SIGINT):
                # a late signal meets an exit under way: ignored, not the default death by signal
                loop.remove_signal_handler(signum)
                signal.signal(signum, signal.SIG_IGN)
            stopped = True
            log.info("stopped")


@contextlib.contextmanager
def listening_sockets(host: str, port: int) -> Iterator[list[socket.socket]]:
    """The listening address, bound before anything starts (as asyncio binds it: one socket per
    address the host resolves to). A port in use or a host that is not this machine's was found
    only after the migrations, with the workers started and "serving on" logged."""
    try:
        found = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror:
        raise ValidationFailed(
            f"host“{host}”不是可以监听的地址：请改正 host（或 --host），"
            "如 127.0.0.1（只许本机访问）或 0.0.0.0（所有网卡）"
        ) from None
    with contextlib.ExitStack() as held:
        sockets = []
        for family, kind, proto, _, address in dict.fromkeys(found):
            sock = held.enter_context(socket.socket(family, kind, proto))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # the IPv4 address has its own socket
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            try:
                sock.bind(address)
            except OSError as err:
                refused = PortInUse if err.errno == errno.EADDRINUSE else ValidationFailed
                raise refused(_bind_refused(host, port, err)) from None
            sockets.append(sock)
        yield sockets


def _bind_refused(host: str, port: int, err: OSError) -> str:
    if err.errno == errno.EADDRINUSE:
        return (
            f"端口 {port} 已被占用（可能已有一个 lianjian serve 在运行）：请换一个端口"
            "（port 或 --port），或先停止占用它的程序"
        )
    if err.errno == errno.EADDRNOTAVAIL:
        return f"{host} 不是本机的地址：请改正 host（或 --host），如 127.0.0.1 或 0.0.0.0"
    if err.errno == errno.EACCES:
        return (
            f"没有权限监听端口 {port}（1024 以下的端口需要管理员权限）："
            "请换一个 1024 以上的端口（port 或 --port）"
        )
    return f"无法监听 {host}:{port}：{os_reason(err)}（见 host、port 或 --host、--port）"


def _log_serving(app: web.Application) -> None:
    services = app[SERVICES]
    log.info(
        "lianjian serving on %s — database: %s; platforms: %s; simulator: %s",
        services.public_base_url,
        services.settings.database_shown(),
        ", ".join(services.adapters) or "none (simulator only)",
        "on" if services.settings.simulator.enabled else "off",
    )

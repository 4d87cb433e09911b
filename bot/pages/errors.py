"""aiohttp's own refusals in Chinese: its default bodies are English ("413: Request Entity
Too Large", "Maximum request body size … exceeded", "405: Method Not Allowed"), and a person
meets them in a browser on every page, /public/ and the simulator. One middleware turns each
into the pages' error page (the simulator's API: its JSON error), saying what to do next;
platform callbacks keep their plain status codes (a platform shows no body to anyone). A
handler's unexpected exception is logged and answered with the same page (500), not aiohttp's
English "500 Internal Server Error". Only the words of a refusal we raise ourselves
(bot/pages/base.py OwnWords) are shown; any other's text may carry what the request sent."""

from __future__ import annotations

import json
import logging
from collections.abc import Collection

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from bot.pages import NO_SUCH_PAGE
from bot.pages.base import PAGE_HEADERS, OwnWords
from bot.pages.invitation import INVITATION_PATH, MAX_REASON_CHARS
from bot.pages.result import CORRECTION_PATH
from core.render import render
from handlers.forms import MAX_TEXT
from handlers.review_page import REVIEW_PATH

LOST = (
    "本次提交的内容过大、未被读取，所以填写的文字未能保存，也无法在此显示：请返回上一页"
    "（多数浏览器返回后仍保留已填的文字），删减后重新提交"
)
TOO_LARGE = "提交的内容过大：照片请压缩后逐张上传，或减少附件。" + LOST
TOO_LONG = "提交的内容过大：填写的内容过长。" + LOST + "（{limit}）。"
# a page without uploads: which text to cut, not photos to compress
TOO_LONG_ON = {
    INVITATION_PATH: TOO_LONG.format(limit=f"理由不超过 {MAX_REASON_CHARS} 字"),
    REVIEW_PATH: TOO_LONG.format(limit=f"理由不超过 {MAX_TEXT} 字"),
    CORRECTION_PATH: TOO_LONG.format(limit=f"每项不超过 {MAX_TEXT} 字"),
}
SAID = {
    400: "请求无效：请回到页面重新操作。",
    403: "无权访问：请从聊天中机器人发来的链接重新打开。",
    404: NO_SUCH_PAGE,
    411: (
        "提交缺少长度信息，无法读取：请返回上一页重新提交；仍不行时，"
        "请换用企业微信、钉钉或手机自带的浏览器打开聊天中的链接。"
    ),
    413: TOO_LARGE + "。",
    415: "提交的格式不对：请在页面上的表单中填写后提交。",
}
# 405 in words for who meets it: an officer on a page the chat's link opened, the simulator's
# user, a program calling its API, or a public visitor, who never got a link
NOT_THIS_METHOD = (
    ("/h5/", "此地址不接受这种访问方式：请从聊天中的链接或页面上的按钮操作。"),
    ("/sim/api/", "此接口只接受 {allowed} 请求（JSON 接口）：请在模拟器页面上操作。"),
    ("/sim", "此地址不接受这种访问方式：请在模拟器页面上操作。"),
    ("/", "公示页面只供浏览，不接受提交：请从抽查公示首页打开要看的页面。"),
)
OTHER = "请求无法处理（错误 {status}）：请稍后重试，仍不行请联系管理员。"
FAILED = "服务器处理时出错，本次操作没有完成，错误已记入服务日志：请稍后重试；仍不行请联系管理员。"
log = logging.getLogger(__name__)
KEPT_HEADERS = (hdrs.ALLOW, hdrs.RETRY_AFTER, hdrs.LOCATION)


def said(request: web.Request, err: web.HTTPException) -> str:
    """The words of a refusal we raised (OwnWords), else the Chinese words for its status:
    any other refusal's text is aiohttp's English or may carry what the request sent."""
    if isinstance(err, OwnWords) and err.text:
        return err.text.strip()
    if err.status == 413 and request.path in TOO_LONG_ON:
        return TOO_LONG_ON[request.path]
    if err.status == 405:
        allowed = [m for m in err.headers.get(hdrs.ALLOW, "").split(",") if m not in ("", "HEAD")]
        words = next(w for prefix, w in NOT_THIS_METHOD if request.path.startswith(prefix))
        return words.format(allowed="、".join(allowed))
    return SAID.get(err.status, OTHER.format(status=err.status))


class Failed(OwnWords, web.HTTPInternalServerError):
    def __init__(self) -> None:
        super().__init__(text=FAILED)


def chinese_errors(platform_paths: Collection[str]) -> Middleware:
    """The middleware; `platform_paths`: the callback routes, left as they answer."""
    platform = frozenset(platform_paths)

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPException as err:
            if err.status < 400 or request.path in platform:
                raise
            return error_response(request, err)
        except Exception:
            # a defect of ours: logged with its traceback for the maintainers; the person gets
            # the error page, never aiohttp's English 500. A platform's callback still fails
            # with a bare 500, so the platform sends it again.
            if request.path in platform:
                raise
            log.exception("%s %s failed", request.method, request.path)
            return error_response(request, Failed())

    return middleware


def error_response(request: web.Request, err: web.HTTPException) -> web.Response:
    headers: dict[str, str] = {
        str(k): v for k in KEPT_HEADERS if (v := err.headers.get(k)) is not None
    }
    message = said(request, err)
    if request.path.startswith("/sim/api/"):
        return web.json_response(
            {"error": message},
            status=err.status,
            dumps=lambda d: json.dumps(d, ensure_ascii=False),
            headers={"Cache-Control": "no-store", **headers},
        )
    html = render(
        "web/error.html",
        message=message,
        public=not request.path.startswith(("/h5/", "/sim")),
        simulator=request.path.startswith("/sim"),
    )
    return web.Response(
        text=html,
        status=err.status,
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, **headers},
    )

"""aiohttp's own refusals in Chinese: its default bodies are English ("413: Request Entity
Too Large", "Maximum request body size … exceeded", "405: Method Not Allowed"), and a person
meets them in a browser on every page, /public/ and the simulator. One middleware turns each
into the pages' error page (the simulator's API: its JSON error), saying what to do next;
platform callbacks keep their plain status codes (a platform shows no body to anyone). A
handler's unexpected exception is logged and answered with the same page (500), not aiohttp's
English "500 Internal Server Error"."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Collection

from aiohttp import hdrs, web
from aiohttp.typedefs import Handler, Middleware

from bot.pages import NO_SUCH_PAGE
from bot.pages.base import PAGE_HEADERS
from core.render import render

TOO_LARGE = (
    "提交的内容过大：照片请压缩后逐张上传，或减少附件。本次提交的内容过大、未被读取，"
    "所以填写的文字未能保存，也无法在此显示：请返回上一页（多数浏览器返回后仍保留已填的文字），"
    "删减后重新提交"
)
SAID = {
    400: "请求无效：请回到页面重新操作。",
    403: "无权访问：请从聊天中机器人发来的链接重新打开。",
    404: NO_SUCH_PAGE,
    405: "此地址不接受这种访问方式：请从聊天中的链接或页面上的按钮操作。",
    411: (
        "提交缺少长度信息，无法读取：请返回上一页重新提交；仍不行时，"
        "请换用企业微信、钉钉或手机自带的浏览器打开聊天中的链接。"
    ),
    413: TOO_LARGE + "。",
    415: "提交的格式不对：请在页面上的表单中填写后提交。",
}
OTHER = "请求无法处理（错误 {status}）：请稍后重试，仍不行请联系管理员。"
FAILED = "服务器处理时出错，本次操作没有完成，错误已记入服务日志：请稍后重试；仍不行请联系管理员。"
log = logging.getLogger(__name__)
CHINESE = re.compile(r"[\u4e00-\u9fff]")
KEPT_HEADERS = (hdrs.ALLOW, hdrs.RETRY_AFTER, hdrs.LOCATION)


def said(err: web.HTTPException) -> str:
    """Our own (Chinese) text of the refusal, else the Chinese words for its status."""
    text = err.text or ""
    if CHINESE.search(text):
        return text.strip()
    return SAID.get(err.status, OTHER.format(status=err.status))


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
            return error_response(request, web.HTTPInternalServerError(text=FAILED))

    return middleware


def error_response(request: web.Request, err: web.HTTPException) -> web.Response:
    headers: dict[str, str] = {
        str(k): v for k in KEPT_HEADERS if (v := err.headers.get(k)) is not None
    }
    message = said(err)
    if request.path.startswith("/sim/api/"):
        return web.json_response(
            {"error": message},
            status=err.status,
            dumps=lambda d: json.dumps(d, ensure_ascii=False),
            headers={"Cache-Control": "no-store", **headers},
        )
    html = render(
        "web/error.html", message=message, public=not request.path.startswith(("/h5/", "/sim"))
    )
    return web.Response(
        text=html,
        status=err.status,
        content_type="text/html",
        charset="utf-8",
        headers={**PAGE_HEADERS, **headers},
    )

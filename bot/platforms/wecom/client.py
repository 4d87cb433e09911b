"""WeCom sending: the app API (messages, card updates, media upload, access token)
and the group robot webhook."""

from __future__ import annotations

from typing import Any

import aiohttp

from bot.platforms.base import (
    CARD_NOT_UPDATABLE,
    Channel,
    PlatformCallFailed,
    SendResult,
    deliver,
    updates_sent_card,
)
from bot.platforms.wecom.bodies import (
    app_body,
    webhook_body,
    wecom_result,
)
from bot.platforms.wecom.media import (
    picture_problem,
)
from bot.platforms.wecom.protocol import (
    MEDIA_MIN_BYTES,
    ROBOT_IMAGE_MAX_BYTES,
    TOKEN_FAILURE_RETRY_S,
    TOKEN_REJECTED,
    WeComBase,
)
from core.messages import Image, OutMessage


class WeComClient(WeComBase):
    async def send(
        self, channel: Channel, msg: OutMessage, mention_user_ids: list[str] | None = None
    ) -> SendResult:
        if channel.kind == "user":
            return await deliver(channel, self._send_app(channel.address, msg))
        if channel.kind == "group_webhook":
            return await deliver(
                channel, self._send_webhook(channel.address, msg, mention_user_ids or [])
            )
        return SendResult(False, code="unsupported_channel", detail=f"WeCom has no {channel.kind}")

    async def _send_app(self, userid: str, msg: OutMessage) -> SendResult:
        if msg.kind == "card_update":
            return await self._update_card(userid, msg)
        if msg.kind == "image":
            if (problem := picture_problem(msg.image, MEDIA_MIN_BYTES)) is not None:
                return problem
            assert msg.image is not None
            body = {"msgtype": "image", "image": {"media_id": await self._media_id(msg.image)}}
        else:
            body = app_body(msg)
        payload = {"touser": userid, "agentid": self.settings.agent_id, **body}
        if self.settings.duplicate_check_s:
            payload |= {
                "enable_duplicate_check": 1,
                "duplicate_check_interval": self.settings.duplicate_check_s,
            }
        try:
            data = await self._app_call("/cgi-bin/message/send", payload)
        except PlatformCallFailed as exc:
            if exc.result.code != "network" or not self.settings.duplicate_check_s:
                raise
            # WeCom may have taken the message before the connection failed (a timeout, a
            # reset): send it again at once, well inside the duplicate check's interval, so
            # WeCom drops a second copy; the sender's later retry might come after it
            data = await self._app_call("/cgi-bin/message/send", payload)
        result = wecom_result(data)
        if result.ok and data.get("response_code"):
            return SendResult(True, response_code=str(data["response_code"]))
        return result

    async def _update_card(self, userid: str, msg: OutMessage) -> SendResult:
        """Grey the clicked card's buttons and show who answered (update_template_card API)."""
        if updates_sent_card(msg):  # update_template_card takes the response_code of a click
            return CARD_NOT_UPDATABLE
        replace_name = (msg.card.answered if msg.card else "") or msg.body
        if not (msg.card_ref and replace_name):
            return SendResult(
                False, code="invalid_message", detail="card_update needs card_ref and text"
            )
        payload = {
            "userids": [userid],
            "agentid": self.settings.agent_id,
            "response_code": msg.card_ref,
            "button": {"replace_name": replace_name},
        }
        return wecom_result(await self._app_call("/cgi-bin/message/update_template_card", payload))

    async def _media_id(self, image: Image) -> str:
        """The picture as temporary media (上传临时素材, type=image), uploaded once per content
        while its media_id is fresh: every leader of a department gets the same chart."""
        return await self._media.media_id(image, self._fresh_media_id)

    async def _fresh_media_id(self, image: Image) -> str:
        token = await self._tokens.get()
        data = await self._upload(token, image)
        if data.get("errcode") in TOKEN_REJECTED:
            await self._tokens.invalidate(token)
            data = await self._upload(await self._tokens.get(), image)
        media_id = data.get("media_id")
        if data.get("errcode", 0) != 0 or not isinstance(media_id, str) or not media_id:
            failed = wecom_result(data) if data.get("errcode") else SendResult(False)
            raise PlatformCallFailed(
                SendResult(
                    False,
                    failed.retry_after,
                    code=failed.code or "upload",
                    detail=f"media/upload failed: {failed.detail}",
                )
            )
        return media_id

    async def _upload(self, token: str, image: Image) -> dict[str, Any]:
        """multipart/form-data, one part named "media" with filename, filelength and its
        content type (docs/platforms.md c)."""
        with aiohttp.MultipartWriter("form-data") as form:
            part = form.append(image.data, {"Content-Type": image.mime})
            suffix = "png" if image.mime == "image/png" else "jpg"
            part.set_content_disposition(
                "form-data",
                name="media",
                filename=f"chart-{image.sha256[:12]}.{suffix}",
                filelength=str(len(image.data)),
            )
        _, data = await self._http.request_json(
            "POST",
            self.settings.api_base + "/cgi-bin/media/upload",
            params={"access_token": token, "type": "image"},
            data=form,
        )
        return data

    async def _app_call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        token = await self._tokens.get()
        data = await self._post_api(path, token, payload)
        if data.get("errcode") in TOKEN_REJECTED:
            # WeCom may revoke a token early: drop it, fetch once, retry once
            await self._tokens.invalidate(token)
            data = await self._post_api(path, await self._tokens.get(), payload)
        return data

    async def _post_api(self, path: str, token: str, payload: dict[str, Any]) -> dict[str, Any]:
        url = self.settings.api_base + path
        _, data = await self._http.request_json(
            "POST", url, params={"access_token": token}, payload=payload
        )
        return data

    async def _fetch_token(self) -> tuple[str, float]:
        params = {"corpid": self.settings.corp_id, "corpsecret": self.settings.secret}
        _, data = await self._http.request_json(
            "GET", self.settings.api_base + "/cgi-bin/gettoken", params=params
        )
        token = data.get("access_token")
        if data.get("errcode", 0) != 0 or not isinstance(token, str) or not token:
            raise PlatformCallFailed(
                SendResult(
                    False,
                    TOKEN_FAILURE_RETRY_S,
                    code=str(data.get("errcode", "")),
                    detail=f"gettoken failed: {data.get('errmsg', '')}",
                )
            )
        return token, float(data.get("expires_in", 7200))

    async def _send_webhook(self, url: str, msg: OutMessage, mentions: list[str]) -> SendResult:
        if not url.startswith(self.settings.webhook_base.rstrip("/") + "/"):
            # a binding pointing elsewhere would hand message content to an unknown host
            return SendResult(
                False,
                permanent=True,
                code="bad_address",
                detail="webhook URL not under webhook_base",
            )
        if msg.kind == "card_update":
            return SendResult(False, code="unsupported", detail="webhook cards cannot be updated")
        if msg.kind == "image" and (
            problem := picture_problem(msg.image, 1, ROBOT_IMAGE_MAX_BYTES)
        ):
            return problem
        _, data = await self._http.request_json("POST", url, payload=webhook_body(msg, mentions))
        return wecom_result(data)

    async def close(self) -> None:
        await self._http.close()

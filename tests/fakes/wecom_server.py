"""A local HTTP server speaking the parts of the WeCom API rectiflow uses, for integration tests.

It behaves like the documented service where it matters to us:

- ``GET /cgi-bin/gettoken`` checks corpid (40013) and corpsecret (40001); a token stays the same
  while it is good (as WeCom's does) and expires after ``token_ttl`` seconds of ``clock``.
- ``POST /cgi-bin/message/send`` checks the token (41001 missing, 40014 unknown, 42001 expired),
  agentid (40056), msgtype (40008), touser, and textcard/markdown sizes (40058; the real
  service truncates, we refuse so that tests notice). Unknown members are listed in
  ``invaliduser``; all unknown is 81013. More than 30 messages a minute (1,000 an hour) to one
  member are DROPPED while answering errcode 0, like the real service; ``dropped`` records them.
  ``enable_duplicate_check`` suppresses an identical request within the interval.
- ``POST /cgi-bin/webhook/send`` checks the key (93000), 20 messages a minute per key (45009),
  and markdown up to 4,096 bytes, text up to 2,048 (40058).
- ``POST /cgi-bin/webhook/upload_media?key=&type=file`` (multipart, field ``media``) checks the
  key (93000), the type (``file`` or ``voice``, else 40004) and the size (5 B to 20 MB, else
  40006; no file 44001), and answers a ``media_id``; nothing is posted to the group.

- ``GET /cgi-bin/auth/getuserinfo?access_token=&code=`` (web sign-in) checks the token (41001,
  40014, 42001) and the code: missing 41008; unknown, already used or older than 5 minutes
  40029. A member's code answers ``userid``, a non-member's ``openid`` and ``external_userid``.
  ``issue_code(userid=...)`` or ``issue_code(openid=...)`` is what WeCom's authorisation page
  does when it sends the browser back with ``?code=``.

An error's ``errmsg`` ends like the real one's: ``..., from ip: 127.0.0.1, more info at ...``.

``fail_next(path, errcode, times)`` makes the next calls to a path answer an error (45009,
60020, ...). Time comes from ``clock`` so tests can move it. Use it as a context manager
(``with FakeWeCom(users={"zhangsan"}) as server: ... server.url``) or ``start()``/``stop()``.
The fixtures live in the test module, not in a conftest.py: a second conftest module would
shadow the root one that tests import with ``from conftest import ...``.
"""

from __future__ import annotations

import itertools
import json
import secrets
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

ERRMSG = {
    40001: "invalid credential, access_token is invalid or not latest",
    40008: "invalid message type",
    40013: "invalid corpid",
    40014: "invalid access_token",
    40035: "invalid parameter",
    40056: "invalid agentid",
    40058: "invalid parameter, content exceed max length",
    40029: "invalid code",
    41001: "access_token missing",
    41008: "missing code",
    42001: "access_token expired",
    45009: "api freq out of limit",
    47001: "data format error",
    40004: "invalid media type",
    40006: "invalid file size",
    44001: "empty media data",
    60020: "not allow to access from your ip",
    81013: "user & party & tag all invalid",
    93000: "invalid webhook url",
}


@dataclass
class Delivered:
    """One message a member (or a group) would see."""

    to: str
    msgtype: str
    body: dict[str, Any]
    at: datetime


@dataclass
class FakeWeCom:
    """The fake service's state; ``start()`` serves it on 127.0.0.1 at a free port."""

    corp_id: str = "ww-test-corp"
    secret: str = field(default="app-secret-DO-NOT-LOG", repr=False)
    agent_id: int = 1000002
    users: set[str] = field(default_factory=set)
    robot_keys: set[str] = field(default_factory=set)
    token_ttl: int = 7200
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    per_member_minute: int = 30
    per_member_hour: int = 1000
    per_robot_minute: int = 20

    gettoken_calls: int = 0
    send_calls: int = 0
    webhook_calls: int = 0
    delivered: list[Delivered] = field(default_factory=list)
    dropped: list[Delivered] = field(default_factory=list)
    duplicates: list[Delivered] = field(default_factory=list)
    robot_messages: list[Delivered] = field(default_factory=list)
    robot_refused: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    #: files uploaded through a robot's upload_media: (key, filename, content)
    robot_uploads: list[tuple[str, str, bytes]] = field(default_factory=list)
    errors: list[tuple[str, int]] = field(default_factory=list)
    userinfo_calls: int = 0
    code_ttl: int = 300

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, datetime] = {}
        self._current: str | None = None
        self._serial = itertools.count(1)
        self._failures: dict[str, deque[int]] = defaultdict(deque)
        self._member_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._robot_sends: dict[str, deque[datetime]] = defaultdict(deque)
        self._seen: dict[str, datetime] = {}
        self._expire_after: int | None = None
        #: sign-in codes not yet used: code -> (userid, openid, issued at)
        self._codes: dict[str, tuple[str | None, str | None, datetime]] = {}
        self._httpd: ThreadingHTTPServer | None = None
        #: the request being answered on this thread: its Content-Type and client address
        self.request = threading.local()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeWeCom:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True,
                                        name="fake-wecom")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> FakeWeCom:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, path: str, errcode: int, times: int = 1) -> None:
        """The next ``times`` calls to ``path`` ("gettoken", "message/send", "webhook/send",
        "webhook/upload_media", "auth/getuserinfo") answer ``errcode``."""
        with self._lock:
            self._failures[path].extend([errcode] * times)

    def expire_tokens(self) -> None:
        """Every token issued so far expires now (answers 42001 from here on)."""
        with self._lock:
            past = self.clock() - timedelta(seconds=1)
            self._tokens = {token: past for token in self._tokens}
            self._current = None

    def revoke_tokens(self) -> None:
        """Every token issued so far becomes unknown (answers 40014)."""
        with self._lock:
            self._tokens.clear()
            self._current = None

    def expire_tokens_after(self, messages: int) -> None:
        """Expire all tokens once ``messages`` more app messages have been accepted."""
        with self._lock:
            self._expire_after = messages

    def issue_code(self, userid: str | None = None, openid: str | None = None) -> str:
        """A web sign-in code for a member (``userid``) or a non-member (``openid``), as
        WeCom's authorisation page hands one back to ``redirect_uri``; single-use, 5 minutes."""
        with self._lock:
            code = f"code{next(self._serial)}{secrets.token_hex(8)}"
            self._codes[code] = (userid, openid, self.clock())
            return code

    @property
    def current_token(self) -> str | None:
        return self._current

    def delivered_to(self, user: str) -> list[Delivered]:
        return [d for d in self.delivered if d.to == user]

    # ------------------------------------------------------------------ the API

    def handle(self, method: str, path: str, query: dict[str, str], raw: bytes
               ) -> dict[str, Any]:
        with self._lock:
            name = path.removeprefix("/cgi-bin/")
            if name == "gettoken" and method == "GET":
                return self._gettoken(query)
            if name == "auth/getuserinfo" and method == "GET":
                return self._getuserinfo(query)
            if name == "webhook/upload_media" and method == "POST":
                return self._upload_media(query, raw, getattr(self.request, "content_type", ""))
            if name not in ("message/send", "webhook/send") or method != "POST":
                return {"errcode": 404, "errmsg": f"no such api {path}"}
            try:
                body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                return self._error(name, 47001)
            if not isinstance(body, dict):
                return self._error(name, 47001)
            if name == "message/send":
                return self._message_send(query, body)
            return self._webhook_send(query, body)

    def _error(self, name: str, errcode: int, **extra: Any) -> dict[str, Any]:
        self.errors.append((name, errcode))
        errmsg = (f"{ERRMSG.get(errcode, 'error')}, hint: [{next(self._serial)}], "
                  f"from ip: {getattr(self.request, 'client_ip', '127.0.0.1')}, more info at "
                  f"https://open.work.weixin.qq.com/devtool/query?e={errcode}")
        return {"errcode": errcode, "errmsg": errmsg, **extra}

    def _injected(self, name: str) -> int | None:
        queue = self._failures.get(name)
        return queue.popleft() if queue else None

    def _gettoken(self, query: dict[str, str]) -> dict[str, Any]:
        self.gettoken_calls += 1
        if query.get("corpid") != self.corp_id:
            return self._error("gettoken", 40013)
        if query.get("corpsecret") != self.secret:
            return self._error("gettoken", 40001)
        injected = self._injected("gettoken")
        if injected is not None:
            return self._error("gettoken", injected)
        now = self.clock()
        if self._current is None or self._tokens.get(self._current, now) <= now:
            self._current = f"tok{next(self._serial)}-{id(self) % 9973:04d}-access"
            self._tokens[self._current] = now + timedelta(seconds=self.token_ttl)
        left = int((self._tokens[self._current] - now).total_seconds())
        return {"errcode": 0, "errmsg": "ok", "access_token": self._current, "expires_in": left}

    def _getuserinfo(self, query: dict[str, str]) -> dict[str, Any]:
        self.userinfo_calls += 1
        name = "auth/getuserinfo"
        refused = self._refused(name, query)
        if refused is not None:
            return refused
        code = query.get("code", "")
        if not code:
            return self._error(name, 41008)
        found = self._codes.pop(code, None)  # a code works once, right or wrong
        if found is None or found[2] + timedelta(seconds=self.code_ttl) <= self.clock():
            return self._error(name, 40029)
        userid, openid, _ = found
        if userid is not None:
            return {"errcode": 0, "errmsg": "ok", "userid": userid}
        return {"errcode": 0, "errmsg": "ok", "openid": openid, "external_userid": ""}

    def _refused(self, name: str, query: dict[str, str]) -> dict[str, Any] | None:
        """The error answer of a call whose token is missing, unknown or expired, or that a
        test has told to fail; None when the call may go on."""
        code = self._check_token(query)
        if code is None:
            code = self._injected(name)
        return None if code is None else self._error(name, code)

    def _check_token(self, query: dict[str, str]) -> int | None:
        token = query.get("access_token")
        if not token:
            return 41001
        if token not in self._tokens:
            return 40014
        if self._tokens[token] <= self.clock():
            return 42001
        return None

    def _message_send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.send_calls += 1
        name = "message/send"
        refused = self._refused(name, query)
        if refused is not None:
            return refused
        malformed = _malformed(body, self.agent_id)
        if malformed is not None:
            return self._error(name, malformed)
        msgtype = body["msgtype"]
        touser = [u for u in str(body["touser"]).split("|") if u]
        invalid = [u for u in touser if u not in self.users]
        if len(invalid) == len(touser):
            return self._error(name, 81013, invaliduser="|".join(invalid))
        now = self.clock()
        duplicate = self._duplicate(body, now)
        for user in touser:
            if user in invalid:
                continue
            record = Delivered(user, msgtype, body, now)
            if duplicate:
                self.duplicates.append(record)
            elif self._over_member_limit(user, now):
                self.dropped.append(record)  # the real service drops silently, errcode 0
            else:
                self._member_sends[user].append(now)
                self.delivered.append(record)
        if self._expire_after is not None:
            self._expire_after -= 1
            if self._expire_after <= 0:
                self._expire_after = None
                past = now - timedelta(seconds=1)
                self._tokens = {token: past for token in self._tokens}
        return {"errcode": 0, "errmsg": "ok", "invaliduser": "|".join(invalid),
                "invalidparty": "", "invalidtag": "", "unlicenseduser": "",
                "msgid": f"msg{next(self._serial)}", "response_code": ""}

    def _duplicate(self, body: dict[str, Any], now: datetime) -> bool:
        if body.get("enable_duplicate_check") != 1:
            return False
        interval = timedelta(seconds=int(body.get("duplicate_check_interval") or 1800))
        fingerprint = json.dumps(body, sort_keys=True, ensure_ascii=False)
        seen = self._seen.get(fingerprint)
        if seen is not None and now - seen < interval:
            return True
        self._seen[fingerprint] = now
        return False

    def _over_member_limit(self, user: str, now: datetime) -> bool:
        sends = self._member_sends[user]
        while sends and sends[0] <= now - timedelta(hours=1):
            sends.popleft()
        last_minute = sum(1 for t in sends if t > now - timedelta(minutes=1))
        return last_minute >= self.per_member_minute or len(sends) >= self.per_member_hour

    def _webhook_send(self, query: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
        self.webhook_calls += 1
        name = "webhook/send"
        key = query.get("key", "")
        if key not in self.robot_keys:
            self.robot_refused.append((93000, body))
            return self._error(name, 93000)
        injected = self._injected(name)
        if injected is not None:
            self.robot_refused.append((injected, body))
            return self._error(name, injected)
        msgtype = body.get("msgtype")
        if msgtype not in ("text", "markdown") or not isinstance(body.get(msgtype), dict):
            return self._error(name, 40008)
        limit = 4096 if msgtype == "markdown" else 2048
        if len(str(body[msgtype].get("content", "")).encode()) > limit:
            self.robot_refused.append((40058, body))
            return self._error(name, 40058)
        now = self.clock()
        sends = self._robot_sends[key]
        while sends and sends[0] <= now - timedelta(minutes=1):
            sends.popleft()
        if len(sends) >= self.per_robot_minute:
            self.robot_refused.append((45009, body))
            return self._error(name, 45009)
        sends.append(now)
        self.robot_messages.append(Delivered(key, msgtype, body, now))
        return {"errcode": 0, "errmsg": "ok"}

    def _upload_media(self, query: dict[str, str], raw: bytes, content_type: str
                      ) -> dict[str, Any]:
        name = "webhook/upload_media"
        key = query.get("key", "")
        if key not in self.robot_keys:
            return self._error(name, 93000)
        injected = self._injected(name)
        if injected is not None:
            return self._error(name, injected)
        kind = query.get("type", "")
        if kind not in ("file", "voice"):
            return self._error(name, 40004)
        media = _multipart_file(content_type, raw, "media")
        if media is None or not media[1]:
            return self._error(name, 44001)
        filename, content = media
        if not 5 <= len(content) <= 20 * 1024 * 1024:
            return self._error(name, 40006)
        self.robot_uploads.append((key, filename, content))
        return {"errcode": 0, "errmsg": "ok", "type": kind,
                "media_id": f"media{next(self._serial)}-{key[:4]}",
                "created_at": str(int(self.clock().timestamp()))}


def _multipart_file(content_type: str, raw: bytes, field_name: str) -> tuple[str, bytes] | None:
    """(filename, content) of the form field ``field_name`` in a multipart/form-data body."""
    if not content_type.startswith("multipart/form-data"):
        return None
    message = BytesParser(policy=policy.default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field_name:
            payload = part.get_payload(decode=True)
            return part.get_filename() or "", payload if isinstance(payload, bytes) else b""
    return None


def _malformed(body: dict[str, Any], agent_id: int) -> int | None:
    """The errcode for an app message WeCom would refuse as malformed, or None."""
    if body.get("agentid") != agent_id:
        return 40056
    msgtype = body.get("msgtype")
    if msgtype not in ("text", "textcard", "markdown"):
        return 40008
    if not isinstance(body.get(msgtype), dict) or not _content_fits(msgtype, body[msgtype]):
        return 40058
    if not any(str(body.get("touser", "")).split("|")):
        return 40035
    return None


def _content_fits(msgtype: str, part: dict[str, Any]) -> bool:
    if msgtype == "textcard":
        url = str(part.get("url", ""))
        return (0 < len(str(part.get("title", ""))) <= 128
                and 0 < len(str(part.get("description", "")).encode()) <= 512
                and url.startswith(("http://", "https://")) and len(url.encode()) <= 2048
                and len(str(part.get("btntxt", "详情"))) <= 4)
    return 0 < len(str(part.get("content", "")).encode()) <= 2048


def _handler_for(service: FakeWeCom) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self, method: str) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            service.request.content_type = self.headers.get("Content-Type", "")
            service.request.client_ip = self.client_address[0]
            answer = service.handle(method, parts.path, query, raw)
            data = json.dumps(answer, ensure_ascii=False).encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # request lines carry the secret and tokens: keep them out of test output

    return Handler


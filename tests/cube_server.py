"""A fake Cube 1.x REST API for tests, as an httpx transport or a real server on 127.0.0.1.

It answers like a real Cube server: measures as strings (``"21738.00"``), times as
``"2025-07-01T00:00:00.000"``, ``{"query", "data", "annotation", ...}`` bodies, HTTP 400
``{"type": "UserError", "error": ...}`` for unknown members, 403 ``{"error": "Invalid
token"}`` for a bad JWT, a silent 10,000-row limit when a query sets none, and (with
``query_limit``, Cube's CUBEJS_DB_QUERY_LIMIT) HTTP 500 "The query limit has been exceeded."
for a larger ``limit``.
Canned replies in ``script`` are served first, one per request ("Continue wait", 500, ...).
``faults`` answers a share of the other requests like a fault proxy (5xx, 429 with
Retry-After, "Continue wait"); ``down`` drops every connection unanswered. Every request's
arrival time is recorded, and so is each 429's pause, to count requests sent during one.

Multi requests (Cube 1.x): a body ``{"query": [q1, q2, ...], "queryType": "multi"}`` is
answered ``{"queryType": "blendingQuery", "results": [...]}``, one result per query in
order, each row with an extra ``time.<granularity>`` key; queries of different granularities
get 400 "Data blending query granularities must match", and any query Cube rejects (an
unknown member) rejects the whole request. ``refuse_multi`` answers every multi body with
400 like an older Cube. A query with several measures is answered from ``data`` called once
per measure (a one-measure query each), rows joined on time and dimension. ``queries`` counts
the queries Cube ran (a multi request of three queries: three).
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt

SECRET = "test-cube-secret-0123456789abcdef-0123456789"
DEFAULT_LIMIT = 10_000

Rows = list[dict[str, Any]]
DataFn = Callable[[dict[str, Any], dict[str, Any]], Rows]


@dataclass
class Reply:
    """A canned answer: JSON (or raw text), status, headers, a delay, or an httpx error."""

    status: int = 200
    json: Any = None
    text: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    raise_exc: type[httpx.TransportError] | None = None

    @classmethod
    def continue_wait(cls) -> Reply:
        return cls(200, {"error": "Continue wait"})

    def body(self) -> bytes:
        if self.text is not None:
            return self.text.encode()
        return json.dumps(self.json).encode()


@dataclass
class Faults:
    """What share of requests a fault proxy answers with which failure (the rest get Cube)."""

    server_errors: float = 0.3  # HTTP 500, 502 or 503
    throttled: float = 0.1  # HTTP 429 with Retry-After
    continue_wait: float = 0.2
    retry_after: str = "1"
    seed: int = 15

    def pick(self, rng: random.Random) -> Reply | None:
        """Return the failure for one request, or None to let Cube answer it."""
        roll = rng.random()
        if roll < self.server_errors:
            return Reply(rng.choice([500, 502, 503]), {"error": "fault proxy: upstream failed"})
        roll -= self.server_errors
        if roll < self.throttled:
            headers = {"Retry-After": self.retry_after}
            return Reply(429, {"error": "Too Many Requests"}, headers=headers)
        if roll - self.throttled < self.continue_wait:
            return Reply.continue_wait()
        return None


@dataclass
class Recorded:
    """One request the fake received (``at``: time.monotonic() on arrival)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = field(default_factory=time.monotonic)

    @property
    def query(self) -> dict[str, Any]:
        return dict(self.body["query"])

    @property
    def is_multi(self) -> bool:
        return isinstance(self.body, dict) and isinstance(self.body.get("query"), list)

    @property
    def queries(self) -> list[dict[str, Any]]:
        """Every query of the request: one for a plain request, each of a multi's."""
        query = self.body["query"]
        return [dict(q) for q in query] if isinstance(query, list) else [dict(query)]

    @property
    def token(self) -> str:
        return self.headers.get("authorization", "").removeprefix("Bearer ")


def cube_time(day: str) -> str:
    """Render an ISO day as Cube does: ``2025-07-01T00:00:00.000``."""
    return f"{day}T00:00:00.000"


def series_rows(query: dict[str, Any], points: list[tuple[str, str | None, str | None]]) -> Rows:
    """Build Cube rows for ``query`` from ``(day, value-as-string, slice)`` points."""
    td = query["timeDimensions"][0]
    time_key = f"{td['dimension']}.{td['granularity']}"
    measure = query["measures"][0]
    member = (query.get("dimensions") or [None])[0]
    rows: Rows = []
    for day, value, slice_ in points:
        row: dict[str, Any] = {time_key: cube_time(day), td["dimension"]: cube_time(day)}
        if member is not None:
            row[member] = slice_
        row[measure] = value
        rows.append(row)
    return rows


class FakeCube:
    """A scriptable fake of Cube's ``/load`` and ``/meta`` endpoints.

    :param data: ``(query, jwt_claims) -> rows`` (all rows; the fake applies limit and offset).
    :param cubes: ``{cube: {"measures": [...], "dimensions": [...]}}``; queries naming other
        members get a 400 UserError. None accepts every member.
    :param secret: the HS256 secret tokens must be signed with.
    """

    def __init__(
        self,
        data: DataFn | None = None,
        *,
        cubes: dict[str, dict[str, list[str]]] | None = None,
        secret: str = SECRET,
        query_limit: int | None = None,
        faults: Faults | None = None,
    ) -> None:
        self.data = data or (lambda query, claims: [])
        self.cubes = cubes
        self.secret = secret
        self.query_limit = query_limit
        self.faults = faults
        self.down = False
        self.refuse_multi = False  # answer multi bodies with 400, like a Cube before 1.x
        self.latency = 0.0  # seconds every served request waits (a round trip's cost)
        self.queries = 0  # queries run (a multi request counts each of its queries)
        # Come back on a condition, never on a timer: down for the next ``refusals`` requests,
        # or (``down`` set) until ``back_when()`` holds when a request arrives.
        self.refusals = 0
        self.back_when: Callable[[], bool] | None = None
        self.script: deque[Reply] = deque()
        self.requests: list[Recorded] = []
        self.pauses: list[tuple[float, float]] = []  # (429 sent, Retry-After over), monotonic
        self.served: dict[str, int] = {}  # how many of each fault were served
        self.in_flight = self.max_in_flight = 0
        self.lock = threading.Lock()
        self._rng = random.Random(faults.seed if faults else 0)

    # ------------------------------------------------------------------ core

    def handle(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> Reply:
        """Answer one request (recording it)."""
        body = json.loads(raw) if raw else None
        with self.lock:
            self.requests.append(Recorded(method, path, headers, body))
            canned = self._canned()
            if canned is not None:
                if canned.status == 429 and "Retry-After" in canned.headers:
                    now = time.monotonic()
                    self.pauses.append((now, now + float(canned.headers["Retry-After"])))
                return canned
        token = headers.get("authorization", "").removeprefix("Bearer ")
        try:
            # Like Cube (jsonwebtoken): check signature and exp, not whether iat is in the future.
            claims = jwt.decode(
                token, self.secret, algorithms=["HS256"], options={"verify_iat": False}
            )
        except jwt.PyJWTError:
            return Reply(403, {"error": "Invalid token"})
        if path.endswith("/v1/meta") and method == "GET":
            return Reply(200, {"cubes": self._meta()})
        if path.endswith("/v1/load") and method == "POST":
            if isinstance(body["query"], list):
                return self._multi(body, claims)
            return self._load(body["query"], claims)
        return Reply(404, {"error": f"Cannot {method} {path}"})

    def _canned(self) -> Reply | None:
        """The scripted reply, the down mode's, or a fault; None: answer as Cube."""
        if self.script:
            return self.script.popleft()
        if self.down and self.back_when is not None and self.back_when():
            self.down, self.back_when = False, None
        if self.refusals > 0:
            self.refusals -= 1
            return Reply(raise_exc=httpx.ConnectError)
        if self.down:
            return Reply(raise_exc=httpx.ConnectError)
        fault = self.faults.pick(self._rng) if self.faults else None
        if fault is not None:
            kind = "continue_wait" if fault.status == 200 else str(fault.status)
            self.served[kind] = self.served.get(kind, 0) + 1
        return fault

    def _meta(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "title": name.title(),
                "measures": [{"name": m, "type": "number"} for m in members["measures"]],
                "dimensions": [{"name": d, "type": "string"} for d in members["dimensions"]],
                "segments": [],
            }
            for name, members in (self.cubes or {}).items()
        ]

    def _multi(self, body: dict[str, Any], claims: dict[str, Any]) -> Reply:
        """A ``queryType: "multi"`` body: one blendingQuery answer, one result per query."""
        queries = body["query"]
        if self.refuse_multi or body.get("queryType") != "multi" or not queries:
            error = 'Invalid query format: "query" must be of type object'
            return Reply(400, {"type": "UserError", "error": error})
        grains = {q["timeDimensions"][0].get("granularity") for q in queries}
        if len(grains) > 1:
            error = "Error: Data blending query granularities must match"
            return Reply(400, {"type": "UserError", "error": error})
        for query in queries:
            rejected = self._reject(query)
            if rejected is not None:
                return rejected  # one bad query rejects the whole request, as Cube does
        results = []
        for query in queries:
            reply = self._load(query, claims)
            if reply.status != 200:
                return reply
            results.append(reply.json)
        (grain,) = grains
        for result in results:
            dimension = result["query"]["timeDimensions"][0]["dimension"]
            for row in result["data"]:
                row[f"time.{grain}"] = row.get(f"{dimension}.{grain}")
            result["query"]["queryType"] = "blendingQuery"
        return Reply(200, {"queryType": "blendingQuery", "results": results})

    def _rows(self, query: dict[str, Any], claims: dict[str, Any]) -> Rows:
        """All rows of ``query``: several measures are fetched one by one and joined."""
        measures = query["measures"]
        if len(measures) == 1:
            return self.data(query, claims)
        td = query["timeDimensions"][0]
        keys = [f"{td['dimension']}.{td['granularity']}", *query.get("dimensions", [])]
        joined: dict[tuple[Any, ...], dict[str, Any]] = {}
        for measure in measures:
            for row in self.data({**query, "measures": [measure]}, claims):
                key = tuple(row.get(k) for k in keys)
                joined.setdefault(key, {k: v for k, v in row.items() if k not in measures})
                joined[key][measure] = row.get(measure)
        return [{**row, **{m: row.get(m) for m in measures}} for row in joined.values()]

    def _reject(self, query: dict[str, Any]) -> Reply | None:
        """The 400 UserError for a query naming an unknown member, else None."""
        td = query["timeDimensions"][0]
        members = [*query["measures"], td["dimension"], *query.get("dimensions", [])]
        if self.cubes is not None:
            known = {m for c in self.cubes.values() for ms in c.values() for m in ms}
            for member in members:
                if member not in known:
                    name = member.partition(".")[2]
                    error = f"Error: '{name}' not found for path '{member}'"
                    return Reply(400, {"type": "UserError", "error": error})
        return None

    def _load(self, query: dict[str, Any], claims: dict[str, Any]) -> Reply:
        td = query["timeDimensions"][0]
        rejected = self._reject(query)
        if rejected is not None:
            return rejected
        if self.query_limit is not None and int(query.get("limit") or 0) > self.query_limit:
            # What Cube's normalizeQuery throws: a plain Error, i.e. HTTP 500.
            return Reply(500, {"error": "Error: The query limit has been exceeded."})
        rows = self._rows(query, claims)
        with self.lock:
            self.queries += 1
        offset = int(query.get("offset") or 0)
        limit = int(query.get("limit") or DEFAULT_LIMIT)
        page = rows[offset : offset + limit]
        annotation = {
            "measures": {m: {"title": m, "type": "number"} for m in query["measures"]},
            "dimensions": {d: {"title": d, "type": "string"} for d in query.get("dimensions", [])},
            "segments": {},
            "timeDimensions": {
                f"{td['dimension']}.{td['granularity']}": {"title": td["dimension"], "type": "time"}
            },
        }
        answer = {
            "query": {**query, "rowLimit": limit, "queryType": "regularQuery"},
            "data": page,
            "lastRefreshTime": "2025-07-02T10:00:00.000Z",
            "annotation": annotation,
            "dataSource": "default",
            "dbType": "postgres",
            "extDbType": "cubestore",
            "external": False,
            "slowQuery": False,
            "total": None,
        }
        return Reply(200, answer)

    def requests_during_pauses(self, grace: float = 0.1) -> int:
        """Requests that arrived while a 429's Retry-After lasted.

        ``grace`` after each 429 is not counted: requests already on the wire when it was sent.
        """
        return sum(
            1
            for r in self.requests
            if any(start + grace < r.at < end for start, end in self.pauses)
        )

    # ------------------------------------------------------------------ adapters

    def transport(self) -> httpx.MockTransport:
        """Return an httpx transport that answers in-process (delays are not slept)."""

        def handler(request: httpx.Request) -> httpx.Response:
            headers = {k.lower(): v for k, v in request.headers.items()}
            reply = self.handle(request.method, request.url.path, headers, request.content)
            if reply.raise_exc is not None:
                raise reply.raise_exc("simulated failure", request=request)
            return httpx.Response(reply.status, headers=reply.headers, content=reply.body())

        return httpx.MockTransport(handler)

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve on ``port`` (default: a free one) of 127.0.0.1 in a thread; yield the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            # Without it Nagle's algorithm meets delayed ACKs: ~40 ms per keep-alive request.
            disable_nagle_algorithm = True
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                with fake.lock:
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    self._reply()
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = fake.handle(self.command, self.path, headers, raw)
                if reply.delay or fake.latency:
                    time.sleep(reply.delay + fake.latency)
                if reply.raise_exc is not None:  # down: drop the connection unanswered
                    self.close_connection = True
                    return
                payload = reply.body()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # The default backlog of 5 drops the SYNs of 8 workers connecting at once, and
            # the kernel resends them a second later: requests would arrive 1 s late.
            request_queue_size = 128

        server = Server(("127.0.0.1", port), Handler)
        server.daemon_threads = True
        server.block_on_close = False
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()

"""A local stand-in for the two central-bank data services, answering in their real formats over real HTTP.

- Bank of England IADB: `GET /boeapps/database/_iadb-fromshowcolumns.asp?csv.x=yes&Datefrom=01/Jan/2020&
  Dateto=now&SeriesCodes=IUDBEDR&CSVF=TN&UsingCodes=Y&VPD=Y&VFD=N` answers `DATE,IUDBEDR` CSV, one row per
  business day dated `02 Jan 2020`. Other parameters get an HTML page (as the Bank's site answers them),
  and requests' own default User-Agent is refused (403), as the Bank's site has been seen to.
- ECB Data Portal: `GET /service/data/FM/D.U2.EUR.4F.KR.MRR_FR.LEV?format=csvdata&startPeriod=2020-01-01`
  answers SDMX-CSV with all its columns, CRLF line ends and quoted titles with commas inside, a row only on
  the days the rate changed; nothing in the period is a 404 `No results found.`

`fail` queues statuses to answer first (a 503, a 429 with Retry-After); `body` replaces an answer.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

BOE_PATH = "/boeapps/database/_iadb-fromshowcolumns.asp"
ECB_PATH = "/service/data/FM/D.U2.EUR.4F.KR.MRR_FR.LEV"
BOE_QUERY = {"csv.x": "yes", "Datefrom": "01/Jan/2020", "Dateto": "now", "SeriesCodes": "IUDBEDR", "CSVF": "TN",
             "UsingCodes": "Y", "VPD": "Y", "VFD": "N"}  # fmt: skip
ECB_COLUMNS = (
    "KEY,FREQ,REF_AREA,CURRENCY,PROVIDER_FM,INSTRUMENT_FM,PROVIDER_FM_ID,DATA_TYPE_FM,TIME_PERIOD,OBS_VALUE,"
    "OBS_STATUS,OBS_CONF,OBS_PRE_BREAK,OBS_COM,TIME_FORMAT,BREAKS,COLLECTION,COMPILING_ORG,DISS_ORG,DOM_SER_IDS,"
    "PUBL_ECB,PUBL_MU,PUBL_PUBLIC,UNIT_INDEX_BASE,COMPILATION,COVERAGE,DECIMALS,NAT_TITLE,SOURCE_AGENCY,"
    "SOURCE_PUB,TITLE,TITLE_COMPL,UNIT,UNIT_MULT"
)
_ECB_TITLE = '"Main refinancing operations - fixed rate tenders (fixed rate) (date of changes) - Level"'
_ECB_TITLE_COMPL = (
    '"Euro area (changing composition), Key interest rate - Main refinancing operations - fixed rate tenders '
    '(fixed rate) (date of changes), Level"'
)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
HTML = (
    "<!DOCTYPE html>\r\n<html><head><title>Bank of England Database</title></head><body>Error</body></html>"
)

# The Bank Rate and the MRO as the stand-ins know them: the real changes since 2020 (as in the shipped table
# and the banks' announcements), then made-up ones for 2026, for tests pinned to 2027.
BOE_CHANGES = [
    (date(2019, 8, 2), "0.75"), (date(2020, 3, 11), "0.25"), (date(2020, 3, 19), "0.10"),
    (date(2021, 12, 16), "0.25"), (date(2022, 2, 3), "0.50"), (date(2022, 3, 17), "0.75"),
    (date(2022, 5, 5), "1.00"), (date(2022, 6, 16), "1.25"), (date(2022, 8, 4), "1.75"),
    (date(2022, 9, 22), "2.25"), (date(2022, 11, 3), "3.00"), (date(2022, 12, 15), "3.50"),
    (date(2023, 2, 2), "4.00"), (date(2023, 3, 23), "4.25"), (date(2023, 5, 11), "4.50"),
    (date(2023, 6, 22), "5.00"), (date(2023, 8, 3), "5.25"), (date(2024, 8, 1), "5.00"),
    (date(2024, 11, 7), "4.75"), (date(2025, 2, 6), "4.50"), (date(2025, 5, 8), "4.25"),
    (date(2025, 8, 7), "4.00"), (date(2025, 12, 18), "3.75"),
    (date(2026, 5, 7), "3.50"),  # made up
]  # fmt: skip
ECB_CHANGES = [
    (date(2022, 7, 27), "0.5"), (date(2022, 9, 14), "1.25"), (date(2022, 11, 2), "2"), (date(2022, 12, 21), "2.5"),
    (date(2023, 2, 8), "3"), (date(2023, 3, 22), "3.5"), (date(2023, 5, 10), "3.75"), (date(2023, 6, 21), "4"),
    (date(2023, 8, 2), "4.25"), (date(2023, 9, 20), "4.5"), (date(2024, 6, 12), "4.25"),
    (date(2024, 9, 18), "3.65"), (date(2024, 10, 23), "3.4"), (date(2024, 12, 18), "3.15"),
    (date(2025, 2, 5), "2.9"), (date(2025, 3, 12), "2.65"), (date(2025, 4, 23), "2.4"),
    (date(2025, 6, 11), "2.15"),
    (date(2026, 6, 10), "2"),  # made up
]  # fmt: skip


def boe_day(day: date) -> str:
    return f"{day.day:02d} {_MONTHS[day.month - 1]} {day.year}"


@dataclass
class Services:
    """What the stand-ins answer; change it between requests."""

    boe_until: date  # the Bank's daily rows run to this day
    boe_changes: list[tuple[date, str]] = field(default_factory=lambda: list(BOE_CHANGES))
    ecb_changes: list[tuple[date, str]] = field(default_factory=lambda: list(ECB_CHANGES))
    fail: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)  # path -> statuses first
    body: dict[str, str] = field(default_factory=dict)  # path -> an answer instead of the data
    seen: list[tuple[str, dict[str, str], str]] = field(default_factory=list)  # path, query, User-Agent
    url: str = ""

    @property
    def boe_url(self) -> str:
        return self.url + BOE_PATH

    @property
    def ecb_url(self) -> str:
        return self.url + ECB_PATH

    def boe_csv(self) -> str:
        lines = ["DATE,IUDBEDR"]
        day = date(2020, 1, 1)
        while day <= self.boe_until:
            if day.weekday() < 5:
                rate = [r for d, r in self.boe_changes if d <= day][-1]
                lines.append(f"{boe_day(day)},{rate}")
            day += timedelta(days=1)
        return "\n".join(lines) + "\n"

    def ecb_csv(self, start: date) -> str | None:
        rows = [
            f"FM.D.U2.EUR.4F.KR.MRR_FR.LEV,D,U2,EUR,4F,KR,MRR_FR,LEV,{d.isoformat()},{Decimal(r)},A,F,,,P1D,,E,,,,,,,,,,"
            f"4,,4F0,,{_ECB_TITLE},{_ECB_TITLE_COMPL},PCPA,0"
            for d, r in self.ecb_changes
            if d >= start
        ]
        return "\r\n".join([ECB_COLUMNS, *rows]) + "\r\n" if rows else None


class _Handler(BaseHTTPRequestHandler):
    services: Services

    def log_message(self, format: str, *args: object) -> None:
        return None

    def _send(self, status: int, body: str, content_type: str, headers: dict[str, str] | None = None) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        s = self.services
        s.seen.append((parts.path, query, self.headers.get("User-Agent", "")))
        if s.fail.get(parts.path):
            status, headers = s.fail[parts.path].pop(0)
            self._send(status, "Service Unavailable", "text/plain", headers)
            return
        if parts.path in s.body:
            self._send(200, s.body[parts.path], "text/csv")
            return
        if parts.path == BOE_PATH:
            if self.headers.get("User-Agent", "").startswith("python-requests"):
                self._send(403, HTML, "text/html")
            elif query != BOE_QUERY:
                self._send(200, HTML, "text/html")
            else:
                self._send(
                    200, s.boe_csv(), "text/csv", {"Content-Disposition": "attachment; filename=results.csv"}
                )
            return
        if parts.path == ECB_PATH and query.get("format") == "csvdata" and "startPeriod" in query:
            answer = s.ecb_csv(date.fromisoformat(query["startPeriod"]))
            if answer is None:
                self._send(404, "No results found.", "text/plain")
            else:
                self._send(200, answer, "text/csv; charset=utf-8")
            return
        self._send(404, "Not Found", "text/plain")


@contextmanager
def stand_in(boe_until: date) -> Iterator[Services]:
    """Both services on a free loopback port for the block."""
    services = Services(boe_until)
    handler = type("Handler", (_Handler,), {"services": services})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    services.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield services
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

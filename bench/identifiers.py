"""Benchmark: normalising identifiers, and correlating a large batch against a large index.

A. Normalisation rate per type: N realistic, valid, randomly generated values of each type
   (written the way people and tools write them: ports, national phone numbers, defanged
   URLs, IBANs in groups of four, ...) go through ``normalize``; values/s, median of 3 runs.
   Every value's result is checked against the canonical form it was generated from (not
   timed); a mismatch is printed, never hidden.
B. Correlation, for each backend (a SQLite file in a temporary directory; PostgreSQL in a
   throwaway database ``bench_identifiers_<pid>`` when a server answers):
   1. load ``--stored`` values with a realistic mix of kinds, one occurrence each, into
      ``ident_values`` / ``ident_occurrences`` of a freshly migrated schema, the way a bulk
      loader would: secondary indexes, the unique index on ``digest`` (PostgreSQL) and the
      foreign key dropped, rows streamed (COPY on PostgreSQL, ``executemany`` in transactions
      of 500,000 rows on SQLite with the project's PRAGMAs), indexes rebuilt, then ANALYZE.
      The load rate counts all of it; the rows themselves are built beforehand (not timed);
   2. take ``--new`` identifiers, a fraction ``--overlap`` of which are already stored (as
      they would be written, not in canonical form), normalise them (not timed) and time
      ``selectors.bulk.known_counts`` over all their digests (median of ``--repeat``), each
      run in its own session and transaction, as the application would call it;
   3. the floor: a Python dict ``{digest: scopes}`` of the stored values (built beforehand,
      not timed) looked up with the same digests. The two answers must be equal.

Run: ``.venv/bin/python bench/identifiers.py [--stored 10000000] [--new 1000000]
[--overlap 0.1] [--backends sqlite,postgresql] [--repeat 3] [--database-url URL]``.
Try ``--stored 100000 --new 10000`` first. Memory: about 1 GB per million stored values.
"""

from __future__ import annotations

import argparse
import gc
import ipaddress
import json
import os
import random
import statistics
import string
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import base58
import bech32m
from stdnum import iban as stdnum_iban
from stdnum import luhn

from crossborder.selectors import correlate as rules
from crossborder.selectors.normalize import InvalidIdentifier, eip55, normalize

DEFAULT_PG_URL = os.environ.get(
    "CROSSBORDER_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SEED = 20261129
SQLITE_TXN_ROWS = 500_000

# --- realistic random identifiers ----------------------------------------------------------

Sample = tuple[str, str, str, dict[str, str]]  # kind, canonical, raw, normalize() options

_SYLLABLES = [
    "an", "ba", "co", "da", "el", "fi", "go", "ha", "in", "jo", "ka", "lu", "ma", "ne", "or",
    "pa", "qui", "ro", "sa", "ta", "un", "vi", "wa", "xe", "yo", "zu", "tran", "nguyen", "pay",
    "shop", "bank", "secure", "login", "mail", "cloud", "crypto", "coin", "trade", "bet",
    "lin", "mo", "phu", "quan", "son", "thi", "van", "hoa", "kim", "lee", "park", "chen",
    "wang", "li", "zhang", "ali", "omar", "rah", "man", "sing", "kar", "dev", "ra", "mi",
]  # fmt: skip
_SUFFIXES = [
    "com", "com", "com", "net", "org", "vn", "com.vn", "co.uk", "de", "ru", "info", "xyz",
    "top", "online", "shop", "io", "co", "me", "cc", "biz",
]  # fmt: skip
_MAIL_PROVIDERS = [
    "gmail.com", "gmail.com", "outlook.com", "yahoo.com", "hotmail.com", "proton.me",
    "icloud.com", "mail.ru", "qq.com", "yandex.ru", "gmx.de", "web.de",
]  # fmt: skip
_PHONE_REGIONS = [  # region, country code, an example mobile national number (from libphonenumber)
    ("VN", 84, "912345678"), ("GB", 44, "7400123456"), ("AU", 61, "412345678"),
    ("DE", 49, "15123456789"), ("FR", 33, "612345678"), ("TH", 66, "812345678"),
    ("MA", 212, "650123456"), ("BD", 880, "1812345678"), ("NG", 234, "8021234567"),
    ("IN", 91, "8123456789"), ("BR", 55, "11961234567"), ("ID", 62, "812345678"),
    ("PH", 63, "9051234567"),
]  # fmt: skip
_IBAN_FORMATS = [  # country, BBAN pattern (A letter, 9 digit, X alphanumeric)
    ("DE", "9" * 18), ("GB", "AAAA" + "9" * 14), ("AT", "9" * 16), ("CH", "9" * 5 + "X" * 12),
    ("NL", "AAAA" + "9" * 10), ("PL", "9" * 24), ("SA", "99" + "X" * 18), ("AE", "9" * 19),
]  # fmt: skip
_PLATFORMS = ["facebook", "telegram", "tiktok", "instagram", "x", "zalo", "whatsapp", "discord"]
_TACS = ["35209900", "35332510", "86718303", "35391110", "49015420", "35875609", "86891204"]
_MCC_MNC = ["45204", "45201", "45202", "310260", "23415", "26201", "20801", "60400", "47001"]
_TIME_ZONES = ["Asia/Ho_Chi_Minh", "Europe/Berlin", "UTC", "Asia/Bangkok", "Africa/Casablanca"]
_DIGITS = string.digits
_ALNUM = string.ascii_uppercase + string.digits
_HANDLE = string.ascii_lowercase + string.digits + "._"


def _word(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(_SYLLABLES) for _ in range(parts))


def _domain(rng: random.Random) -> str:
    name = _word(rng, rng.randint(2, 3))
    if rng.random() < 0.6:
        name += str(rng.randint(1, 9999))
    sub = rng.choice(["", "", "", "www.", "login.", "secure-", "m."])
    if sub.endswith("-"):
        name, sub = sub + name, ""
    return f"{sub}{name}.{rng.choice(_SUFFIXES)}"


def _defang_host(host: str) -> str:
    return host.replace(".", "[.]")


def gen_ip(rng: random.Random) -> Sample:
    if rng.random() < 0.8:
        addr: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.IPv4Address(
            rng.randint(0x01000000, 0xDFFFFFFF)
        )
        canonical = str(addr)
        raw = _defang_host(canonical) if rng.random() < 0.1 else canonical
    else:  # global unicast, a /48 from a few providers' /32s
        addr = ipaddress.IPv6Address(
            (0x2001_0000 + rng.randint(0, 0xFFFF)) << 96 | rng.getrandbits(80)
        )
        canonical = str(addr)
        raw = addr.exploded if rng.random() < 0.3 else canonical
    return "ip", canonical, f" {raw} " if rng.random() < 0.1 else raw, {}


def gen_ip_port(rng: random.Random) -> Sample:
    kind, canonical, _raw, opts = gen_ip(rng)
    port = rng.randint(1024, 65535)
    raw = f"[{canonical}]:{port}" if ":" in canonical else f"{canonical}:{port}"
    return kind, canonical, raw, opts


def gen_email(rng: random.Random) -> Sample:
    first, last = _word(rng, rng.randint(1, 2)), _word(rng, rng.randint(1, 2))
    number = rng.randint(1, 9999)
    local = rng.choice(
        [f"{first}.{last}", f"{first}{last}{number}", f"{last}_{first}{number % 100}", first + last]
    )
    if rng.random() < 0.05:
        local += f"+{_word(rng, 1)}"
    domain = rng.choice(_MAIL_PROVIDERS) if rng.random() < 0.75 else _domain(rng)
    canonical = f"{local}@{domain}"
    r = rng.random()
    if r < 0.1:
        raw = f"{local}[@]{_defang_host(domain)}"
    elif r < 0.3:
        raw = f"{local}@{domain.upper()}"
    elif r < 0.35:
        raw = f"mailto:{canonical}"
    else:
        raw = canonical
    return "email", canonical, raw, {}


def gen_phone(rng: random.Random) -> Sample:
    region, cc, example = rng.choice(_PHONE_REGIONS)
    nsn = example[:-7] + f"{rng.randrange(10**7):07d}"
    national = "0" + nsn
    r = rng.random()
    if r < 0.4:
        raw = f"{national[:4]} {national[4:7]} {national[7:]}"
    elif r < 0.7:
        raw = national
    elif r < 0.85:
        raw = f"+{cc} {nsn[:3]}-{nsn[3:6]}-{nsn[6:]}"
    else:
        raw = f"({national[:4]}) {national[4:]}"
    return "phone", f"+{cc}{nsn}", raw, {"default_region": region}


def gen_domain(rng: random.Random) -> Sample:
    canonical = _domain(rng)
    r = rng.random()
    if r < 0.15:
        raw = _defang_host(canonical)
    elif r < 0.35:
        raw = canonical.upper()
    elif r < 0.4:
        raw = canonical + "."
    else:
        raw = canonical
    return "domain", canonical, raw, {}


def gen_url(rng: random.Random) -> Sample:
    scheme = rng.choice(["https", "https", "http"])
    host = _domain(rng)
    path = "".join(f"/{_word(rng, rng.randint(1, 2))}" for _ in range(rng.randint(0, 3)))
    query = f"?id={rng.randint(1, 10**6)}" if rng.random() < 0.3 else ""
    canonical = f"{scheme}://{host}{path or '/'}{query}"
    r = rng.random()
    if r < 0.35:  # defanged, as threat reports write them
        raw = f"{scheme.replace('tt', 'xx')}://{_defang_host(host)}{path}{query}"
    elif r < 0.5:
        port = 443 if scheme == "https" else 80
        raw = f"{scheme.upper()}://{host.upper()}:{port}{path}{query}#top"
    else:
        raw = canonical
    return "url", canonical, raw, {}


def gen_btc(rng: random.Random) -> Sample:
    version = rng.choice([b"\x00", b"\x00", b"\x05"])
    address = base58.b58encode_check(version + rng.randbytes(20)).decode("ascii")
    raw = f"bitcoin:{address}" if rng.random() < 0.2 else address
    return "crypto", f"btc:{address}", raw, {}


def gen_bech32(rng: random.Random) -> Sample:
    witver, size = rng.choice([(0, 20), (0, 20), (0, 32), (1, 32)])
    address = bech32m.encode("bc", witver, rng.randbytes(size))
    raw = address.upper() if rng.random() < 0.1 else address
    return "crypto", f"btc:{address}", raw, {}


def gen_evm(rng: random.Random) -> Sample:
    body = rng.randbytes(20).hex()
    checksummed = eip55(body)
    raw = checksummed if rng.random() < 0.5 else "0x" + body
    return "crypto", f"evm:{checksummed}", raw, {}


def gen_tron(rng: random.Random) -> Sample:
    address = base58.b58encode_check(b"\x41" + rng.randbytes(20)).decode("ascii")
    return "crypto", f"tron:{address}", address, {}


def gen_iban(rng: random.Random) -> Sample:
    country, pattern = rng.choice(_IBAN_FORMATS)
    pools = {"9": _DIGITS, "A": string.ascii_uppercase, "X": _ALNUM}
    bban = "".join(rng.choice(pools[c]) for c in pattern)
    canonical = country + stdnum_iban.calc_check_digits(country + "00" + bban) + bban
    r = rng.random()
    if r < 0.6:
        raw = " ".join(canonical[i : i + 4] for i in range(0, len(canonical), 4))
    elif r < 0.7:
        raw = "IBAN " + canonical.lower()
    else:
        raw = canonical
    return "bank_account", canonical, raw, {}


def gen_social(rng: random.Random) -> Sample:
    platform = rng.choice(_PLATFORMS)
    if rng.random() < 0.3:
        ident = "1000" + "".join(rng.choice(_DIGITS) for _ in range(11))
        return "social_media", f"{platform}:{ident}", f"{platform.title()}:{ident}", {}
    handle = (
        _word(rng, 2)
        + rng.choice(["", ".", "_"])
        + "".join(rng.choice(_HANDLE) for _ in range(rng.randint(0, 6)))
    )
    canonical = f"{platform}:@{handle}"
    if rng.random() < 0.5:
        return "social_media", canonical, f"@{handle.upper()}", {"platform": platform.title()}
    return "social_media", canonical, f"{platform}:{handle}", {}


def gen_imei(rng: random.Random) -> Sample:
    body = rng.choice(_TACS) + "".join(rng.choice(_DIGITS) for _ in range(6))
    canonical = body + luhn.calc_check_digit(body)
    r = rng.random()
    if r < 0.4:
        raw = f"{canonical[:2]}-{canonical[2:8]}-{canonical[8:14]}-{canonical[14]}"
    elif r < 0.6:
        raw = f"{canonical[:2]} {canonical[2:8]} {canonical[8:14]} {canonical[14]}"
    else:
        raw = canonical
    return "imei", canonical, raw, {}


def gen_imsi(rng: random.Random) -> Sample:
    prefix = rng.choice(_MCC_MNC)
    canonical = prefix + "".join(rng.choice(_DIGITS) for _ in range(15 - len(prefix)))
    mnc_len = len(prefix) - 3
    raw = (
        f"{canonical[:3]} {canonical[3 : 3 + mnc_len]} {canonical[3 + mnc_len :]}"
        if rng.random() < 0.4
        else canonical
    )
    return "imsi", canonical, raw, {}


def gen_hash(rng: random.Random) -> Sample:
    algorithm, bits = rng.choice([("md5", 128), ("sha1", 160), ("sha256", 256), ("sha256", 256)])
    canonical = f"{rng.getrandbits(bits):0{bits // 4}x}"
    r = rng.random()
    if r < 0.3:
        raw = canonical.upper()
    elif r < 0.5:
        raw = f"{algorithm.upper()}:{canonical}"
    else:
        raw = canonical
    return "file_hash", canonical, raw, {}


def gen_plate(rng: random.Random) -> Sample:
    if rng.random() < 0.5:
        province, series = rng.randint(11, 99), rng.choice(string.ascii_uppercase)
        digits = "".join(rng.choice(_DIGITS) for _ in range(5))
        raw = f"vn:{province}{series}-{digits[:3]}.{digits[3:]}"
        return "vehicle_plate", f"VN:{province}{series}{digits}", raw, {}
    letters = "".join(rng.choice(string.ascii_uppercase) for _ in range(5))
    digits = f"{rng.randint(0, 99):02d}"
    canonical = f"{letters[:2]}{digits}{letters[2:]}"
    return "vehicle_plate", canonical, f"{letters[:2].lower()}{digits} {letters[2:]}", {}


def gen_passport(rng: random.Random) -> Sample:
    country = rng.choice(["VN", "TH", "DE", "GB", "MA", "BD", "IN"])
    number = rng.choice(string.ascii_uppercase) + "".join(rng.choice(_DIGITS) for _ in range(7))
    if rng.random() < 0.6:
        return "passport", f"{country}:{number}", f"{country.lower()}: {number.lower()}", {}
    return "passport", number, f"{number[:2]} {number[2:]}", {}


# label -> (generator, share of the stored mix in percent)
GENERATORS: dict[str, tuple[Callable[[random.Random], Sample], int]] = {
    "ip": (gen_ip, 20),
    "ip with port": (gen_ip_port, 5),
    "email": (gen_email, 15),
    "phone (default region)": (gen_phone, 15),
    "domain": (gen_domain, 10),
    "url (35% defanged)": (gen_url, 10),
    "crypto btc base58": (gen_btc, 3),
    "crypto btc bech32": (gen_bech32, 2),
    "crypto evm": (gen_evm, 2),
    "crypto tron": (gen_tron, 1),
    "bank_account IBAN": (gen_iban, 5),
    "social_media": (gen_social, 5),
    "imei": (gen_imei, 2),
    "imsi": (gen_imsi, 1),
    "file_hash": (gen_hash, 2),
    "vehicle_plate": (gen_plate, 1),
    "passport": (gen_passport, 1),
}


def mixed(rng: random.Random) -> Iterator[tuple[str, Sample]]:
    """An endless stream of (label, sample) in the stored mix's proportions."""
    labels = list(GENERATORS)
    weights = [GENERATORS[label][1] for label in labels]
    while True:
        for label in rng.choices(labels, weights, k=10_000):
            yield label, GENERATORS[label][0](rng)


# --- part A: normalisation ------------------------------------------------------------------


def bench_normalize(per_type: int, repeat: int) -> None:
    print(f"== A. normalize(): {per_type:,} values per type, median of {repeat} runs ==")
    total_values, total_seconds = 0, 0.0
    for index, (label, (gen, _share)) in enumerate(GENERATORS.items()):
        rng = random.Random(SEED + index)
        samples = [gen(rng) for _ in range(per_type)]
        wrong = [
            (raw, canonical, got)
            for kind, canonical, raw, opts in samples
            if (got := normalize(kind, raw, **opts).canonical) != canonical
        ]
        timings = []
        for _ in range(repeat):
            started = time.perf_counter()
            for kind, _canonical, raw, opts in samples:
                normalize(kind, raw, **opts)
            timings.append(time.perf_counter() - started)
        seconds = statistics.median(timings)
        total_values += per_type
        total_seconds += seconds
        note = f"  ({len(wrong)} NOT as generated, e.g. {wrong[0]!r})" if wrong else ""
        print(
            f"  {label:<24} {per_type / seconds:>10,.0f} values/s"
            f"  ({seconds / per_type * 1e6:6.1f} µs each){note}"
        )
    print(f"  {'all types':<24} {total_values / total_seconds:>10,.0f} values/s (equal numbers)")


# --- part B: data -----------------------------------------------------------------------------


@dataclass
class Dataset:
    values: list[tuple[Any, ...]]  # id, digest, kind, canonical, related_key, ip_key, flags
    occurrences: list[tuple[Any, ...]]  # id, value_id, record_type, record_id, scope_type,
    #                                     scope_id, owner, raw, source, port, seen_from,
    #                                     seen_until, time_zone
    scopes: dict[bytes, int]  # the floor: digest -> number of scopes holding it
    new_digests: list[bytes]
    overlap: int  # how many of new_digests were taken from the stored values
    rejected: int  # new identifiers normalize() refused (should be 0)
    created: datetime


def build_dataset(stored: int, new: int, overlap: float) -> Dataset:
    rng = random.Random(SEED)
    t0 = time.perf_counter()
    n_overlap = round(new * overlap)
    chosen = set(rng.sample(range(stored), n_overlap)) if n_overlap else set()
    scope_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(200_000)]
    message_ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(300_000)]
    created = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    windows = [
        (created - timedelta(minutes=m), created - timedelta(minutes=m - 5))
        for m in range(60, 60 * 24 * 30, 37)
    ]
    flag_lists: dict[str, list[str]] = {"ip": ["public"], "crypto evm": ["evm"]}
    no_flags: list[str] = []
    sources = ["entered", "imported", "extracted", "received"]
    scopes: dict[bytes, int] = {}
    values: list[tuple[Any, ...]] = []
    occurrences: list[tuple[Any, ...]] = []
    kept: list[tuple[str, str, dict[str, str]]] = []
    stream = mixed(rng)
    position = 0
    while len(values) < stored:
        label, (kind, canonical, raw, opts) = next(stream)
        key = rules.digest(kind, canonical)
        if key in scopes:  # the same value generated twice (a random IPv4 address, say)
            continue
        if position in chosen:
            kept.append((kind, raw, opts))
        position += 1
        value_id = len(values) + 1
        scopes[key] = 1
        is_ip = kind == "ip"
        values.append(
            (
                value_id,
                key,
                kind,
                canonical,
                rules.related_key(kind, canonical),
                rules.ip_key(canonical) if is_ip else None,
                flag_lists.get("ip" if is_ip else label, no_flags),
            )
        )
        scope = scope_ids[rng.randrange(len(scope_ids))]
        on_request = rng.random() < 0.6
        window = windows[rng.randrange(len(windows))] if is_ip else (None, None)
        occurrences.append(
            (
                value_id,
                value_id,
                "request" if on_request else "message",
                scope if on_request else message_ids[rng.randrange(len(message_ids))],
                "request",
                scope,
                rng.randint(1, 60),
                canonical,
                sources[rng.randrange(4)],
                rng.randint(1024, 65535) if label == "ip with port" else None,
                window[0],
                window[1],
                _TIME_ZONES[rng.randrange(len(_TIME_ZONES))] if is_ip else None,
            )
        )
    t1 = time.perf_counter()
    fresh_rng = random.Random(SEED + 1)
    raws = list(kept)
    fresh = mixed(fresh_rng)
    while len(raws) < new:
        _label, (kind, _canonical, raw, opts) = next(fresh)
        raws.append((kind, raw, opts))
    rng.shuffle(raws)
    t2 = time.perf_counter()
    new_digests: list[bytes] = []
    rejected = 0
    for kind, raw, opts in raws:  # pre-normalisation, as the import step would do it
        try:
            norm = normalize(kind, raw, **opts)
        except InvalidIdentifier:
            rejected += 1
            continue
        new_digests.append(rules.digest(norm.kind, norm.canonical))
    t3 = time.perf_counter()
    print(
        f"  data: {stored:,} stored values generated in {t1 - t0:.1f} s; {len(raws):,} new "
        f"identifiers ({len(kept):,} already stored) generated in {t2 - t1:.1f} s and "
        f"normalised in {t3 - t2:.1f} s ({rejected} refused); not timed"
    )
    return Dataset(values, occurrences, scopes, new_digests, len(kept), rejected, created)


# --- part B: loading ----------------------------------------------------------------------------

_VALUE_COLUMNS = "id, digest, kind, canonical, related_key, ip_key, flags, first_seen"
_OCCURRENCE_COLUMNS = (
    "id, value_id, record_type, record_id, scope_type, scope_id, owner_authority_id, raw,"
    " source, port, seen_from, seen_until, time_zone, created_at"
)


def _sqlite_time(value: datetime | None) -> str | None:
    # SQLAlchemy's storage format for DateTime on SQLite (UTC, no offset)
    return None if value is None else value.strftime("%Y-%m-%d %H:%M:%S.%f")


def load_sqlite(url: str, data: Dataset) -> dict[str, float]:
    from crossborder.db.session import make_engine

    created = _sqlite_time(data.created)
    times = {t: _sqlite_time(t) for occ in data.occurrences for t in (occ[10], occ[11]) if t}
    flags_text: dict[int, str] = {}  # the flag lists are shared objects: encode each once
    for v in data.values:
        if id(v[6]) not in flags_text:
            flags_text[id(v[6])] = json.dumps(v[6])
    values = [(*v[:6], flags_text[id(v[6])], created) for v in data.values]
    occurrences = [
        (*o[:10], times.get(o[10]), times.get(o[11]), o[12], created) for o in data.occurrences
    ]
    engine = make_engine(url)
    raw = engine.raw_connection()
    conn = raw.driver_connection
    assert conn is not None
    try:
        started = time.perf_counter()
        tables = ("ident_values", "ident_occurrences")
        indexes = conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            " AND tbl_name IN (?, ?)",
            tables,
        ).fetchall()
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        for table, columns, rows in (
            ("ident_values", _VALUE_COLUMNS, values),
            ("ident_occurrences", _OCCURRENCE_COLUMNS, occurrences),
        ):
            marks = ", ".join("?" * len(rows[0]))
            for start in range(0, len(rows), SQLITE_TXN_ROWS):
                conn.execute("BEGIN")
                conn.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608
                    rows[start : start + SQLITE_TXN_ROWS],
                )
                conn.execute("COMMIT")
        loaded = time.perf_counter()
        for _name, sql in indexes:
            conn.execute(sql)
        conn.execute("ANALYZE")
        done = time.perf_counter()
    finally:
        raw.close()
        engine.dispose()
    return {"insert": loaded - started, "indexes": done - loaded, "total": done - started}


def _pg_connect(url: str) -> Any:
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username or "postgres",
        password=parsed.password,
        dbname=parsed.database or "postgres",
        connect_timeout=5,
    )


def load_postgresql(url: str, data: Dataset) -> dict[str, float]:
    tables = ("ident_values", "ident_occurrences")
    with _pg_connect(url) as conn:
        conn.execute("SET maintenance_work_mem = '1GB'")  # this session only: index builds
        started = time.perf_counter()
        constraints = conn.execute(
            "SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)"
            " FROM pg_constraint WHERE conrelid::regclass::text = ANY(%s) AND contype IN ('u', 'f')"
            " ORDER BY contype DESC",  # u before f: the key before the reference to it
            [list(tables)],
        ).fetchall()
        owned = {c[1] for c in constraints} | {"pk_ident_values", "pk_ident_occurrences"}
        indexes = [
            (name, sql)
            for name, sql in conn.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = ANY(%s)",
                [list(tables)],
            ).fetchall()
            if name not in owned
        ]
        for table, name, _type, _sql in sorted(constraints, key=lambda c: c[2] != "f"):
            conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        for name, _sql in indexes:
            conn.execute(f'DROP INDEX "{name}"')
        with conn.cursor() as cur:
            with cur.copy(
                f"COPY ident_values ({_VALUE_COLUMNS}) FROM STDIN (FORMAT binary)"
            ) as copy:
                copy.set_types(["int8", "bytea", "varchar", "varchar", "bytea", "bytea", "json",
                                "timestamptz"])  # fmt: skip
                created = data.created
                for v in data.values:
                    copy.write_row((*v, created))
            with cur.copy(
                f"COPY ident_occurrences ({_OCCURRENCE_COLUMNS}) FROM STDIN (FORMAT binary)"
            ) as copy:
                copy.set_types(["int8", "int8", "varchar", "varchar", "varchar", "varchar",
                                "int4", "varchar", "varchar", "int4", "timestamptz",
                                "timestamptz", "varchar", "timestamptz"])  # fmt: skip
                for o in data.occurrences:
                    copy.write_row((*o, created))
        conn.commit()
        loaded = time.perf_counter()
        for table, name, _type, sql in constraints:
            if _type == "u":
                conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {sql}')
        for _name, sql in indexes:
            conn.execute(sql)
        for table, name, _type, sql in constraints:
            if _type == "f":
                conn.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {sql}')
        for table in tables:
            conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608 - ours
                f" (SELECT max(id) FROM {table}))"
            )
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM (ANALYZE) ident_values")
        conn.execute("VACUUM (ANALYZE) ident_occurrences")
        done = time.perf_counter()
    return {"insert": loaded - started, "indexes": done - loaded, "total": done - started}


# --- part B: correlating ------------------------------------------------------------------------


def correlate_db(
    url: str, digests: Sequence[bytes], repeat: int
) -> tuple[list[float], dict[bytes, int]]:
    from crossborder.db.session import make_engine, make_session_factory
    from crossborder.selectors import bulk

    engine = make_engine(url)
    factory = make_session_factory(engine)
    timings: list[float] = []
    found: dict[bytes, int] = {}
    try:
        for _ in range(repeat):
            with factory() as session:
                session.connection()  # the transaction is open before the clock starts
                started = time.perf_counter()
                found = bulk.known_counts(session, digests)
                timings.append(time.perf_counter() - started)
                session.rollback()
    finally:
        engine.dispose()
    return timings, found


def correlate_dict(
    table: dict[bytes, int], digests: Sequence[bytes], repeat: int
) -> tuple[list[float], dict[bytes, int]]:
    timings: list[float] = []
    found: dict[bytes, int] = {}
    for _ in range(repeat):
        started = time.perf_counter()
        get = table.get
        found = {d: n for d in digests if (n := get(d)) is not None}
        timings.append(time.perf_counter() - started)
    return timings, found


def _size(path: Path) -> str:
    total = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return f"{total / 2**30:.2f} GiB"


def bench_backend(backend: str, data: Dataset, args: argparse.Namespace, tmp: Path) -> None:
    from crossborder.db.migrate import upgrade

    n_stored, n_new = len(data.values), len(data.new_digests)
    print(f"== B. {backend}: {n_stored:,} stored, {n_new:,} new ({data.overlap:,} stored) ==")
    admin_url = args.database_url
    temp_db = None
    try:
        if backend == "sqlite":
            path = tmp / "identifiers.sqlite3"
            url = f"sqlite:///{path}"
        else:
            from sqlalchemy.engine import make_url

            temp_db = f"bench_identifiers_{os.getpid()}"
            with _pg_connect(admin_url) as conn:
                conn.autocommit = True
                conn.execute(f'CREATE DATABASE "{temp_db}"')
            url = make_url(admin_url).set(database=temp_db).render_as_string(hide_password=False)
        upgrade(url)
        load = (load_sqlite if backend == "sqlite" else load_postgresql)(url, data)
        rows = 2 * n_stored
        size = _size(path) if backend == "sqlite" else _pg_size(url)
        print(
            f"  load: {n_stored / load['total']:,.0f} values/s ({rows / load['total']:,.0f} rows/s,"
            f" value + occurrence) — {load['total']:.1f} s: insert {load['insert']:.1f} s,"
            f" indexes + analyze {load['indexes']:.1f} s; database {size}"
        )
        gc.collect()
        db_times, db_found = correlate_db(url, data.new_digests, args.repeat)
        dict_times, dict_found = correlate_dict(data.scopes, data.new_digests, args.repeat)
        db_s, dict_s = statistics.median(db_times), statistics.median(dict_times)
        spread = ", ".join(f"{t:.2f}" for t in db_times)
        print(
            f"  correlate (bulk.known_counts): {n_new / db_s:,.0f} identifiers/s"
            f" — {db_s:.3f} s, median of {len(db_times)} (runs: {spread} s)"
        )
        print(
            f"  floor (dict lookup):          {n_new / dict_s:,.0f} identifiers/s — {dict_s:.4f} s"
        )
        print(f"  ratio DB/dict: {db_s / dict_s:,.0f}x the time of the dict")
        same = "equal" if db_found == dict_found else "DIFFERENT"
        print(
            f"  hits: DB {len(db_found):,}, dict {len(dict_found):,} (results {same}):"
            f" {data.overlap:,} taken from the stored values, the other"
            f" {len(dict_found) - data.overlap:,} new values that happened to be stored too"
        )
    finally:
        if temp_db is not None:
            with _pg_connect(admin_url) as conn:
                conn.autocommit = True
                conn.execute(f'DROP DATABASE IF EXISTS "{temp_db}" WITH (FORCE)')


def _pg_size(url: str) -> str:
    with _pg_connect(url) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    return f"{row[0] / 2**30:.2f} GiB"


def _pg_reachable(url: str) -> bool:
    try:
        with _pg_connect(url) as conn:
            conn.execute("SELECT 1")
    except Exception:  # any failure means "not here"
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-type", type=int, default=20_000, help="part A: values per type")
    parser.add_argument("--stored", type=int, default=10_000_000)
    parser.add_argument("--new", type=int, default=1_000_000)
    parser.add_argument("--overlap", type=float, default=0.1)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--database-url", default=DEFAULT_PG_URL, help="PostgreSQL maintenance URL")
    parser.add_argument("--skip-normalize", action="store_true", help="part B only")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # nohup > file
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(backends) <= {"sqlite", "postgresql"}:
        raise SystemExit("--backends: sqlite, postgresql or both")
    if not (0 <= args.overlap <= 1 and args.overlap * args.new <= args.stored):
        raise SystemExit("--overlap must be in 0..1 and overlap * new <= stored")
    if args.per_type < 1 or args.stored < 1 or args.new < 1 or args.repeat < 1:
        raise SystemExit("--per-type, --stored, --new and --repeat must be positive")
    print(f"python {sys.version.split()[0]}, seed {SEED}")
    if not args.skip_normalize:
        bench_normalize(args.per_type, 3)
    if "postgresql" in backends and not _pg_reachable(args.database_url):
        print(f"== B. postgresql: PostgreSQL not reachable at {args.database_url}: skipped ==")
        backends.remove("postgresql")
    if not backends:
        return
    print(f"== B. correlation: building {args.stored:,} stored + {args.new:,} new identifiers ==")
    data = build_dataset(args.stored, args.new, args.overlap)
    # Tens of millions of row tuples stay alive for the whole run: keep the cyclic garbage
    # collector from walking them all during a timed section (of either the DB or the dict).
    gc.collect()
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="cb-bench-ident-") as tmp:
        for backend in backends:
            bench_backend(backend, data, args, Path(tmp))


if __name__ == "__main__":
    main()

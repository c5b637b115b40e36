"""`crossborder matching` as a real process, against the demo node (Viet Nam's MPS).

In the demo directory Morocco's BNPJ is served by its own node with a trafficking MoU in
force with Viet Nam: Linh (A05 officer) may ask it about trafficking, nobody else.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from crossborder.directory.models import Authority
from crossborder.federation.models import OutboxMessage
from crossborder.matching.models import MatchQuery
from tests.cli.conftest import node_env

__all__ = ["node_env"]

Run = Callable[..., subprocess.CompletedProcess[str]]
ASK = (
    "matching",
    "ask",
    "--as",
    "linh",
    "--purpose",
    "Trafficking ring recruiting online: does the partner know them?",
    "--case",
    "A05-TIP-2026-9",
    "--offence",
    "TRAFFICKING_IN_PERSONS:20",
)


@pytest.fixture
def demo(node_env: dict[str, str]) -> Run:
    def _run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crossborder.cli.main", *args],
            env=node_env,
            capture_output=True,
            text=True,
            encoding="utf-8",
            timeout=300,
            check=False,
        )

    loaded = _run("demo")
    assert loaded.returncode == 0, loaded.stderr
    return _run


@contextmanager
def _db(node_env: dict[str, str]) -> Iterator[Session]:
    engine = create_engine(node_env["CROSSBORDER_DATABASE_URL"])
    try:
        with Session(engine) as session:
            yield session
    finally:
        engine.dispose()


def _ids(node_env: dict[str, str]) -> dict[str, int]:
    with _db(node_env) as s:
        return {str(a.short_name): a.id for a in s.scalars(select(Authority)).unique()}


def _one_error(result: subprocess.CompletedProcess[str], code: int) -> str:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert result.stderr.startswith("crossborder: error: ")
    assert result.stderr.count("\n") == 1
    return result.stderr


def test_ask_list_show(demo: Run, node_env: dict[str, str], tmp_path: Path) -> None:
    csv_file = tmp_path / "case.csv"
    csv_file.write_text(
        "type,value,port,seen_from,seen_until\n"
        "ip,103.27.12.7,51234,2026-11-20T10:05:00+07:00,2026-11-20T10:20:00+07:00\n",
        encoding="utf-8",
    )
    asked = demo(
        *ASK,
        "--identifier",
        "phone:+84 91 234 5678",
        "--identifier",
        "email:recruiter.jobs@example.com",
        "--file",
        str(csv_file),
        "--partner",
        "MA-BNPJ",
    )
    assert asked.returncode == 0, asked.stderr
    first, *lines = asked.stdout.splitlines()
    assert first.startswith("query ")
    assert ": 3 identifiers, " in first  # and the elements (an IP adds its hour)
    query_id = first.split()[1].rstrip(":")
    assert lines == ["asked\tMA-BNPJ\tVN-MA-TIP-MOU"]
    with _db(node_env) as s:
        [message] = s.scalars(select(OutboxMessage).where(OutboxMessage.type == "match.query"))
        wire = orjson.dumps(message.body).decode()
        assert message.body["case_reference"] == "A05-TIP-2026-9"
        query = s.scalars(select(MatchQuery)).one()
        assert query.offences == [{"code": "TRAFFICKING_IN_PERSONS", "max_penalty_years": 20.0}]
    for secret in ("84912345678", "234 5678", "recruiter.jobs", "103.27.12.7"):
        assert secret not in wire

    listed = demo("matching", "queries", "--as", "minh")
    assert listed.returncode == 0, listed.stderr
    [row] = listed.stdout.splitlines()
    assert row.startswith(f"{query_id}\t")
    assert row.endswith("\tA05-TIP-2026-9\t1 partners: 0 answered, 0 refused, 1 waiting\t0 hits")
    assert demo("matching", "queries", "--as", "thu").stdout == ""  # another authority

    shown = demo("matching", "show", query_id, "--as", "linh")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == [
        f"query {query_id}\tcase A05-TIP-2026-9",
        "purpose: Trafficking ring recruiting online: does the partner know them?",
        "partner\tMA-BNPJ\twaiting\tVN-MA-TIP-MOU\t0 hits",
    ]
    assert "no such query" in _one_error(demo("matching", "show", query_id, "--as", "thu"), 1)

    everyone = demo(*ASK, "--identifier", "phone:+84912345678")
    assert everyone.returncode == 0, everyone.stderr
    assert "asked\tMA-BNPJ\tVN-MA-TIP-MOU" in everyone.stdout.splitlines()
    assert any(line.startswith("not asked\t") for line in everyone.stdout.splitlines())


BAD_ASKS: list[tuple[tuple[str, ...], int, str]] = [
    (("--identifier", "nocolon"), 2, "kind:value"),
    (("--identifier", "shoe:42"), 2, "unknown kind"),
    (("--offence", "SHOPLIFTING", "--identifier", "phone:+84912345678"), 2, "offence"),
    ((), 2, "give --file, --request, --set or --identifier"),
    (("--identifier", "phone:not a phone"), 1, "identifier 1"),
    (("--identifier", "phone:+84912345678", "--partner", "AU-AFP"), 1, "partner node"),
    (("--identifier", "phone:+84912345678", "--file", "/nonexistent.csv"), 1, "no such file"),
    (("--set", "no-such-set"), 1, "no such identifier set"),
]


def test_bad_asks_print_one_line_and_send_nothing(demo: Run, node_env: dict[str, str]) -> None:
    for args, code, message in BAD_ASKS:
        result = demo(*ASK, *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert message in result.stderr, args
        assert result.stdout == ""
    with _db(node_env) as s:
        assert s.scalars(select(OutboxMessage)).all() == []


def test_who_may_not_ask(demo: Run) -> None:
    for user in ("an", "admin", "hoa"):
        refused = _one_error(demo(*ASK, "--identifier", "phone:+84912345678", "--as", user), 1)
        assert "matching:query" in refused
    short = demo(*ASK[:5], "short", *ASK[6:], "--identifier", "phone:+84912345678")
    assert "say why you ask" in _one_error(short, 1)
    basisless = demo(*ASK, "--identifier", "phone:+84912345678", "--partner", "UNODC-ROSEAP")
    assert "no legal basis" in _one_error(basisless, 1)


def test_refresh_policy_block_and_optout(
    demo: Run, node_env: dict[str, str], tmp_path: Path
) -> None:
    ids = _ids(node_env)
    csv_file = tmp_path / "set.csv"
    csv_file.write_text("type,value\nphone,+84 91 234 5678\nemail,a@example.com\n", "utf-8")
    imported = demo("identifiers", "import", str(csv_file), "--as", "linh", "--set", "Case 9")
    assert imported.returncode == 0, imported.stderr
    set_id = imported.stdout.split()[1].rstrip(":")

    everything = demo("matching", "refresh")
    assert everything.returncode == 0, everything.stderr
    lines = everything.stdout.splitlines()
    assert len(lines) == 5  # the demo node serves five authorities
    [a05] = [line for line in lines if line.startswith("VN-A05: ")]
    assert " 0 removed, 1 segments built (1 in all), " in a05
    assert a05.endswith(" s")
    elements = int(a05.split()[1])
    assert elements >= 2
    again = demo("matching", "refresh", "--authority", "VN-A05")
    assert again.stdout.startswith(f"VN-A05: {elements} elements, 0 added, 0 removed, 0 segments")
    assert "not served" in _one_error(demo("matching", "refresh", "--authority", "MA-BNPJ"), 1)

    kept = demo("matching", "optout", "set", set_id, "--as", "linh", "--reason", "informant")
    assert kept.stdout == f"kept out: set {set_id} (from the next refresh)\n", kept.stderr
    after = demo("matching", "refresh", "--authority", str(ids["VN-A05"]))
    assert f", 0 added, {elements - int(after.stdout.split()[1])} removed" in after.stdout
    assert int(after.stdout.split()[1]) < elements
    assert "no such set" in _one_error(demo("matching", "optout", "set", set_id, "--as", "jack"), 1)
    back = demo("matching", "optout", "set", set_id, "--as", "linh", "--remove")
    assert back.stdout == f"offered again: set {set_id}\n"
    assert "not kept out" in _one_error(
        demo("matching", "optout", "set", set_id, "--as", "linh", "--remove"), 1
    )
    assert demo("matching", "optout", "intel", "x", "--as", "linh").returncode == 2

    shown = demo("matching", "policy", "VN-A05", "--as", "admin")
    assert shown.stdout == (
        "VN-A05: answers yes; never offers: nothing; largest query 100000 elements; "
        "per partner in 24 h: 50 queries, 500000 elements\n"
    )
    changed = demo(
        "matching",
        "policy",
        str(ids["VN-A05"]),
        "--no-answers",
        "--exclude-kind",
        "phone",
        "--exclude-kind",
        "email",
        "--daily-queries",
        "5",
        "--as",
        "admin",
    )
    assert changed.stdout == (
        "VN-A05: answers no; never offers: email, phone; largest query 100000 elements; "
        "per partner in 24 h: 5 queries, 500000 elements\n"
    ), changed.stderr
    assert "matching:manage" in _one_error(
        demo("matching", "policy", "VN-A05", "--no-answers", "--as", "linh"), 1
    )
    assert (
        demo("matching", "policy", "VN-A05", "--exclude-kind", "shoe", "--as", "admin").returncode
        == 2
    )
    assert "not served" in _one_error(demo("matching", "policy", "MA-BNPJ", "--as", "admin"), 1)

    blocked = demo("matching", "block", "VN-A05", "MA-BNPJ", "--as", "admin")
    assert blocked.stdout == "VN-A05 blocks MA-BNPJ\n", blocked.stderr
    unblocked = demo("matching", "block", "VN-A05", "MA-BNPJ", "--unblock", "--as", "admin")
    assert unblocked.stdout == "VN-A05 answers MA-BNPJ\n"
    assert "another node" in _one_error(
        demo("matching", "block", "VN-A05", "VN-SPP", "--as", "admin"), 1
    )
    assert "matching:manage" in _one_error(
        demo("matching", "block", "VN-A05", "MA-BNPJ", "--as", "linh"), 1
    )

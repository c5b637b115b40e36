"""TAXII feeds against a real TAXII 2.1 server: the OASIS reference server (medallion) started
on a loopback port, with its memory backend; and the feed and MISP commands as processes."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from crossborder.auth.permissions import Principal, Role
from crossborder.core.clock import utc_now
from crossborder.core.errors import Conflict, InvalidInput, PermissionDenied
from crossborder.directory.models import Authority
from crossborder.intel import feeds, service, stix
from crossborder.intel.markings import TLP2_IDS, Tlp
from crossborder.intel.models import IntelCollection, IntelFeed, IntelObject
from crossborder.settings import Settings

USER, PASSWORD = "admin", "Password0"
SOURCE_ID = "91a7b528-80eb-42ed-a74d-c6fbd5a26116"  # what partners publish: we pull it
INBOX_ID = "472c94ae-3113-4e3e-a4dd-a9f4ac7471d4"  # the partner's inbox: we push to it
MEDIA = "application/taxii+json;version=2.1"


# --- a real TAXII server ------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Medallion:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def api_root(self) -> str:
        return f"{self.base}/api1/"

    def collection(self, collection_id: str) -> Any:
        from taxii2client.v21 import Collection

        return Collection(
            f"{self.api_root}collections/{collection_id}/", user=USER, password=PASSWORD
        )

    def add(self, collection_id: str, objects: list[dict[str, Any]]) -> None:
        with self.collection(collection_id) as target:
            status = target.add_objects({"objects": objects})
        assert status.success_count == len(objects), status.failures

    def objects(self, collection_id: str) -> list[dict[str, Any]]:
        from taxii2client.v21 import as_pages

        found: list[dict[str, Any]] = []
        with self.collection(collection_id) as source:
            for page in as_pages(source.get_objects, per_request=100):
                found.extend(page.get("objects", []))
        return found

    def ids(self, collection_id: str) -> set[str]:
        """What the collection holds, by its manifest (medallion 3.0 cannot list the objects
        of a collection holding an extension definition: it reads their ``version`` property,
        "1.0.0", as a timestamp and fails with HTTP 500)."""
        from taxii2client.v21 import as_pages

        found: set[str] = set()
        with self.collection(collection_id) as source:
            for page in as_pages(source.get_manifest, per_request=100):
                found.update(entry["id"] for entry in page.get("objects", []))
        return found


def _collection(collection_id: str, title: str) -> dict[str, Any]:
    return {
        "id": collection_id,
        "title": title,
        "description": "",
        "can_read": True,
        "can_write": True,
        "media_types": ["application/stix+json;version=2.1"],
        "objects": [],
        "manifest": [],
    }


@pytest.fixture
def medallion(tmp_path: Path) -> Iterator[Medallion]:
    executable = shutil.which("medallion", path=str(Path(sys.executable).parent))
    if executable is None:  # pragma: no cover - medallion is a dev dependency
        pytest.skip("medallion (the OASIS TAXII server) is not installed")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data = {
        "/discovery": {
            "title": "partner TAXII",
            "description": "",
            "contact": "",
            "default": f"{base}/api1/",
            "api_roots": [f"{base}/api1/"],
        },
        "api1": {
            "information": {
                "title": "partner API root",
                "description": "",
                "versions": [MEDIA],
                "max_content_length": 9765625,
            },
            "status": [],
            "collections": [
                _collection(SOURCE_ID, "published indicators"),
                _collection(INBOX_ID, "inbox"),
            ],
        },
    }
    (tmp_path / "medallion-data.json").write_text(json.dumps(data))
    config = {
        "backend": {
            "module": "medallion.backends.memory_backend",
            "module_class": "MemoryBackend",
            "filename": str(tmp_path / "medallion-data.json"),
        },
        "users": {USER: PASSWORD},
        "taxii": {"max_page_size": 100},
    }
    (tmp_path / "medallion-config.json").write_text(json.dumps(config))
    log = tmp_path / "medallion.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                executable,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                str(tmp_path / "medallion-config.json"),
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    server = Medallion(base, process, log)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                answer = httpx.get(
                    f"{base}/taxii2/", auth=(USER, PASSWORD), headers={"Accept": MEDIA}
                )
                if answer.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"medallion did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:  # pragma: no cover
            process.kill()
            process.wait(timeout=5)


# --- STIX content --------------------------------------------------------------------------


def indicator(name: str, ip: str, level: Tlp | None, **extra: Any) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "type": "indicator",
        "spec_version": "2.1",
        "id": f"indicator--{uuid.uuid4()}",
        "created": "2026-02-01T08:00:00.000Z",
        "modified": "2026-02-01T08:00:00.000Z",
        "name": name,
        "pattern": f"[ipv4-addr:value = '{ip}']",
        "pattern_type": "stix",
        "valid_from": "2026-02-01T08:00:00Z",
        **extra,
    }
    if level is not None:
        obj["object_marking_refs"] = [TLP2_IDS[level]]
    return obj


# --- the local side ----------------------------------------------------------------------------


def factory_for(db: Session) -> Callable[[], Session]:
    def make() -> Session:
        return Session(
            bind=db.get_bind(), join_transaction_mode="create_savepoint", expire_on_commit=False
        )

    return make


@pytest.fixture
def admin(make_principal: Callable[..., Principal]) -> Principal:
    return make_principal(Role.ADMINISTRATOR)


@pytest.fixture
def analyst(make_principal: Callable[..., Principal], admin: Principal) -> Principal:
    return make_principal(Role.ANALYST, authority_id=admin.authority_id)


@pytest.fixture
def local(db: Session, admin: Principal) -> IntelCollection:
    return service.create_collection(db, admin, title="Partner intelligence", alias="partners")


@pytest.fixture
def partner_authority(make_authority: Callable[..., Authority]) -> int:
    """A partner authority in the directory (committed: it outlives a refused call's rollback)."""
    return make_authority(None, name="Partner Cyber Police", short_name="PCP").id


def add_pull(
    db: Session,
    admin: Principal,
    settings: Settings,
    server: Medallion,
    collection: IntelCollection,
    *,
    name: str = "partner-pull",
    password: str = PASSWORD,
    **extra: Any,
) -> IntelFeed:
    return feeds.add_feed(
        db,
        admin,
        secret_key=settings.secret_key,
        name=name,
        direction="pull",
        api_root_url=server.api_root,
        remote_collection_id=SOURCE_ID,
        collection=collection,
        auth_kind="basic",
        user=USER,
        secret=password,
        interval_minutes=30,
        **extra,
    )


def rows_of(db: Session, collection: IntelCollection) -> list[IntelObject]:
    return list(
        db.scalars(
            select(IntelObject)
            .where(IntelObject.collection_id == collection.id)
            .order_by(IntelObject.date_added)
        )
    )


# --- pull ------------------------------------------------------------------------------------


def test_pull_brings_objects_in_then_only_what_is_new(
    db: Session, admin: Principal, settings: Settings, local: IntelCollection, medallion: Medallion
) -> None:
    published = [
        indicator("scam shop", "198.51.100.1", Tlp.CLEAR),
        indicator("phishing kit host", "198.51.100.2", Tlp.CLEAR),
        indicator("mule recruiter", "198.51.100.3", Tlp.GREEN),
        indicator("undercover lead", "198.51.100.4", Tlp.RED),
    ]
    medallion.add(SOURCE_ID, published)
    feed = add_pull(db, admin, settings, medallion, local)
    factory = factory_for(db)

    stats = feeds.run_due(settings, factory)
    assert stats["intel_feeds_run"] == 1
    assert stats["intel_feeds_failed"] == 0
    assert stats["intel_pulled_stored"] == 4
    db.refresh(feed)
    assert feed.last_outcome is not None
    assert feed.last_outcome.startswith("ok: pulled 4: stored 4")
    assert feed.cursor  # X-TAXII-Date-Added-Last
    rows = rows_of(db, local)
    assert {r.stix_id for r in rows} == {o["id"] for o in published}
    assert {r.origin_authority_id for r in rows} == {feeds.OUTSIDE_SOURCE}  # not ours to pass on
    assert sorted(r.tlp for r in rows) == ["clear", "clear", "green", "red"]
    assert {r.added_by_label for r in rows} == {"feed partner-pull"}

    # not due yet: nothing runs
    assert feeds.run_due(settings, factory)["intel_feeds_run"] == 0

    late = indicator("new drop server", "198.51.100.5", Tlp.GREEN)
    medallion.add(SOURCE_ID, [late])
    later = utc_now() + timedelta(minutes=31)
    stats = feeds.run_due(settings, factory, now=later)
    assert stats["intel_feeds_run"] == 1
    assert stats["intel_pulled_stored"] == 1
    db.refresh(feed)
    assert feed.last_outcome == "ok: pulled 1: stored 1, already present 0, invalid 0"
    assert {r.stix_id for r in rows_of(db, local)} == {o["id"] for o in [*published, late]}


def test_pull_follows_the_pages(
    db: Session, admin: Principal, settings: Settings, local: IntelCollection, medallion: Medallion
) -> None:
    many = [indicator(f"host {i}", f"10.0.{i // 250}.{i % 250}", Tlp.GREEN) for i in range(230)]
    medallion.add(SOURCE_ID, many)  # the server's pages hold 100
    feed = add_pull(db, admin, settings, medallion, local)
    (run,) = feeds.run_feeds(settings, factory_for(db), due_only=False)
    assert (run.ok, run.received, run.stored) == (True, 230, 230), run.error
    db.refresh(feed)
    assert feed.cursor is not None
    assert stix.parse_timestamp(feed.cursor) is not None
    (again,) = feeds.run_feeds(settings, factory_for(db), due_only=False)
    assert (again.ok, again.received) == (True, 0)


def test_pulled_objects_keep_the_partner_authority_as_origin(
    db: Session,
    admin: Principal,
    settings: Settings,
    local: IntelCollection,
    medallion: Medallion,
    partner_authority: int,
) -> None:
    medallion.add(SOURCE_ID, [indicator("a", "192.0.2.10", Tlp.AMBER)])
    add_pull(db, admin, settings, medallion, local, origin_authority_id=partner_authority)
    feeds.run_due(settings, factory_for(db))
    assert {r.origin_authority_id for r in rows_of(db, local)} == {partner_authority}


def test_invalid_objects_are_counted_not_stored(
    db: Session, admin: Principal, settings: Settings, local: IntelCollection, medallion: Medallion
) -> None:
    broken = indicator("bad pattern", "192.0.2.1", Tlp.CLEAR)
    broken["pattern"] = "[ipv4-addr:value = "
    medallion.add(SOURCE_ID, [indicator("fine", "192.0.2.2", Tlp.CLEAR), broken])
    feed = add_pull(db, admin, settings, medallion, local)
    stats = feeds.run_due(settings, factory_for(db))
    assert stats["intel_feeds_failed"] == 0
    db.refresh(feed)
    assert feed.last_outcome == "ok: pulled 2: stored 1, already present 0, invalid 1"
    assert len(rows_of(db, local)) == 1


def test_a_wrong_password_is_recorded_and_the_other_feed_still_runs(
    db: Session, admin: Principal, settings: Settings, local: IntelCollection, medallion: Medallion
) -> None:
    medallion.add(SOURCE_ID, [indicator("x", "203.0.113.9", Tlp.GREEN)])
    bad = add_pull(db, admin, settings, medallion, local, name="a-bad", password="wrong")
    good = add_pull(db, admin, settings, medallion, local, name="b-good")
    unreachable = feeds.add_feed(
        db,
        admin,
        secret_key=settings.secret_key,
        name="c-down",
        direction="pull",
        api_root_url=f"http://127.0.0.1:{free_port()}/api1/",
        remote_collection_id=SOURCE_ID,
        collection=local,
    )
    stats = feeds.run_due(settings, factory_for(db))
    assert stats["intel_feeds_run"] == 3
    assert stats["intel_feeds_failed"] == 2
    assert stats["intel_pulled_stored"] == 1
    for feed in (bad, good, unreachable):
        db.refresh(feed)
    assert bad.last_outcome is not None
    assert bad.last_outcome.startswith("failed: HTTP 401 (credentials refused)")
    assert PASSWORD not in bad.last_outcome
    assert good.last_outcome is not None
    assert good.last_outcome.startswith("ok: pulled 1")
    assert unreachable.last_outcome is not None
    assert unreachable.last_outcome.startswith("failed: the server could not be reached")
    for feed in (bad, good, unreachable):  # all rescheduled, failures included
        assert feed.last_run_at is not None
        assert feed.next_run_at is not None
        assert feed.next_run_at > feed.last_run_at
    audited = db.execute(
        text("SELECT outcome, reason FROM audit_events WHERE action = 'intel.feed_run'")
    ).all()
    assert sorted(o for o, _ in audited) == ["failed", "failed", "ok"]


# --- push ------------------------------------------------------------------------------------


def test_push_sends_only_what_may_be_passed_on(
    db: Session,
    admin: Principal,
    analyst: Principal,
    settings: Settings,
    local: IntelCollection,
    medallion: Medallion,
    partner_authority: int,
) -> None:
    ours = {
        "clear": indicator("ours clear", "192.0.2.1", Tlp.CLEAR),
        "green": indicator("ours green", "192.0.2.2", Tlp.GREEN),
        "amber": indicator("ours amber", "192.0.2.3", Tlp.AMBER),
        "red": indicator("ours red", "192.0.2.4", Tlp.RED),
        "strict": indicator("ours amber+strict", "192.0.2.5", Tlp.AMBER_STRICT),
    }
    received = {
        "clear": indicator("theirs clear", "192.0.2.11", Tlp.CLEAR),
        "amber": indicator("theirs amber", "192.0.2.12", Tlp.AMBER),
        "unmarked": indicator("theirs unmarked", "192.0.2.13", None),
        "red": indicator("theirs red", "192.0.2.14", Tlp.RED),
    }
    service.add_objects(db, analyst, local, list(ours.values()))
    service.add_objects(
        db, analyst, local, list(received.values()), origin_authority_id=partner_authority
    )
    feed = feeds.add_feed(
        db,
        admin,
        secret_key=settings.secret_key,
        name="to-vendor",
        direction="push",
        api_root_url=medallion.api_root,
        remote_collection_id=INBOX_ID,
        collection="partners",
        auth_kind="basic",
        user=USER,
        secret=PASSWORD,
    )
    stats = feeds.run_due(settings, factory_for(db))
    assert stats["intel_feeds_failed"] == 0
    assert stats["intel_pushed"] == 4
    assert stats["intel_push_withheld"] == 5
    sent = medallion.objects(INBOX_ID)
    sent_ids = {o["id"] for o in sent if o["type"] == "indicator"}
    assert sent_ids == {ours["clear"]["id"], ours["green"]["id"], ours["amber"]["id"]} | {
        received["clear"]["id"]
    }
    # the marking definitions the objects name travel with them
    definitions = {o["id"] for o in sent if o["type"] == "marking-definition"}
    assert {TLP2_IDS[Tlp.CLEAR], TLP2_IDS[Tlp.GREEN], TLP2_IDS[Tlp.AMBER]} <= definitions
    db.refresh(feed)
    assert feed.last_outcome is not None
    assert feed.last_outcome.startswith("ok: pushed 4 of 9 new; withheld 5 (")
    assert "TLP:AMBER may not be passed on by a recipient: 2" in feed.last_outcome
    assert "TLP:RED is for its named recipients only: 1" in feed.last_outcome  # ours, unnamed
    assert "TLP:RED may not be passed on by a recipient: 1" in feed.last_outcome

    # incremental: only what was added since goes
    later = indicator("ours later", "192.0.2.6", Tlp.GREEN)
    service.add_objects(db, analyst, local, [later])
    stats = feeds.run_feeds(settings, factory_for(db), names=["to-vendor"], due_only=False)
    assert [(r.considered, r.sent, r.withheld_count) for r in stats] == [(1, 1, 0)]
    assert later["id"] in {o["id"] for o in medallion.objects(INBOX_ID)}


def test_push_to_a_directory_authority_lets_its_red_through(
    db: Session,
    admin: Principal,
    analyst: Principal,
    settings: Settings,
    local: IntelCollection,
    medallion: Medallion,
    partner_authority: int,
) -> None:
    handling = stix.handling_marking(recipients=(partner_authority,), codes=("H0",))
    named_red = indicator(
        "for the partner only",
        "192.0.2.40",
        None,
        object_marking_refs=[TLP2_IDS[Tlp.RED], handling["id"]],
    )
    other_red = indicator("not for them", "192.0.2.41", Tlp.RED)
    service.add_objects(db, analyst, local, [handling, named_red, other_red])
    feeds.add_feed(
        db,
        admin,
        secret_key=settings.secret_key,
        name="to-pcp",
        direction="push",
        api_root_url=medallion.api_root,
        remote_collection_id=INBOX_ID,
        collection=local,
        auth_kind="basic",
        user=USER,
        secret=PASSWORD,
        origin_authority_id=partner_authority,
    )
    (run,) = feeds.run_feeds(settings, factory_for(db), due_only=False)
    assert run.ok, run.error
    sent = medallion.ids(INBOX_ID)
    assert named_red["id"] in sent
    assert other_red["id"] not in sent
    assert handling["id"] in sent  # the marking that names the recipient goes along


# --- credentials and validation -------------------------------------------------------------


def test_secrets_are_stored_encrypted(
    db: Session, admin: Principal, settings: Settings, local: IntelCollection, medallion: Medallion
) -> None:
    feed = add_pull(db, admin, settings, medallion, local, password="s3cr3t-Pa55word")
    raw = db.execute(text("SELECT secret FROM intel_feeds WHERE id = :id"), {"id": feed.id})
    stored = raw.scalar_one()
    assert "s3cr3t-Pa55word" not in stored
    assert USER not in stored
    assert feeds.decrypt_secret(settings.secret_key, stored) == f"{USER}:s3cr3t-Pa55word"
    credentials = feeds.credentials_of(settings.secret_key, feed)
    assert (credentials.user, credentials.secret) == (USER, "s3cr3t-Pa55word")
    assert "s3cr3t" not in repr(credentials)
    with pytest.raises(feeds.FeedSecretUnreadableError):
        feeds.decrypt_secret("another-secret-key-" + "y" * 40, stored)
    audit = db.execute(
        text("SELECT details FROM audit_events WHERE action = 'intel.feed_added'")
    ).scalar_one()
    assert "s3cr3t" not in json.dumps(audit)


def test_a_changed_secret_key_fails_the_feed_clearly(
    db: Session, admin: Principal, settings: Settings, local: IntelCollection, medallion: Medallion
) -> None:
    feed = add_pull(db, admin, settings, medallion, local)
    rotated = settings.model_copy(update={"secret_key": "rotated-key-" + "z" * 40})
    stats = feeds.run_due(rotated, factory_for(db))
    assert stats["intel_feeds_failed"] == 1
    db.refresh(feed)
    assert feed.last_outcome is not None
    assert "cannot be decrypted" in feed.last_outcome


def test_bearer_tokens_go_as_bearer() -> None:
    import requests

    prepared = requests.Request("GET", "https://taxii.example/api1/").prepare()
    feeds.BearerAuth("tok-123")(prepared)
    assert prepared.headers["Authorization"] == "Bearer tok-123"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"api_root_url": "ftp://taxii.example/api1/"}, "api_root_url"),
        ({"api_root_url": "https://u:p@taxii.example/api1/"}, "api_root_url"),
        ({"api_root_url": "https://taxii.example/api1/?x=1"}, "api_root_url"),
        ({"direction": "both"}, "direction"),
        ({"remote_collection_id": "../etc"}, "remote_collection_id"),
        ({"interval_minutes": 0}, "interval_minutes"),
        ({"auth_kind": "basic", "user": "a:b", "secret": "x"}, "user"),
        ({"auth_kind": "basic", "user": "a"}, "secret"),
        ({"auth_kind": "bearer", "secret": "two words"}, "secret"),
        ({"auth_kind": "none", "secret": "x"}, "auth"),
        ({"auth_kind": "digest", "secret": "x"}, "auth_kind"),
        ({"name": ""}, "name"),
    ],
)
def test_feed_settings_are_checked(
    db: Session,
    admin: Principal,
    settings: Settings,
    local: IntelCollection,
    overrides: dict[str, Any],
    field: str,
) -> None:
    arguments: dict[str, Any] = {
        "name": "checked",
        "direction": "pull",
        "api_root_url": "https://taxii.example/api1/",
        "remote_collection_id": SOURCE_ID,
        "collection": local,
    } | overrides
    with pytest.raises(InvalidInput) as caught:
        feeds.add_feed(db, admin, secret_key=settings.secret_key, **arguments)
    assert caught.value.field == field


def test_only_the_owning_authoritys_administrators_manage_feeds(
    db: Session,
    admin: Principal,
    analyst: Principal,
    settings: Settings,
    local: IntelCollection,
    make_principal: Callable[..., Principal],
    partner_authority: int,
) -> None:
    arguments: dict[str, Any] = {
        "secret_key": settings.secret_key,
        "name": "mine",
        "direction": "pull",
        "api_root_url": "https://taxii.example/api1",
        "remote_collection_id": SOURCE_ID,
        "collection": local,
    }
    with pytest.raises(PermissionDenied):
        feeds.add_feed(db, analyst, **arguments)
    stranger = make_principal(Role.ADMINISTRATOR, authority_id=partner_authority)
    with pytest.raises(PermissionDenied):
        feeds.add_feed(db, stranger, **arguments)
    feed = feeds.add_feed(db, admin, **arguments)
    assert feed.api_root_url == "https://taxii.example/api1/"
    with pytest.raises(Conflict):
        feeds.add_feed(db, admin, **arguments)
    assert [f.name for f in feeds.list_feeds(db, admin)] == ["mine"]
    assert feeds.list_feeds(db, stranger) == []


def test_a_disabled_feed_does_not_run(
    db: Session, admin: Principal, settings: Settings, local: IntelCollection, medallion: Medallion
) -> None:
    add_pull(db, admin, settings, medallion, local)
    feeds.set_enabled(db, admin, "partner-pull", enabled=False)
    assert feeds.run_due(settings, factory_for(db))["intel_feeds_run"] == 0
    feeds.set_enabled(db, admin, "partner-pull", enabled=True)
    assert feeds.run_due(settings, factory_for(db))["intel_feeds_run"] == 1


# --- the commands, as processes ------------------------------------------------------------


@dataclass
class Cli:
    """The commands as processes, on a fresh node (data directory and database)."""

    database_url: str
    env: dict[str, str]

    def __call__(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        command = ("intel", *args) if args[0] in ("feed", "misp") else args
        return subprocess.run(
            [sys.executable, "-m", "crossborder.cli.main", *command],
            env=self.env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )


@pytest.fixture
def feed_cli(tmp_path: Path, fresh_database_url: str) -> Cli:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CROSSBORDER_")}
    env["CROSSBORDER_DATA_DIR"] = str(tmp_path / "node")
    env["CROSSBORDER_DATABASE_URL"] = fresh_database_url
    return Cli(fresh_database_url, env)


def _seed_node(database_url: str) -> None:
    """An authority, and a collection aliased "intake" owned by it (no CLI for those yet)."""
    from crossborder.db.session import make_engine

    engine = make_engine(database_url)
    try:
        with Session(engine) as session:
            authority = Authority(
                name="Cyber Unit",
                short_name="CU",
                roles=["police"],
                languages=["en"],
                time_zone="UTC",
                is_local=True,
            )
            session.add(authority)
            session.commit()
            owner = Principal(
                user_id=0,
                username="setup",
                authority_id=authority.id,
                roles=frozenset({Role.ADMINISTRATOR}),
                via="system",
            )
            service.create_collection(session, owner, title="Intake", alias="intake")
    finally:
        engine.dispose()


def test_feed_and_misp_commands(feed_cli: Cli, medallion: Medallion, tmp_path: Path) -> None:
    cli = feed_cli
    assert cli("init").returncode == 0
    _seed_node(cli.database_url)
    for name, role in (("boss", "administrator"), ("ana", "analyst")):
        made = cli(
            "user", "add", name, "--authority", "CU", "--role", role, "--password-stdin",
            stdin="correct horse battery staple\n",
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    medallion.add(
        SOURCE_ID,
        [indicator("seen", "198.51.100.77", Tlp.GREEN), indicator("too", "198.51.100.78", None)],
    )

    added = cli(
        "feed", "add", "vendor", "--as", "boss", "--url", medallion.api_root,
        "--remote-collection", SOURCE_ID, "--collection", "intake",
        "--user", USER, "--password-stdin", "--every", "15",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "feed vendor added" in added.stdout
    assert PASSWORD not in added.stdout + added.stderr

    refused = cli("feed", "add", "x", "--as", "ana", "--url", medallion.api_root,
                  "--remote-collection", SOURCE_ID, "--collection", "intake")  # fmt: skip
    assert refused.returncode == 1
    assert "intel:manage" in refused.stderr

    ran = cli("feed", "run", "--as", "boss")
    assert ran.returncode == 0, ran.stderr
    assert "vendor (pull): ok: pulled 2: stored 2" in ran.stdout

    listed = cli("feed", "list", "--as", "boss", "--json")
    assert listed.returncode == 0, listed.stderr
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["name"] == "vendor"
    assert row["collection"] == "intake"
    assert row["last_outcome"].startswith("ok: pulled 2")
    assert PASSWORD not in listed.stdout

    event_file = Path(__file__).parent / "data" / "misp_event.json"
    imported = cli("misp", "import", str(event_file), "--collection", "intake", "--as", "ana")
    assert imported.returncode == 0, imported.stderr
    assert "already present" in imported.stdout

    out = tmp_path / "export.json"
    exported = cli(
        "misp", "export", "--collection", "intake", "--as", "ana", "-o", str(out),
        "--event", "5f2f7a8e-3c1d-4b6a-9e2f-8d7c6b5a4f31",
    )  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    event = json.loads(out.read_text())["Event"]
    original = json.loads(event_file.read_text())["Event"]
    assert {(a["type"], a["value"]) for a in event["Attribute"]} == {
        (a["type"], a["value"]) for a in original["Attribute"]
    }
    assert "tlp:amber" in {t["name"] for t in event["Tag"]}

    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "bundle", "objects": []}')
    rejected = cli("misp", "import", str(bad), "--collection", "intake", "--as", "ana")
    assert rejected.returncode == 1
    assert "not a valid MISP event" in rejected.stderr

    feed_dir = tmp_path / "feed"
    feed_dir.mkdir()
    body = dict(original, timestamp="1772323200")
    (feed_dir / f"{original['uuid']}.json").write_text(json.dumps({"Event": body}))
    (feed_dir / "manifest.json").write_text(
        json.dumps({original["uuid"]: {"info": original["info"], "timestamp": "1772323200"}})
    )
    from_feed = cli("misp", "import-feed", str(feed_dir), "--collection", "intake", "--as", "ana")
    assert from_feed.returncode == 0, from_feed.stderr
    assert "1 events imported" in from_feed.stdout
    assert "next --since 1772323200" in from_feed.stdout

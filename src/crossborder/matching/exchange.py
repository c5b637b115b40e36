"""Federation handlers of hit/no-hit: ``match.query``, ``match.answer``, ``match.refused``.

Each runs in the inbox transaction of its envelope (docs/federation.md) and leaves the work
to ``service``. A query this node refuses is answered with ``match.refused`` and a reason; a
body that does not even say who asks is a handler failure, visible in the inbox.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from crossborder.db.session import data_dir_of
from crossborder.federation import parties
from crossborder.federation import service as federation
from crossborder.federation.envelope import Envelope
from crossborder.matching import service


def on_query(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    node = parties.sender_node(session, envelope)
    service.answer(session, data_dir_of(session), node, body)


def on_answer(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    node = parties.sender_node(session, envelope)
    service.receive_answer(session, data_dir_of(session), node, body)


def on_refused(session: Session, envelope: Envelope, body: dict[str, Any]) -> None:
    node = parties.sender_node(session, envelope)
    service.receive_refusal(session, node, body)


def register() -> None:
    federation.register_handler(service.QUERY, on_query, replace=True)
    federation.register_handler(service.ANSWER, on_answer, replace=True)
    federation.register_handler(service.REFUSED, on_refused, replace=True)

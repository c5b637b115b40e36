"""Demo casework on the single node: a draft request and identifier sets that correlate.

What it shows when you log in: Linh's draft names a TRON wallet, a phone number and an IP
address with port and time; Minh (same authority) keeps call records with the same phone, so
Linh sees his set as a hit; Jack (Australia) keeps a seized-phone set with the same wallet, so
Linh learns only "another authority holds this — contact AFP", and Jack likewise about her.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from crossborder.auth import service as auth_service
from crossborder.auth.models import User
from crossborder.auth.permissions import Principal
from crossborder.requests import schemas as request_schemas
from crossborder.requests import service as requests
from crossborder.selectors import service as selectors
from crossborder.selectors import sets

WALLET = "TQrY8tryqsYVCYS3MFbtffiPp2ccyn4STm"
PHONE = "+84 91 234 5678"
IP = "103.27.12.7:51234"


def _actor(session: Session, username: str) -> Principal:
    user = auth_service.find_user(session, username)
    assert isinstance(user, User)
    return auth_service.principal_for(user)


def load_cases(session: Session, authority_ids: dict[str, int]) -> None:
    linh, minh, jack = (_actor(session, u) for u in ("linh", "minh", "jack"))
    requests.create_draft(
        session,
        request_schemas.DraftCreate.model_validate(
            {
                "request_type": "police_information",
                "receiver_authority_id": authority_ids["AU-AFP"],
                "channel": "police",
                "urgency": "routine",
                "title": "Investment scam paid in USDT-TRC20",
                "summary_of_facts": (
                    "Victims in Hà Nội were told to pay into a TRON wallet by an adviser on Zalo "
                    f"calling from {PHONE}. The fake platform invest-vn-gold[.]com was reached "
                    "from the address below."
                ),
                "offences": [{"code": "THEFT_FRAUD"}],
                "identifiers": [
                    {"kind": "crypto", "value": WALLET},
                    {"kind": "phone", "value": PHONE},
                    {
                        "kind": "ip",
                        "value": IP,
                        "window_start": datetime(2026, 11, 2, 3, 14, 5, tzinfo=UTC),
                        "window_end": datetime(2026, 11, 2, 3, 14, 5, tzinfo=UTC),
                        "time_zone": "Asia/Ho_Chi_Minh",
                    },
                ],
                "data_categories": ["subscriber"],
                "details": {
                    "questions": [
                        "Who holds the wallet at an exchange you can reach?",
                        "Is the phone number known to you?",
                    ],
                    "purpose": "Identify the organisers before the victims' funds move on",
                    "intelligence_only_acknowledged": True,
                },
            }
        ),
        actor=linh,
    )
    calls = sets.create_set(session, minh, name="Call records, Hà Nội investment scam")
    selectors.index_record(
        session,
        sets.where_of(calls),
        [selectors.Entry("phone", PHONE), selectors.Entry("phone", "+84 98 765 4321")],
        source="imported",
    )
    seized = sets.create_set(session, jack, name="Seized phones, Operation Southern Reef")
    selectors.index_record(
        session,
        sets.where_of(seized),
        [
            selectors.Entry("crypto", WALLET),
            selectors.Entry("email", "adviser.gold@proton.me"),
            selectors.Entry("ip", IP, seen_from=datetime(2026, 11, 2, 3, 14, 5, tzinfo=UTC)),
        ],
        source="imported",
        default_region="AU",
    )

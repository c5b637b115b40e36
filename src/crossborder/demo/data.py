"""The demo data set: a node of Viet Nam's Ministry of Public Security and its partners.

Every name of a person, every phone number, e-mail address, key fingerprint and URL here is
invented (``example`` domains). Treaty statuses are *demo* statuses chosen to show how the
legal-basis policy behaves — they are not a statement of any state's real position.
"""

from __future__ import annotations

from datetime import date
from typing import Any

DEMO_PASSWORD = "demo-password-2026"  # noqa: S105 - printed by `make run`; demo nodes only

STATES = ["VN", "AU", "MA", "LA", "TH", "SG"]

NODES: list[dict[str, Any]] = [
    {
        "name": "au-afp",
        "base_url": "https://crossborder.afp.example.au",
        "fingerprint": "4f1c2a9be07d3c55a8e16b2f09d4c7713ae5b6d8c9f0a1b2c3d4e5f60718293a",
    },
    {
        "name": "ma-dgsn",
        "base_url": "https://crossborder.dgsn.example.ma",
        "fingerprint": "9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9",
    },
    {
        "name": "unodc-roseap-hub",
        "base_url": "https://hub.roseap.example.org",
        "fingerprint": "0b1d2f3e4c5a69788796a5c4e3f2d1b00b1d2f3e4c5a69788796a5c4e3f2d1b0",
    },
]

_WEEKDAYS_VN = {
    d: [["08:00", "12:00"], ["13:30", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")
}
_WEEKDAYS_AU = {d: [["08:30", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
_WEEKDAYS_MA = {d: [["08:30", "16:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}
_WEEKDAYS_TH = {d: [["08:30", "16:30"]] for d in ("mon", "tue", "wed", "thu", "fri")}

# (key, authority fields, node name or None, contact points)
AUTHORITIES: list[dict[str, Any]] = [
    {
        "key": "VN-A05",
        "state": "VN",
        "short_name": "VN-A05",
        "node": "vn-mps",
        "name": "Department of Cybersecurity and High-Tech Crime Prevention (A05), "
        "Ministry of Public Security",
        "roles": ["point_of_contact_24_7", "police"],
        "languages": ["vi", "en"],
        "time_zone": "Asia/Ho_Chi_Minh",
        "website": "https://a05.mps.example.vn",
        "contacts": [
            {
                "name": "24/7 Cybercrime Desk",
                "is_desk": True,
                "phone": "+842438269999",
                "email": "desk247@a05.mps.example.vn",
                "is_24_7": True,
                "languages": ["vi", "en"],
            },
            {
                "name": "Nguyễn Thị Linh",
                "title": "Duty officer, international cooperation",
                "phone": "+842438260001",
                "email": "linh.nt@a05.mps.example.vn",
                "office_hours": _WEEKDAYS_VN,
                "languages": ["vi", "en"],
            },
        ],
    },
    {
        "key": "VN-SPP",
        "state": "VN",
        "short_name": "VN-SPP",
        "node": "vn-mps",
        "name": "Supreme People's Procuracy, Department of International Cooperation and "
        "Mutual Legal Assistance in Criminal Matters",
        "roles": ["central_authority_mla", "prosecutor"],
        "languages": ["vi", "en"],
        "time_zone": "Asia/Ho_Chi_Minh",
        "contacts": [
            {
                "name": "Mutual Legal Assistance Office",
                "is_desk": True,
                "phone": "+842438255058",
                "email": "mla@spp.example.vn",
                "office_hours": _WEEKDAYS_VN,
                "languages": ["vi", "en"],
            },
        ],
    },
    {
        "key": "VN-BLO-CT",
        "state": "VN",
        "short_name": "VN-BLO-CT",
        "node": "vn-mps",
        "name": "Border Liaison Office Cầu Treo (Viet Nam – Lao PDR)",
        "roles": ["border_liaison_office", "police", "customs"],
        "languages": ["vi", "lo"],
        "time_zone": "Asia/Ho_Chi_Minh",
        "contacts": [
            {
                "name": "BLO Cầu Treo duty desk",
                "is_desk": True,
                "phone": "+842393875100",
                "is_24_7": True,
                "languages": ["vi", "lo"],
            },
        ],
    },
    {
        "key": "AU-AFP",
        "state": "AU",
        "short_name": "AU-AFP",
        "node": "au-afp",
        "name": "Australian Federal Police, Cybercrime Operations",
        "roles": ["point_of_contact_24_7", "police"],
        "languages": ["en"],
        "time_zone": "Australia/Sydney",
        "website": "https://www.afp.example.au",
        "contacts": [
            {
                "name": "AFP 24/7 Cybercrime Point of Contact",
                "is_desk": True,
                "phone": "+61261312000",
                "email": "247poc@afp.example.au",
                "is_24_7": True,
                "languages": ["en"],
            },
            {
                "name": "Sarah Mitchell",
                "title": "Liaison officer, South-East Asia",
                "phone": "+61261312345",
                "email": "s.mitchell@afp.example.au",
                "office_hours": _WEEKDAYS_AU,
                "languages": ["en", "vi"],
            },
        ],
    },
    {
        "key": "AU-AGD",
        "state": "AU",
        "short_name": "AU-AGD",
        "node": "au-afp",
        "name": "Attorney-General's Department, International Crime Cooperation Central Authority",
        "roles": ["central_authority_mla"],
        "languages": ["en"],
        "time_zone": "Australia/Sydney",
        "contacts": [
            {
                "name": "Mutual Assistance Unit",
                "is_desk": True,
                "phone": "+61261416666",
                "email": "mutualassistance@ag.example.au",
                "office_hours": _WEEKDAYS_AU,
                "languages": ["en"],
            },
        ],
    },
    {
        "key": "MA-BNPJ",
        "state": "MA",
        "short_name": "MA-BNPJ",
        "node": "ma-dgsn",
        "name": "Brigade nationale de la police judiciaire (DGSN, Maroc)",
        "roles": ["police", "point_of_contact_24_7"],
        "languages": ["ar", "fr"],
        "time_zone": "Africa/Casablanca",
        "contacts": [
            {
                "name": "Permanence cybercriminalité",
                "is_desk": True,
                "phone": "+212537000000",
                "email": "cyber247@dgsn.example.ma",
                "is_24_7": True,
                "languages": ["ar", "fr", "en"],
            },
            {
                "name": "Youssef El Amrani",
                "title": "Commissaire, traite des êtres humains",
                "phone": "+212537001122",
                "email": "y.elamrani@dgsn.example.ma",
                "office_hours": _WEEKDAYS_MA,
                "languages": ["ar", "fr"],
            },
        ],
    },
    {
        "key": "MA-MJ",
        "state": "MA",
        "short_name": "MA-MJ",
        "node": "ma-dgsn",
        "name": "Ministère de la Justice, Direction des affaires pénales et des grâces",
        "roles": ["central_authority_mla"],
        "languages": ["ar", "fr"],
        "time_zone": "Africa/Casablanca",
        "contacts": [
            {
                "name": "Bureau de l'entraide judiciaire",
                "is_desk": True,
                "phone": "+212537002200",
                "email": "entraide@justice.example.ma",
                "office_hours": _WEEKDAYS_MA,
                "languages": ["ar", "fr"],
            },
        ],
    },
    {
        "key": "LA-BLO-NP",
        "state": "LA",
        "short_name": "LA-BLO-NP",
        "name": "Border Liaison Office Nam Phao (Lao PDR – Viet Nam)",
        "roles": ["border_liaison_office", "police"],
        "languages": ["lo", "vi"],
        "time_zone": "Asia/Vientiane",
        "contacts": [
            {
                "name": "BLO Nam Phao duty desk",
                "is_desk": True,
                "phone": "+85654212345",
                "is_24_7": True,
                "languages": ["lo", "vi"],
            },
        ],
    },
    {
        "key": "UNODC-ROSEAP",
        "state": None,
        "short_name": "UNODC-ROSEAP",
        "node": "unodc-roseap-hub",
        "name": "UNODC Regional Office for Southeast Asia and the Pacific (regional hub)",
        "roles": ["regional_hub"],
        "languages": ["en", "th"],
        "time_zone": "Asia/Bangkok",
        "contacts": [
            {
                "name": "Regional cooperation desk",
                "is_desk": True,
                "phone": "+6622883100",
                "email": "cooperation@roseap.example.org",
                "office_hours": _WEEKDAYS_TH,
                "languages": ["en", "th"],
            },
        ],
    },
    {
        "key": "SG-VENDOR",
        "state": "SG",
        "short_name": "EXAMPLE-TL",
        "name": "Example Threat Labs Pte. Ltd. (security vendor)",
        "roles": ["security_vendor"],
        "languages": ["en"],
        "time_zone": "Asia/Singapore",
        "contacts": [
            {
                "name": "Threat intelligence sharing desk",
                "is_desk": True,
                "phone": "+6568001234",
                "email": "sharing@threatlabs.example.com",
                "is_24_7": True,
                "languages": ["en"],
            },
        ],
    },
]

_UN_CONDITIONS = [
    {
        "code": "USE_LIMITATION",
        "text": "Use only for the proceedings stated in the request "
        "without the prior consent of the requested State (UN Convention Art. 40, recalled).",
    },
    {
        "code": "CONFIDENTIALITY",
        "text": "Keep the request and its answer confidential except as needed to execute it.",
    },
    {
        "code": "NO_ONWARD_TRANSFER_WITHOUT_CONSENT",
        "text": "Personal data may be transferred "
        "onward only with the prior written authorisation of the transferring State "
        "(UN Convention Art. 36, recalled).",
    },
]

INSTRUMENTS: list[dict[str, Any]] = [
    {
        "code": "UNCC",
        "title": "United Nations Convention against Cybercrime (Hanoi, 2025)",
        "kind": "multilateral_convention",
        "articles": {
            "point_of_contact_24_7": "Art. 41–43",
            "central_authority": "Art. 40, 44–46",
            "police": "Art. 47",
            "judicial": "Art. 40",
            "interpol": "Art. 40",
        },
        "offences": ["*"],
        "channels": [
            "point_of_contact_24_7",
            "central_authority",
            "police",
            "judicial",
            "interpol",
        ],
        "data_categories": ["*"],
        "conditions": _UN_CONDITIONS,
        "serious_crime_min_years": 4,
        "parties": [
            {
                "state": "VN",
                "status": "in_force",
                "signed_on": date(2025, 10, 25),
                "ratified_on": date(2026, 3, 1),
                "in_force_on": date(2026, 6, 1),
            },
            {
                "state": "MA",
                "status": "in_force",
                "signed_on": date(2025, 10, 25),
                "ratified_on": date(2026, 4, 2),
                "in_force_on": date(2026, 6, 1),
            },
            {"state": "AU", "status": "signed", "signed_on": date(2025, 10, 25)},
            {"state": "LA", "status": "signed", "signed_on": date(2025, 10, 25)},
            {"state": "TH", "status": "signed", "signed_on": date(2025, 10, 25)},
        ],
    },
    {
        "code": "BUDAPEST",
        "title": "Council of Europe Convention on Cybercrime (Budapest, ETS 185)",
        "kind": "multilateral_convention",
        "articles": {
            "point_of_contact_24_7": "Art. 29, 30, 35",
            "central_authority": "Art. 27, 31",
            "police": "Art. 26",
            "judicial": "Art. 27(9)",
        },
        "offences": ["*"],
        "channels": ["point_of_contact_24_7", "central_authority", "police", "judicial"],
        "data_categories": ["*"],
        "conditions": [
            {
                "code": "USE_LIMITATION",
                "text": "Not to be used for investigations "
                "other than those stated in the request (Budapest Art. 28(2)(b)).",
            }
        ],
        "parties": [
            {"state": "AU", "status": "in_force", "in_force_on": date(2013, 3, 1)},
            {"state": "MA", "status": "in_force", "in_force_on": date(2018, 10, 1)},
        ],
    },
    {
        "code": "UNTOC",
        "title": "United Nations Convention against Transnational Organized Crime (Palermo, 2000)",
        "kind": "multilateral_convention",
        "articles": {"central_authority": "Art. 18", "police": "Art. 27"},
        "offences": [
            "TRAFFICKING_IN_PERSONS",
            "MIGRANT_SMUGGLING",
            "LAUNDERING",
            "CORRUPTION",
            "DRUG_TRAFFICKING",
            "SERIOUS_OTHER",
        ],
        "channels": ["central_authority", "police"],
        "data_categories": ["*"],
        "serious_crime_min_years": 4,
        "conditions": [
            {
                "code": "USE_LIMITATION",
                "text": "Use only for the investigations "
                "stated in the request (UNTOC Art. 18(19)).",
            }
        ],
        "parties": [
            {"state": s, "status": "in_force", "in_force_on": date(2012, 1, 1)}
            for s in ("VN", "AU", "MA", "LA", "TH")
        ],
    },
    {
        "code": "AU-VN-MLAT",
        "title": (
            "Australia – Viet Nam treaty on mutual legal assistance in criminal matters (demo)"
        ),
        "kind": "bilateral_treaty",
        "articles": {"central_authority": "Art. 1–3", "judicial": "Art. 1–3"},
        "offences": ["*"],
        "channels": ["central_authority", "judicial"],
        "data_categories": ["*"],
        "valid_from": date(2005, 1, 1),
        "conditions": [
            {
                "code": "USE_LIMITATION",
                "text": "Evidence used only for the proceedings described in the request.",
            }
        ],
        "parties": [
            {"state": "AU", "status": "in_force", "in_force_on": date(2005, 1, 1)},
            {"state": "VN", "status": "in_force", "in_force_on": date(2005, 1, 1)},
        ],
    },
    {
        "code": "AU-VN-POLICE-MOU",
        "title": "AFP – MPS memorandum of understanding on combating transnational crime and "
        "cybercrime (demo)",
        "kind": "mou",
        "articles": {"point_of_contact_24_7": "Clause 4", "police": "Clause 3"},
        "offences": [
            "ILLEGAL_ACCESS",
            "ILLEGAL_INTERCEPTION",
            "DATA_INTERFERENCE",
            "SYSTEM_INTERFERENCE",
            "MISUSE_OF_DEVICES",
            "FORGERY",
            "THEFT_FRAUD",
            "CSAM",
            "LAUNDERING",
            "DRUG_TRAFFICKING",
            "TRAFFICKING_IN_PERSONS",
        ],
        "channels": ["point_of_contact_24_7", "police"],
        "data_categories": ["subscriber", "identification", "traffic", "personal", "intelligence"],
        "valid_from": date(2019, 3, 1),
        "valid_until": date(2029, 2, 28),
        "conditions": [
            {
                "code": "CONFIDENTIALITY",
                "text": "Police information: not to be "
                "used as evidence without a mutual legal assistance request.",
            }
        ],
        "parties": [
            {"state": "AU", "status": "in_force", "in_force_on": date(2019, 3, 1)},
            {"state": "VN", "status": "in_force", "in_force_on": date(2019, 3, 1)},
        ],
    },
    {
        "code": "VN-MA-TIP-MOU",
        "title": "Viet Nam – Morocco memorandum of understanding on cooperation against "
        "trafficking in persons (demo)",
        "kind": "mou",
        "articles": {"police": "Art. 2"},
        "offences": ["TRAFFICKING_IN_PERSONS", "MIGRANT_SMUGGLING"],
        "channels": ["police"],
        "data_categories": ["subscriber", "identification", "personal", "intelligence"],
        "valid_from": date(2024, 5, 1),
        "conditions": [
            {
                "code": "ONLY_THIS_INVESTIGATION",
                "text": "Data received may be used "
                "only for the investigation for which it was requested.",
            }
        ],
        "parties": [
            {"state": "MA", "status": "in_force", "in_force_on": date(2024, 5, 1)},
            {"state": "VN", "status": "in_force", "in_force_on": date(2024, 5, 1)},
        ],
    },
    {
        "code": "VN-LA-BLO-MOU-2015",
        "title": "Viet Nam – Lao PDR memorandum on border liaison offices, 2015–2025 (demo)",
        "kind": "mou",
        "articles": {"border_liaison": "Art. 5"},
        "offences": [
            "DRUG_TRAFFICKING",
            "TRAFFICKING_IN_PERSONS",
            "MIGRANT_SMUGGLING",
            "ENVIRONMENTAL_CRIME",
        ],
        "channels": ["border_liaison", "police"],
        "data_categories": ["personal", "intelligence"],
        "valid_from": date(2015, 7, 1),
        "valid_until": date(2025, 6, 30),
        "conditions": [],
        "parties": [
            {"state": "VN", "status": "in_force", "in_force_on": date(2015, 7, 1)},
            {"state": "LA", "status": "in_force", "in_force_on": date(2015, 7, 1)},
        ],
    },
]

# username, authority key, roles, display name
USERS: list[tuple[str, str, list[str], str]] = [
    ("linh", "VN-A05", ["officer"], "Nguyễn Thị Linh"),
    ("minh", "VN-A05", ["supervisor"], "Trần Văn Minh"),
    ("hoa", "VN-A05", ["analyst"], "Lê Thị Hoa"),
    ("an", "VN-A05", ["auditor"], "Phạm Văn An"),
    ("admin", "VN-A05", ["administrator"], "Node administrator"),
    ("thu", "VN-SPP", ["officer", "supervisor"], "Đỗ Minh Thu"),
    # Until nodes federate, the partner's officers work on this node too, so that both sides of
    # a request can be shown on one machine.
    ("jack", "AU-AFP", ["officer"], "Jack Nguyen"),
    ("olivia", "AU-AFP", ["supervisor"], "Olivia Brown"),
    ("sam", "AU-AGD", ["officer", "supervisor"], "Sam Taylor"),
    # Created only on Morocco's node in the federation demo.
    ("yasmine", "MA-BNPJ", ["officer"], "Yasmine Benali"),
]

"""Finding identifiers in free text in several scripts, and in files."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from crossborder.core.errors import InvalidInput
from crossborder.selectors import extract, extract_from_file

extract_module = importlib.import_module("crossborder.selectors.extract")

VI = (
    "Kẻ lừa đảo dùng ví TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t và trang "
    "hxxps://vietcombank-xacminh[.]com/login, gọi từ số 0912 345 678."
)
BN = "প্রতারক tien.scam@gmail.com ঠিকানা থেকে ইমেল পাঠিয়েছে এবং আইপি 100.64.3.9:40112 ব্যবহার করেছে।"
AR = (
    "أرسل المحتال الأموال إلى 0x52908400098527886E0F7030069857D2E4169EE7 "
    "عبر الموقع evil-shop.ma اليوم."
)
ZH = "嫌疑人使用IP地址2001:db8::42登录，并访问了scam.example.cn网站，手机号+86 138 0013 8000。"  # noqa: RUF001


def _rows(text: str, region: str | None = "VN") -> list[tuple[str, str, str, int, int]]:
    found = extract(text, default_region=region)
    for item in found:
        assert text[item.start : item.end] == item.raw
    return [(f.kind, f.raw, f.canonical, f.start, f.end) for f in found]


def test_vietnamese() -> None:
    assert _rows(VI) == [
        (
            "crypto",
            "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            "tron:TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t",
            19,
            53,
        ),
        (
            "url",
            "hxxps://vietcombank-xacminh[.]com/login",
            "https://vietcombank-xacminh.com/login",
            63,
            102,
        ),
        ("phone", "0912 345 678", "+84912345678", 114, 126),
    ]


def test_bengali() -> None:
    assert _rows(BN) == [
        ("email", "tien.scam@gmail.com", "tien.scam@gmail.com", 8, 27),
        ("ip", "100.64.3.9:40112", "100.64.3.9", 64, 80),
    ]
    assert "cgnat" in extract(BN)[1].flags


def test_arabic() -> None:
    assert _rows(AR, None) == [
        (
            "crypto",
            "0x52908400098527886E0F7030069857D2E4169EE7",
            "evm:0x52908400098527886E0F7030069857D2E4169EE7",
            25,
            67,
        ),
        ("domain", "evil-shop.ma", "evil-shop.ma", 79, 91),
    ]


def test_chinese_without_spaces() -> None:
    assert _rows(ZH, None) == [
        ("ip", "2001:db8::42", "2001:db8::42", 9, 21),
        ("domain", "scam.example.cn", "scam.example.cn", 28, 43),
        ("phone", "+86 138 0013 8000", "+8613800138000", 49, 66),
    ]


def test_most_specific_kind_wins_and_no_span_twice() -> None:
    text = "See https://a.example.com/x?y=1 (mail admin@example.com), example.com."
    rows = _rows(text)
    assert [r[0] for r in rows] == ["url", "email", "domain"]
    assert rows[0][1] == "https://a.example.com/x?y=1"
    assert rows[2][1] == "example.com"
    spans = [(r[3], r[4]) for r in rows]
    assert len(spans) == len(set(spans))


def test_defanged_and_refused_candidates() -> None:
    text = "C2 at hxxp[:]//bad-host(.)ru/gate.php and 45[.]77[.]1[.]9; ignore file.notatld."
    rows = _rows(text)
    assert rows == [
        ("url", "hxxp[:]//bad-host(.)ru/gate.php", "http://bad-host.ru/gate.php", 6, 37),
        ("ip", "45[.]77[.]1[.]9", "45.77.1.9", 42, 57),
    ]


def test_homoglyph_domain_is_not_reported() -> None:
    text = "Đăng nhập tại p\u0430ypal.com ngay"  # Cyrillic a
    assert _rows(text) == []


def test_hashes_ibans_imei_and_bad_checksums() -> None:
    text = (
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855, "
        "IBAN GB82 WEST 1234 5698 7654 32 then text, bad GB83 WEST 1234 5698 7654 32, "
        "IMEI: 35-209900-176148-1, wallet 0x52908400098527886E0F7030069857D2E4169Ee7."
    )
    kinds = [(r[0], r[2]) for r in _rows(text)]
    assert kinds == [
        ("file_hash", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("bank_account", "GB82WEST12345698765432"),
        ("imei", "352099001761481"),
    ]


def test_no_region_means_only_international_phone_numbers() -> None:
    assert _rows("gọi 0912 345 678 hoặc +84 912 345 679", None) == [
        ("phone", "+84 912 345 679", "+84912345679", 22, 37)
    ]


def test_unknown_region_still_finds_international_numbers() -> None:
    assert [r[2] for r in _rows("call 0912345678 or +84912345678", "zz")] == ["+84912345678"]


def test_text_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(extract_module, "MAX_BYTES", 10)
    with pytest.raises(InvalidInput, match="longer"):
        extract("x" * 11)


def test_text_and_csv_files(tmp_path: Path) -> None:
    txt = tmp_path / "report.txt"
    txt.write_text(VI, encoding="utf-8")
    assert [f.kind for f in extract_from_file(txt, default_region="VN")] == [
        "crypto",
        "url",
        "phone",
    ]
    csv = tmp_path / "calls.csv"
    csv.write_text('number,ip\n"+84 912 345 678",100.64.0.1\n', encoding="utf-8")
    found = extract_from_file(csv)
    assert [(f.kind, f.canonical) for f in found] == [
        ("phone", "+84912345678"),
        ("ip", "100.64.0.1"),
    ]
    assert csv.read_text(encoding="utf-8")[found[1].start : found[1].end] == "100.64.0.1"


def test_json_file_walks_string_values(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text(
        json.dumps({"victim": {"notes": [AR, 42, None]}, "mail": "x@gmail.com"}),
        encoding="utf-8",
    )
    found = extract_from_file(path)
    assert [(f.kind, f.location, f.start) for f in found] == [
        ("crypto", "/victim/notes/0", 25),
        ("domain", "/victim/notes/0", 79),
        ("email", "/mail", 0),
    ]


def _minimal_pdf(text: str) -> bytes:
    """A one-page PDF written by hand (no PDF-writing library is installed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def test_pdf_file(tmp_path: Path) -> None:
    path = tmp_path / "statement.pdf"
    path.write_bytes(_minimal_pdf("Sender 0xde709f2102306220921060314715629080e2fb77 via evil.com"))
    found = extract_from_file(path)
    assert [(f.kind, f.canonical, f.location) for f in found] == [
        # an all-lower-case EIP-55 test vector
        ("crypto", "evm:0xde709f2102306220921060314715629080e2fb77", "page 1"),
        ("domain", "evil.com", "page 1"),
    ]


def test_file_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        extract_from_file(tmp_path / "missing.txt")
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\xff\xfe\x00\xd8 broken \x80\x81")
    with pytest.raises(InvalidInput, match="not UTF-8"):
        extract_from_file(binary)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json", encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        extract_from_file(bad_json)
    bad_pdf = tmp_path / "bad.pdf"
    bad_pdf.write_bytes(b"%PDF-1.4 garbage")
    with pytest.raises(InvalidInput, match="PDF"):
        extract_from_file(bad_pdf)
    big = tmp_path / "big.txt"
    big.write_text("x" * 11, encoding="utf-8")
    monkeypatch.setattr(extract_module, "MAX_BYTES", 10)
    with pytest.raises(InvalidInput, match="larger than"):
        extract_from_file(big)

"""The MIME message: headers, parts, encoding, unsubscribe headers, header injection."""

from __future__ import annotations

import email.policy
import email.utils
import random
import re
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser

import pytest
from aiosmtplib.email import flatten_message
from selectolax.lexbor import LexborHTMLParser

from digest.message import build_wire, make_message_id
from digest.models import Paper, RenderedDigest
from digest.render import render_digest
from tests.support.digests import FORBIDDEN, hostile_papers, load_papers, make_content
from tests.support.mail import build_message, parse_wire

FROM = "Paper Digest <digest@example.org>"
MAILTO = "digest-admin@example.org"
WHEN = datetime(2026, 6, 12, 7, 0, 5, tzinfo=timezone(timedelta(hours=2)))
LONG_URL = "https://example.org/unsubscribe?subscriber=ada%40example.org&token=" + "a1b2c3d4" * 12


@pytest.fixture(scope="module")
def papers() -> list[Paper]:
    return load_papers()


@pytest.fixture(scope="module")
def rendered(papers: list[Paper]) -> RenderedDigest:
    return render_digest(make_content(papers[:5], candidates=30))


def build(rendered: RenderedDigest, **overrides: object) -> EmailMessage:
    kwargs: dict[str, object] = {
        "from_addr": FROM,
        "to_addr": "ada@example.org",
        "to_name": "Ada Lovelace",
        "message_id": "<fixed.1234@example.org>",
        "date": WHEN,
        "unsubscribe_mailto": MAILTO,
        "unsubscribe_url": "",
    }
    kwargs.update(overrides)
    return build_message(rendered, **kwargs)  # type: ignore[arg-type]


def parse(msg: EmailMessage) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(msg.as_bytes())
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_headers(rendered: RenderedDigest) -> None:
    parsed = parse(build(rendered))
    assert parsed["From"] == FROM
    assert parsed["To"] == "Ada Lovelace <ada@example.org>"
    assert parsed["Subject"] == rendered.subject
    assert parsed["Subject"].endswith(" + 4 more · Fri 12 Jun")
    assert parsed["Date"] == "Fri, 12 Jun 2026 07:00:05 +0200"
    assert parsed["Date"].datetime == WHEN
    assert parsed["Message-ID"] == "<fixed.1234@example.org>"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed["List-Id"] == "<paper-digest.example.org>"
    assert parsed["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    for name in ("From", "To", "Subject", "Date", "Message-ID", "MIME-Version", "List-Unsubscribe"):
        assert len(parsed.get_all(name) or []) == 1, name


def test_parts_in_order_utf8(rendered: RenderedDigest) -> None:
    parsed = parse(build(rendered))
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    text, html = (p.get_content() for p in parts)
    assert text.replace("\r\n", "\n") == rendered.text
    assert html.replace("\r\n", "\n") == rendered.html
    assert parsed.get_body(preferencelist=("html",)) is parts[1]


def test_links_in_both_parts(rendered: RenderedDigest, papers: list[Paper]) -> None:
    parsed = parse(build(rendered))
    text_part = parsed.get_body(preferencelist=("plain",))
    html_part = parsed.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    text = text_part.get_content()
    tree = LexborHTMLParser(html_part.get_content())
    hrefs = {a.attributes.get("href") for a in tree.css("a")}
    for p in papers[:5]:
        wanted = [p.url, f"https://arxiv.org/abs/{p.id}", f"https://arxiv.org/pdf/{p.id}"]
        if p.code_url:
            wanted.append(p.code_url)
        for url in wanted:
            assert url in hrefs, url
            assert re.search(r"^\s+\S.*?:\s+" + re.escape(url) + r"\r?$", text, re.MULTILINE), url
    # CSS survived the trip: inlined styles and the dark-mode block.
    assert tree.css_first("td.paper").attributes.get("style")  # type: ignore[union-attr]
    assert "prefers-color-scheme: dark" in html_part.get_content()


def test_wire_format_is_crlf_ascii_and_folded(rendered: RenderedDigest) -> None:
    raw = build(rendered, unsubscribe_url=LONG_URL).as_bytes()
    assert b"\r\n" in raw
    assert re.search(rb"(?<!\r)\n", raw) is None  # no bare LF anywhere
    raw.decode("ascii")  # 7-bit clean: headers encoded, bodies quoted-printable/base64
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert all(len(line) <= 998 for line in head.split(b"\r\n"))


def test_non_ascii_recipient_name_is_encoded(rendered: RenderedDigest) -> None:
    msg = build(rendered, to_name="Zoë Ångström-李")
    raw = msg.as_bytes()
    assert b"=?utf-8?" in raw.split(b"\r\n\r\n", 1)[0]
    parsed = parse(msg)
    address = parsed["To"].addresses[0]
    assert address.display_name == "Zoë Ångström-李"
    assert address.addr_spec == "ada@example.org"


def test_no_name_gives_a_bare_address(rendered: RenderedDigest) -> None:
    parsed = parse(build(rendered, to_name=""))
    assert parsed["To"] == "ada@example.org"


@pytest.mark.parametrize(
    "name", ["", "Reader 68", "Ada Lovelace", "R. Michael", 'Ada "the first"', "Zoë", "x" * 70]
)
@pytest.mark.parametrize(
    "address", ["ada@example.org", "a.b+tag@mail.example.co.uk", "o'neil@x.org", "ada@[127.0.0.1]"]
)
def test_the_to_header_is_the_registrys_whether_written_directly_or_not(
    rendered: RenderedDigest, name: str, address: str
) -> None:
    """Plain names and addresses skip the header registry (it is per mail and slow); the
    bytes are the registry's all the same."""
    registry = email.policy.SMTP.header_factory(
        "To", Address(display_name=name, addr_spec=address)
    ).fold(policy=email.policy.SMTP.clone(max_line_length=78))
    wire = build_wire(
        rendered,
        from_addr="Paper Digest <digest@example.org>",
        to_addr=address,
        to_name=name,
        message_id="<1@example.org>",
        date=datetime(2026, 11, 24, tzinfo=UTC),
        unsubscribe_mailto="digest@example.org",
    )
    head = wire.split(b"\r\n\r\n", 1)[0].decode("ascii") + "\r\n"
    assert "\r\n" + registry in head


def test_unsubscribe_mailto_only(rendered: RenderedDigest) -> None:
    parsed = parse(build(rendered))
    assert parsed["List-Unsubscribe"] == f"<mailto:{MAILTO}?subject=unsubscribe>"
    assert parsed["List-Unsubscribe-Post"] is None


def test_one_click_unsubscribe_with_url(papers: list[Paper]) -> None:
    rendered = render_digest(make_content(papers[:2], unsubscribe_url=LONG_URL))
    msg = build(rendered, unsubscribe_url=LONG_URL)
    parsed = parse(msg)
    assert parsed["List-Unsubscribe"] == f"<{LONG_URL}>, <mailto:{MAILTO}?subject=unsubscribe>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    # The long URL is folded as a whole, never turned into RFC 2047 encoded-words.
    raw = msg.as_bytes()
    assert f"<{LONG_URL}>".encode() in raw
    assert b"=?utf-8?q?=3Chttps" not in raw
    # ... also when aiosmtplib flattens the message with its own policy.
    assert f"<{LONG_URL}>".encode() in flatten_message(msg)
    # The body links to the URL, in both parts.
    assert LONG_URL in rendered.text
    assert LONG_URL in rendered.html.replace("&amp;", "&")


def test_unsubscribe_url_with_unsafe_characters_is_percent_encoded(
    rendered: RenderedDigest,
) -> None:
    parsed = parse(build(rendered, unsubscribe_url="https://example.org/u?n=Zoë <x>"))
    value = parsed["List-Unsubscribe"]
    assert value.startswith("<https://example.org/u?n=Zo%C3%AB%20%3Cx%3E>")


def test_naive_date_is_taken_as_utc(rendered: RenderedDigest) -> None:
    parsed = parse(build(rendered, date=datetime(2026, 6, 12, 5, 0)))
    assert parsed["Date"] == "Fri, 12 Jun 2026 05:00:00 +0000"
    assert parsed["Date"].datetime == datetime(2026, 6, 12, 5, 0, tzinfo=UTC)


def test_message_id_is_reused_as_given(rendered: RenderedDigest) -> None:
    mid = make_message_id("digest@example.org")
    first = parse(build(rendered, message_id=mid))
    retry = parse(build(rendered, message_id=mid))
    assert first["Message-ID"] == retry["Message-ID"] == mid


def test_make_message_id() -> None:
    ids = {make_message_id("Digest@Example.ORG") for _ in range(200)}
    assert len(ids) == 200
    for mid in ids:
        assert re.fullmatch(r"<[^<>@\s]+@example\.org>", mid), mid
    assert make_message_id("digest@bücher.example").endswith("@xn--bcher-kva.example>")


@pytest.mark.parametrize(
    "field",
    ["from_addr", "to_addr", "to_name", "message_id", "unsubscribe_mailto", "unsubscribe_url"],
)
@pytest.mark.parametrize("bad", ["\r\nBcc: victim@example.net", "\nX-Evil: 1", "a\rb"])
def test_header_injection_is_rejected(rendered: RenderedDigest, field: str, bad: str) -> None:
    value = "https://example.org/u" if field == "unsubscribe_url" else "ada@example.org"
    with pytest.raises(ValueError):
        build(rendered, **{field: value + bad})


def test_subject_injection_is_rejected(rendered: RenderedDigest) -> None:
    hostile = RenderedDigest(
        subject="Paper digest\r\nBcc: victim@example.net", text="t", html="<p>h</p>"
    )
    with pytest.raises(ValueError):
        build(hostile)


def test_email_message_itself_rejects_linefeeds() -> None:
    msg = EmailMessage(policy=email.policy.SMTP)
    with pytest.raises(ValueError):
        msg["Subject"] = "hello\r\nBcc: victim@example.net"


def test_hostile_title_never_reaches_the_headers() -> None:
    paper = Paper(id="2606.00001", title="Evil\r\nBcc: victim@example.net", abstract="x")
    msg = build(render_digest(make_content([paper])))
    parsed = parse(msg)
    assert parsed["Bcc"] is None
    assert parsed["Subject"].startswith("Evil Bcc: victim@example.net")
    assert "Evil Bcc: victim@example.net" in parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_empty_digest_message(papers: list[Paper]) -> None:
    rendered = render_digest(make_content([], candidates=0))
    parsed = parse(build(rendered))
    assert parsed["Subject"] == "Paper digest: nothing new today · Fri 12 Jun"
    text = parsed.get_body(("plain",))
    html = parsed.get_body(("html",))
    assert text is not None and html is not None
    assert "Nothing new today" in text.get_content()
    assert "Nothing new today" in html.get_content()
    assert f"mailto:{MAILTO}?subject=unsubscribe" in text.get_content()


def test_sixty_papers_html_part_under_gmail_clipping(papers: list[Paper]) -> None:
    sixty = [papers[i % len(papers)] for i in range(60)]
    msg = build(render_digest(make_content(sixty)))
    html_part = parse(msg).get_body(("html",))
    assert html_part is not None
    assert len(html_part.get_content().encode("utf-8")) < 102 * 1024
    # Even as sent (quoted-printable), the HTML part stays under the limit.
    encoded = html_part.get_payload(decode=False)
    assert isinstance(encoded, str)
    assert len(encoded.encode("ascii")) < 102 * 1024
    assert email.utils.parseaddr(msg["To"])[1] == "ada@example.org"


# --- the wire bytes ----------------------------------------------------------------------------

WIRE_ARGS: dict[str, object] = {
    "from_addr": "Pâper Digest <digest@example.org>",
    "to_addr": "zoe@example.org",
    "to_name": "Zoë Ångström-李 " + "von Lange-Namen " * 6,
    "message_id": "<fixed.1234@example.org>",
    "date": WHEN,
    "unsubscribe_mailto": MAILTO,
    "unsubscribe_url": LONG_URL,
}


def wire_for(rendered: RenderedDigest, **overrides: object) -> bytes:
    return build_wire(rendered, **{**WIRE_ARGS, **overrides})  # type: ignore[arg-type]


def test_wire_bytes_parse_back_identically(papers: list[Paper]) -> None:
    hostile = papers[:3] + hostile_papers(4)
    hostile[0] = Paper(**{**hostile[0].__dict__, "title": "Überraschung: 注意力 " + "ü" * 90})
    rendered = render_digest(make_content(hostile, name="Zoë"))
    raw = wire_for(rendered)
    parsed = parse_wire(raw)
    assert parsed["Subject"] == rendered.subject  # non-ASCII and longer than a line
    assert len(rendered.subject) > 78 and not rendered.subject.isascii()
    assert parsed["From"].addresses[0].display_name == "Pâper Digest"
    to = parsed["To"].addresses[0]
    assert (to.display_name, to.addr_spec) == (WIRE_ARGS["to_name"].strip(), "zoe@example.org")
    assert parsed["Date"].datetime == WHEN
    assert parsed["Message-ID"] == "<fixed.1234@example.org>"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["List-Unsubscribe"] == f"<{LONG_URL}>, <mailto:{MAILTO}?subject=unsubscribe>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Auto-Submitted"] == "auto-generated"
    assert parsed.get_content_type() == "multipart/alternative"
    text, html = parsed.iter_parts()
    assert (text.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    assert text["Content-Transfer-Encoding"] == "quoted-printable"
    assert text.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html
    for part in (text.get_content(), html.get_content()):
        assert not FORBIDDEN & set(part)


def test_wire_format_crlf_ascii_short_lines(rendered: RenderedDigest) -> None:
    raw = wire_for(rendered)
    raw.decode("ascii")
    assert re.search(rb"(?<!\r)\n", raw) is None and re.search(rb"\r(?!\n)", raw) is None
    lines = raw.split(b"\r\n")
    assert all(len(line) <= 998 for line in lines)
    long = [line for line in lines if len(line) > 78]
    assert long == [f"List-Unsubscribe: <{LONG_URL}>,".encode()]  # only that URI, kept whole


def test_wire_is_deterministic_and_equals_the_flattened_message(rendered: RenderedDigest) -> None:
    raw = wire_for(rendered)
    assert wire_for(rendered) == raw  # a repeated send is byte for byte the same
    msg = build_message(rendered, **WIRE_ARGS)  # type: ignore[arg-type]
    assert msg.as_bytes() == raw
    assert flatten_message(msg) == raw  # what aiosmtplib sends
    other = wire_for(rendered, message_id="<other.1@example.org>")
    assert other != raw and b"<other.1@example.org>" in other


def test_wire_rejects_header_injection(rendered: RenderedDigest) -> None:
    with pytest.raises(ValueError):
        wire_for(rendered, to_name="Ada\r\nBcc: victim@example.net")


def test_a_body_mostly_in_another_script_goes_as_base64() -> None:
    title = "注意力机制的高效推理：一种新的稀疏方法" * 3
    paper = Paper(id="2606.00009", title=title, abstract="我们提出了一种新方法。" * 60)
    rendered = render_digest(make_content([paper], name="李雷"))
    raw = wire_for(rendered, to_name="李雷")
    parsed = parse_wire(raw)
    text, html = parsed.iter_parts()
    assert text["Content-Transfer-Encoding"] == "base64"
    assert text.get_content().replace("\r\n", "\n") == rendered.text
    assert html.get_content().replace("\r\n", "\n") == rendered.html
    assert all(len(line) <= 78 or b"unsubscribe" in line for line in raw.split(b"\r\n"))
    assert parsed["Subject"] == rendered.subject
    assert build_message(rendered, **{**WIRE_ARGS, "to_name": "李雷"}).as_bytes() == raw  # type: ignore[arg-type]


def test_thirty_papers_in_another_script_stay_under_the_clip_as_sent() -> None:
    papers = [
        Paper(
            id=f"2606.{20000 + i}",
            title="注意力机制的高效推理：一种新的稀疏方法" * 4,
            abstract="我们提出了一种新方法，它在多个基准上取得了更好的结果。" * 30,
            ai_summary="一种新的稀疏注意力方法，显著降低推理成本并保持准确率。" * 3,
            authors=["李雷", "韩梅梅", "王小明", "张伟"],
            url=f"https://huggingface.co/papers/2606.{20000 + i}",
        )
        for i in range(30)
    ]
    rendered = render_digest(make_content(papers, matched=["注意力"]))
    parsed = parse_wire(wire_for(rendered))
    html = parsed.get_body(("html",))
    assert html is not None
    encoded = html.get_payload(decode=False)
    assert isinstance(encoded, str)
    assert len(encoded.encode("ascii")) < 102 * 1024
    assert len(html.get_content().encode("utf-8")) < 102 * 1024


# --- the bodies' transfer encoding, proved by decoding -----------------------------------------

# Pieces of hostile bodies: long words, lone "." lines, "From " lines, trailing spaces and tabs,
# "=" and things that look like escapes, controls, non-ASCII of every UTF-8 length, CR and LF.
PIECES = [
    "a", "word ", "x" * 75, "y" * 76, "z" * 77, "Supercalifragilistic" * 15,
    " ", "  ", "\t", " \n", "\t\n", "\n", "\n\n", "\r\n", "\r", ".", "\n.\n", ".\n", "..", "\n..x",
    "From ", "\nFrom the start\n", "=", "==", "=20", "=\n", "=3D", "=XY", "%", "?", "_",
    "é", "ß", "—", "…", "\u00a0", "注意力", "𝒪(n²)", "😀", "\u200c", "\x00", "\x01", "\x0b", "\x0c",
    "\x1b", "\x7f", "\x85", "&nbsp;", "<a href=\"https://example.org/?a=1&b=2\">",
]  # fmt: skip


def hostile_body(rng: random.Random) -> str:
    body = "".join(rng.choice(PIECES) for _ in range(rng.randrange(0, 40)))
    if rng.random() < 0.3:  # a long line that ends near the limit, with trailing whitespace
        body += "\n" + "b" * rng.randrange(70, 80) + rng.choice([" ", "\t", "  ", " \t", "=", "é"])
    return body


# Plain headers: these tests are about the bodies (a long non-ASCII name costs ms to fold).
BODY_ARGS = {**WIRE_ARGS, "from_addr": FROM, "to_name": "Ada", "unsubscribe_url": ""}


def body_wire(rendered: RenderedDigest) -> bytes:
    return build_wire(rendered, **BODY_ARGS)  # type: ignore[arg-type]


def decoded_parts(wire: bytes) -> tuple[EmailMessage, EmailMessage]:
    text, html = parse_wire(wire).iter_parts()
    return text, html  # type: ignore[return-value]


def check_body_lines(wire: bytes) -> None:
    """CRLF line ends only, 7-bit, every body line within 76 characters, and nothing a
    transport could change: no trailing space or tab, no line that is only "."."""
    assert re.search(rb"(?<!\r)\n", wire) is None and re.search(rb"\r(?!\n)", wire) is None
    wire.decode("ascii")
    body = wire.split(b"\r\n\r\n", 1)[1]
    for line in body.split(b"\r\n"):
        assert len(line) <= 76, line
        assert not line.endswith((b" ", b"\t")), line
        assert line != b".", body


@pytest.mark.parametrize("seed", range(8))
def test_hostile_bodies_decode_to_the_text_and_keep_every_line_short(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(150):
        text, html = hostile_body(rng), hostile_body(rng)
        rendered = RenderedDigest(subject="Paper digest", text=text, html=html)
        wire = body_wire(rendered)
        assert body_wire(rendered) == wire  # a repeat is byte for byte the same
        check_body_lines(wire)
        for part, original in zip(decoded_parts(wire), (text, html), strict=True):
            # What a mail client shows: the text, UTF-8, its line ends made CRLF and the
            # last line ended (a bare CR or LF counts as a line end).
            expected = re.sub(r"\r\n|\r|\n", "\r\n", original)
            expected += "" if expected.endswith("\r\n") else "\r\n"
            raw = part.get_payload(decode=True)
            assert isinstance(raw, bytes)
            assert raw.decode("utf-8") == expected, (original, part.get_payload())
            assert part.get_content_charset() == "utf-8"
            assert part["Content-Transfer-Encoding"] in ("quoted-printable", "base64")


@pytest.mark.parametrize(
    "text",
    [
        "b" * 74 + " ",  # binascii alone writes "b" * 74 + " " as "b" * 74 + "=20": 77
        "b" * 73 + " \t",
        "b" * 72 + "   \nnext",
        "a" * 70 + " .\t \t",
        "b" * 75 + " ",
        "x" * 75 + ".",  # binascii alone puts the "." alone on the line after a soft break
        "x" * 150 + ".\n" + "y" * 75 + ".",
        ".",
        "a\n.\nb\n.",
        "From here\nFrom there",
        "=" * 200,
        "é" * 100,
        "注意力" * 80,  # mostly another script: base64
        "",
    ],
)
def test_edge_bodies(text: str) -> None:
    rendered = RenderedDigest(subject="Paper digest", text=text, html=text)
    wire = body_wire(rendered)
    check_body_lines(wire)
    expected = (text + ("" if text.endswith("\n") else "\n")).replace("\n", "\r\n")
    for part in decoded_parts(wire):
        assert part.get_payload(decode=True) == expected.encode("utf-8")


def test_real_digests_are_quoted_printable_and_decode_exactly(papers: list[Paper]) -> None:
    for n in (1, 5, 15, 30):
        rendered = render_digest(make_content(papers[:n], name="Zoë"))
        wire = wire_for(rendered)
        check_body_lines(wire)
        text, html = decoded_parts(wire)
        assert text["Content-Transfer-Encoding"] == html["Content-Transfer-Encoding"]
        assert text["Content-Transfer-Encoding"] == "quoted-printable"
        assert text.get_content().replace("\r\n", "\n") == rendered.text
        assert html.get_content().replace("\r\n", "\n") == rendered.html

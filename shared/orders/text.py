"""Text from outside, made safe for where it goes: the database, the supplier's XML, a log line.

Every text that comes from the shop, the supplier or a broker header passes
through one of these before it is stored, sent or printed:

- `storable` / `storable_json`: PostgreSQL's text and JSONB cannot hold NUL
  (and nothing that is not valid UTF-8, such as a lone surrogate);
- `xml_safe`: XML 1.0 cannot carry most control characters at all, not even
  escaped, so a document holding one does not parse;
- `printable`: a terminal obeys the escape sequences in what it prints, and a
  page shows text after a bidirectional override reversed;
- `mask_free_text`: an error text quoting a body can carry an e-mail, a phone
  number or a URL with credentials; they are masked wherever they appear;
- `stored_reason`: the two above, for an error text about to be stored.

All are pure and total: any str in, a str out, never an exception.
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# --- storing ------------------------------------------------------------------------------

# NUL, and UTF-16 surrogates (a str can hold a lone one; UTF-8 cannot encode it).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` without the characters a PostgreSQL text column refuses."""
    return _UNSTORABLE.sub("", text)


def storable_json(value: Any) -> Any:
    """A JSON value (dicts, lists, strings…) whose keys and strings a JSONB column accepts."""
    if isinstance(value, str):
        return storable(value)
    if isinstance(value, Mapping):
        return {storable(str(k)): storable_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [storable_json(v) for v in value]
    return value


# --- the supplier's XML -------------------------------------------------------------------

# What XML 1.0 §2.2 allows: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF],
# less DEL and the C1 controls (#x7F-#x9F), which it allows but discourages and XML 1.1 must
# escape: in a name or an address they are never meant, only pasted.
_NOT_XML = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_safe(text: str) -> str:
    """`text` without the characters an XML 1.0 document cannot carry (control characters, U+FFFE…)
    nor the ones it discourages (DEL, C1 controls)."""
    return _NOT_XML.sub("", text)


def bounded(text: str, limit: int) -> str:
    """At most `limit` characters (a cut, not an error: for text a receiver would refuse whole)."""
    return text if len(text) <= limit else text[:limit]


# --- printing: a terminal table, a web page --------------------------------------------------

# C0 and C1 controls but tab and line ends (an ESC starts a terminal's escape sequence), the
# bidirectional embeddings, overrides and isolates (they reorder what is shown after them), and
# lone surrogates (neither a UTF-8 terminal nor a page can show one).
_UNPRINTABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` without what would act on a terminal or a page instead of being shown."""
    return _UNPRINTABLE.sub("", text)


# --- masking --------------------------------------------------------------------------------

# scheme://user:password@host anywhere in a string (an error text, a URL under any key).
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):[^@/\s]*@")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# A run of digits with the separators phone numbers are written with ("+39 02 1234-5678",
# "(0049) 30/123456"). Counted and told apart from dates and times in _phone below.
_PHONE = re.compile(r"(?<![\w.:/-])\+?\(?\d[\d ()./-]{5,}\d(?![\w:])")
_DATE_OR_TIME = re.compile(r"\d{4}-\d{2}-\d{2}|\d{2}[:.]\d{2}[:.]\d{2}|\d{4}/\d{2}/\d{2}")
PHONE_MIN_DIGITS = 8
PHONE_MAX_DIGITS = 15  # E.164


def hide_url_credentials(text: str) -> str:
    return _URL_CREDENTIALS.sub(lambda m: f"{m['scheme']}{m['user']}:[secret]@", text)


def mask(value: Any) -> str:
    """Keep enough to recognise a value, never enough to read it: 'Zoë Müller' -> 'Z***r'."""
    text = printable(str(value))
    if len(text) <= 2:
        return "***"
    return f"{text[0]}***{text[-1]}"


def is_phone_number(text: str) -> bool:
    """A run of digits and separators (as found by a caller's pattern) that counts as a phone number:
    as many digits as a phone number has, and not a date or a time."""
    digits = sum(c.isdigit() for c in text)
    return PHONE_MIN_DIGITS <= digits <= PHONE_MAX_DIGITS and not _DATE_OR_TIME.search(text)


def _phone(match: re.Match[str]) -> str:
    found = match.group(0)
    return "[phone]" if is_phone_number(found) else found


def mask_free_text(text: str) -> str:
    """An error or reason text with e-mails, phone numbers and URL credentials masked.

    For texts nobody wrote for us (a supplier's or shop's error body, an
    exception's message): the parts that identify a person or open an account
    are replaced; the rest stays readable for the operator.
    """
    text = hide_url_credentials(text)
    text = _EMAIL.sub("[email]", text)
    return _PHONE.sub(_phone, text)


def stored_reason(text: str) -> str:
    """An outside error text as it may be stored: masked and storable."""
    return storable(mask_free_text(text))

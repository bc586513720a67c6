"""Known order formats Ordergate does not read, told by their first bytes: cXML and openTRANS
(XML, with or without their DOCTYPE), UN/EDIFACT and ANSI X12 (not XML at all). Such a document
is held as FORMAT_UNSUPPORTED naming the format, rather than as malformed or schema-invalid XML,
so that whoever works the queue knows at once what was sent.

Only the start of the payload is looked at, as text; nothing is parsed, nothing fetched.
"""

from __future__ import annotations

import codecs
import re

_HEAD = 4096
_EDIFACT = re.compile(r"(UNA.{6}\s*)?UNB\+", re.DOTALL)
_X12 = re.compile(r"ISA[^A-Za-z0-9\s]")
_DOCTYPE = re.compile(r"<!DOCTYPE\s+([A-Za-z_][\w.:-]*)([^>]*)>")
_FIRST_ELEMENT = re.compile(r"<([A-Za-z_][\w.:-]*)([^>]*)>")
_PROLOG = re.compile(r"\s*(<\?.*?\?>\s*|<!--.*?-->\s*)*", re.DOTALL)


def unsupported_format(payload: bytes) -> str:
    """The name of the known, unsupported format `payload` is in; "" for anything else."""
    head = _text(payload[:_HEAD]).lstrip()
    if _EDIFACT.match(head):
        return "UN/EDIFACT"
    if _X12.match(head):
        return "ANSI X12"
    rest = head[_prolog_end(head, 0) :]
    doctype = _DOCTYPE.match(rest)
    if doctype is not None:
        name, detail = doctype.group(1), doctype.group(2)
        rest = rest[_prolog_end(rest, doctype.end()) :]
        if name == "cXML":
            return "cXML"
        if name in ("ORDER", "ORDERCHANGE") and "opentrans" in detail.lower():
            return "openTRANS"
    element = _FIRST_ELEMENT.search(rest)
    if element is None:
        return ""
    local = element.group(1).rpartition(":")[2]
    if local == "cXML":
        return "cXML"
    if local in ("ORDER", "ORDERCHANGE") and "opentrans" in element.group(2).lower():
        return "openTRANS"
    return ""


def _prolog_end(text: str, start: int) -> int:
    """Where the XML declaration, processing instructions and comments from `start` end."""
    prolog = _PROLOG.match(text, start)
    return prolog.end() if prolog is not None else start


def _text(head: bytes) -> str:
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return head.decode("utf-16", errors="ignore")
    return head.decode("utf-8", errors="ignore").lstrip("\ufeff")

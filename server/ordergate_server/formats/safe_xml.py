"""Parse untrusted XML from bytes with every dangerous feature off.

- The payload is always bytes handed to the parser: never a string that a library could take
  for a file path or URL.
- Only UTF-8 (with or without a BOM) and UTF-16 with a BOM are read, and a declared encoding
  must match the bytes; so the checks below see the same characters the parser will.
- Any DOCTYPE or ENTITY declaration is refused before libxml2 sees the document: libxml2 reads
  an external DTD named by a DOCTYPE even with DTD loading off (seen with lxml 6 / libxml2 2.14),
  so "parse, then look at the DOCTYPE" would already have opened the file. No entity
  substitution and no network access on top of that.
- Bounded: nesting depth and element count are checked after the parse; libxml2 itself refuses
  depth over 256 and text nodes over 10 MB without the "huge tree" option, which stays off.
"""

from __future__ import annotations

import codecs
import functools
import re
from dataclasses import dataclass
from typing import cast

from lxml import etree

from ..domain.model import HoldCode, HoldReason


@dataclass(frozen=True)
class DocumentLimits:
    max_depth: int = 32
    max_elements: int = 50_000


class XmlRejected(Exception):
    """The payload is not an XML document we will read; carries the hold reason."""

    def __init__(self, reason: HoldReason) -> None:
        super().__init__(reason.message)
        self.reason = reason


def _untrusted_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        load_dtd=False,
        dtd_validation=False,
        no_network=True,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_DECLARED_ENCODING = re.compile(r"""^\s*<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_UTF8_NAMES = {"utf-8", "utf8"}
_ASCII_NAMES = {"us-ascii", "ascii"}
_UTF16_NAMES = {"utf-16", "utf16"}


def _malformed(message: str) -> XmlRejected:
    return XmlRejected(HoldReason(HoldCode.XML_MALFORMED, "", message))


def _forbidden() -> XmlRejected:
    return XmlRejected(
        HoldReason(
            HoldCode.XML_FORBIDDEN_CONSTRUCT,
            "",
            "Document type declarations (DOCTYPE, entities) are not accepted.",
        )
    )


def _decoded(payload: bytes) -> str:
    """The document as text, if its bytes are UTF-8 or BOM-marked UTF-16 and say so."""
    if payload.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        raise _malformed("UTF-32 is not accepted; send UTF-8.")
    utf16 = payload.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    try:
        text = payload.decode("utf-16") if utf16 else payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _malformed(
            f"The payload is not valid UTF-8 (byte {exc.start}); send UTF-8."
        ) from None
    if "\x00" in text:
        raise _malformed("The payload contains NUL characters (UTF-16 without a BOM?); send UTF-8.")
    match = _DECLARED_ENCODING.match(text)
    if match:
        declared = match.group(1).lower()
        fits = (
            declared in _UTF16_NAMES
            if utf16
            else declared in _UTF8_NAMES or (declared in _ASCII_NAMES and text.isascii())
        )
        if not fits:
            actual = "UTF-16" if utf16 else "UTF-8"
            raise _malformed(
                f"The document declares encoding {match.group(1)!r} but is {actual}; "
                "send UTF-8 and declare it (or declare nothing)."
            )
    return text


def parse_untrusted(payload: bytes, limits: DocumentLimits) -> etree._Element:
    """Parse `payload` or raise XmlRejected with a reason a person can act on."""
    if not payload.strip():
        raise _malformed("The payload is empty.")
    text = _decoded(payload)
    if "<!DOCTYPE" in text or "<!ENTITY" in text:
        raise _forbidden()
    try:
        # A parser per call: lxml parsers keep state and are not meant to be shared by threads.
        root = etree.fromstring(payload, _untrusted_parser())
    except etree.XMLSyntaxError as exc:
        message = str(exc.msg)
        code = (
            HoldCode.XML_LIMIT_EXCEEDED if "Excessive depth" in message else HoldCode.XML_MALFORMED
        )
        raise XmlRejected(HoldReason(code, "", f"Not well-formed XML: {message}")) from None
    if getattr(root.getroottree().docinfo, "doctype", ""):  # the scan above should catch all
        raise _forbidden()
    _check_size(root, limits)
    return root


def _check_size(root: etree._Element, limits: DocumentLimits) -> None:
    too_deep, count = _size_checks(limits.max_depth)
    if too_deep(root):
        what = f"deeper than {limits.max_depth} levels"
    elif cast(float, count(root)) > limits.max_elements:
        what = f"more than {limits.max_elements} elements"
    else:
        return
    raise XmlRejected(HoldReason(HoldCode.XML_LIMIT_EXCEEDED, "", f"The document is {what}."))


@functools.lru_cache(maxsize=8)
def _size_checks(max_depth: int) -> tuple[etree.XPath, etree.XPath]:
    """Compiled XPath tests, evaluated in libxml2 rather than by walking the tree in Python
    (which cost more than parsing): is there an element below `max_depth` levels, the root
    being level 1; and how many elements are there (comments and PIs are dropped by the
    parser)."""
    return (
        etree.XPath("boolean(" + "*/" * (max_depth - 1) + "*)"),
        etree.XPath("count(descendant-or-self::*)"),
    )

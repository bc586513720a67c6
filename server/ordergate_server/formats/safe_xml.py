"""Parse untrusted XML from bytes with every dangerous feature off.

- The payload is always bytes handed to the parser: never a string that a library could take
  for a file path or URL.
- No entity substitution, no DTD loading, no network; any DOCTYPE at all is refused, so entity
  definitions (billion laughs, XXE) never get a chance.
- Bounded: nesting depth and element count are checked after the parse; libxml2 itself refuses
  depth over 256 and text nodes over 10 MB without the "huge tree" option, which stays off.
"""

from __future__ import annotations

from dataclasses import dataclass

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


def parse_untrusted(payload: bytes, limits: DocumentLimits) -> etree._Element:
    """Parse `payload` or raise XmlRejected with a reason a person can act on."""
    if not payload.strip():
        raise XmlRejected(HoldReason(HoldCode.XML_MALFORMED, "", "The payload is empty."))
    try:
        # A parser per call: lxml parsers keep state and are not meant to be shared by threads.
        root = etree.fromstring(payload, _untrusted_parser())
    except etree.XMLSyntaxError as exc:
        message = str(exc.msg)
        code = (
            HoldCode.XML_LIMIT_EXCEEDED if "Excessive depth" in message else HoldCode.XML_MALFORMED
        )
        raise XmlRejected(HoldReason(code, "", f"Not well-formed XML: {message}")) from None
    except ValueError as exc:  # e.g. a str with an encoding declaration, control characters
        raise XmlRejected(
            HoldReason(HoldCode.XML_MALFORMED, "", f"Not readable XML: {exc}")
        ) from None
    if getattr(root.getroottree().docinfo, "doctype", ""):
        raise XmlRejected(
            HoldReason(
                HoldCode.XML_FORBIDDEN_CONSTRUCT,
                "",
                "Document type declarations (DOCTYPE, entities) are not accepted.",
            )
        )
    _check_size(root, limits)
    return root


def _check_size(root: etree._Element, limits: DocumentLimits) -> None:
    count = 0
    stack = [(root, 1)]
    while stack:
        element, depth = stack.pop()
        count += 1
        if depth > limits.max_depth or count > limits.max_elements:
            what = (
                f"deeper than {limits.max_depth} levels"
                if depth > limits.max_depth
                else (f"more than {limits.max_elements} elements")
            )
            raise XmlRejected(
                HoldReason(HoldCode.XML_LIMIT_EXCEEDED, "", f"The document is {what}.")
            )
        stack.extend((child, depth + 1) for child in element)

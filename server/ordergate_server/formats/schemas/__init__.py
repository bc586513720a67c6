"""XML schemas shipped with the server (trusted files, loaded once per thread)."""

from __future__ import annotations

import threading
from pathlib import Path

from lxml import etree

SCHEMA_DIR = Path(__file__).resolve().parent
NATIVE_ORDER_XSD = SCHEMA_DIR / "ordergate-order-v1.xsd"
# The OASIS UBL 2.1 schemas, vendored unmodified (ubl-2.1/SOURCES.md, SHA256SUMS).
UBL_DIR = SCHEMA_DIR / "ubl-2.1"
UBL_ORDER_XSD = UBL_DIR / "xsd" / "maindoc" / "UBL-Order-2.1.xsd"
UBL_ORDER_RESPONSE_XSD = UBL_DIR / "xsd" / "maindoc" / "UBL-OrderResponse-2.1.xsd"

_local = threading.local()
# libxml2 sets up its built-in schema types on the first schema compile in a process, unsafely:
# threads compiling at once then fail ("xmlSchemaPValAttrNodeValue, the given type is not a
# built-in type"). Compiling happens once per thread, so the lock costs nothing after warm-up.
_compile_lock = threading.Lock()


def _trusted_parser() -> etree.XMLParser:
    # Our own schema files: local includes allowed, the network never.
    return etree.XMLParser(no_network=True, resolve_entities=False)


def compiled(path: Path) -> etree.XMLSchema:
    """The compiled lxml schema for `path`, one per thread (validation keeps per-object state)."""
    cache: dict[Path, etree.XMLSchema] = _local.__dict__.setdefault("schemas", {})
    schema = cache.get(path)
    if schema is None:
        with _compile_lock:
            schema = etree.XMLSchema(etree.parse(str(path), _trusted_parser()))
        cache[path] = schema
    return schema

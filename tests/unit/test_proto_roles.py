"""The roles each RPC's comment in protos/ names are the roles the server admits."""

from __future__ import annotations

import re

from ordergate_server.api.permissions import ALLOWED_ROLES

from ..support import ROOT

_COMMENT = re.compile(r"((?:[ \t]*//.*\n)+)[ \t]*(service|rpc) (\w+)")
_ROLES = re.compile(r"Roles?: ([a-z ,()]+?)\.")


def _roles(comment: str) -> set[str] | None:
    text = " ".join(line.strip().removeprefix("//").strip() for line in comment.splitlines())
    match = _ROLES.search(text)
    if match is None:
        return None
    return {re.sub(r"\(.*?\)", "", role).strip() for role in match.group(1).split(",")}


def documented_roles() -> dict[str, set[str]]:
    documented: dict[str, set[str]] = {}
    for proto in sorted((ROOT / "protos").rglob("*.proto")):
        service_roles: set[str] | None = None
        service = ""
        for comment, kind, name in _COMMENT.findall(proto.read_text(encoding="utf-8")):
            roles = _roles(comment)
            if kind == "service":
                service, service_roles = name, roles
                continue
            found = roles if roles is not None else service_roles
            assert found is not None, f"{service}.{name} says nothing about roles"
            documented[f"/ordergate.v1.{service}/{name}"] = found
    return documented


def test_every_rpc_comment_names_exactly_the_roles_it_admits() -> None:
    allowed = {method: {r.value for r in roles} for method, roles in ALLOWED_ROLES.items()}
    assert documented_roles() == allowed

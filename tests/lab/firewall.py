"""nftables rules inside the namespace: TCP reset / ICMP reject for refused, drop for silent peers."""

from __future__ import annotations

from .netns import Namespace

TABLE = "ghostcap_lab"


def ruleset(rules: tuple[str, ...]) -> str:
    body = "\n".join(f"        {rule}" for rule in rules)
    return (
        f"table inet {TABLE} {{\n"
        "    chain input {\n"
        "        type filter hook input priority 0; policy accept;\n"
        f"{body}\n"
        "    }\n"
        "}\n"
    )


def apply(ns: Namespace, rules: tuple[str, ...]) -> str:
    """Load ``rules`` into the namespace's own nftables; returns the ruleset as listed by nft."""
    if not rules:
        return ""
    ns.run(["nft", "-f", "-"], input=ruleset(rules))
    return ns.run(["nft", "list", "table", "inet", TABLE])

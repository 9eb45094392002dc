"""nftables rules inside the namespace: TCP reset / ICMP reject for refused, drop for silent peers."""

from __future__ import annotations

from .netns import Namespace

TABLE = "ghostcap_lab"
POWER_TABLE = "ghostcap_lab_power"  # runtime rules of a power cut (lab._power_cut), loaded and deleted mid-run


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


def power_cut_ruleset(addr: str, port: int) -> str:
    """Drop one TCP endpoint's traffic both ways. The output hook runs before the loopback transmit where
    tcpdump taps, so nothing that endpoint's kernel sends (the FIN of the killed process, the RST of ``ss -K``)
    is captured or delivered; the input hook runs after the tap, so what the peer sends to it is captured
    (its retransmissions) but never delivered."""
    fam = "ip6" if ":" in addr else "ip"
    return (
        f"table inet {POWER_TABLE} {{\n"
        "    chain output {\n"
        "        type filter hook output priority 0; policy accept;\n"
        f"        {fam} saddr {addr} tcp sport {port} drop\n"
        "    }\n"
        "    chain input {\n"
        "        type filter hook input priority 0; policy accept;\n"
        f"        {fam} daddr {addr} tcp dport {port} drop\n"
        "    }\n"
        "}\n"
    )

"""DNS edge: TXT look-ups for domain verification (dnspython), no business rules."""

from broker.dns.txt import TxtLookup, TxtResult, parse_resolver

__all__ = ["TxtLookup", "TxtResult", "parse_resolver"]

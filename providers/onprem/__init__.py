"""The on-premises provider: DNS through RFC 2136 dynamic updates signed with TSIG (BIND 9 and
any authoritative server that speaks them, :mod:`.dns`) and load balancing through HAProxy's
Runtime API (:mod:`.haproxy`)."""

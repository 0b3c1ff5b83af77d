"""Connecting to Redis and packing commands (cluster/redis_line.py): TLS options read as redis-py reads them, RESP commands."""

from __future__ import annotations

import ssl

from redis.asyncio.connection import parse_url

from realtime_sio.cluster.redis_line import pack, tls_context


def test_rediss_verifies_the_server_by_default() -> None:
    """A plain rediss:// URL checks the certificate and the host name."""
    context = tls_context(dict(parse_url("rediss://redis.internal:6380/0")))
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname


def test_rediss_options_from_the_query_string() -> None:
    """ssl_cert_reqs=none turns verification off (as redis-py does); ssl_check_hostname=false keeps the chain check."""
    off = tls_context(dict(parse_url("rediss://redis.internal:6380/0?ssl_cert_reqs=none")))
    assert off.verify_mode == ssl.CERT_NONE and not off.check_hostname
    chain_only = tls_context(dict(parse_url("rediss://10.0.0.5:6380/0?ssl_check_hostname=false")))
    assert chain_only.verify_mode == ssl.CERT_REQUIRED and not chain_only.check_hostname


def test_commands_are_resp_arrays_of_bulk_strings() -> None:
    """AUTH with a password holding spaces and non-ASCII characters is framed by byte length."""
    assert pack(("SUBSCRIBE", "rsio:events")) == b"*2\r\n$9\r\nSUBSCRIBE\r\n$11\r\nrsio:events\r\n"
    assert pack(("AUTH", "pä ss")) == b"*2\r\n$4\r\nAUTH\r\n$6\r\np\xc3\xa4 ss\r\n"
    assert pack(("EVALSHA", "ab", 2, 0.5)) == b"*4\r\n$7\r\nEVALSHA\r\n$2\r\nab\r\n$1\r\n2\r\n$3\r\n0.5\r\n"

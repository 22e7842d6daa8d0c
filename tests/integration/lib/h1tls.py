"""tests/integration/lib/h1tls.py - raw HTTP/1.1 over TLS for hostile-input tests.

The bytes are the test's own (split headers, bodies after an early answer, trickled
requests); this only opens the TLS connection to 127.0.0.1 (ALPN http/1.1, verifying the
test CA) and reads what comes back. Used by 27_bad_http1.sh, 80_h1_smuggling.sh and
84_slow_readers.sh.
"""
import socket
import ssl


def connect(port, ca, rcvbuf=None, timeout=10):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols(["http/1.1"])
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", port))
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_all(s, timeout=10):
    """Read until EOF, an error or TIMEOUT seconds without a byte: (bytes, how it ended:
    "eof", "timeout" or the exception's class name)."""
    got, end = b"", "timeout"
    s.settimeout(timeout)
    try:
        while True:
            b = s.recv(1 << 16)
            if not b:
                end = "eof"
                break
            got += b
    except socket.timeout:
        end = "timeout"
    except OSError as e:  # ssl.SSLError is an OSError
        end = type(e).__name__
    return got, end

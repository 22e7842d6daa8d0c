"""tests/integration/lib/pyhelp.py - one long-lived python3 for lib.sh's helpers.

Starting python3 costs 30 to 50 ms of CPU, and the JSON and HTTP checks of lib.sh ran it
thousands of times a suite. lib.sh starts this once per test and runs each
helper's script here instead (pyrun, pyc): same script text, same argv, same output and exit
status, only without a new process.

Requests on stdin: the number of fields, then the fields, each NUL-terminated: the script's
text, then its arguments (sys.argv[1:]). Each script runs in fresh globals with sys.argv
set, sys.stdout captured and an empty stdin; SystemExit gives the status, an uncaught
exception prints its traceback to stderr and gives 1. Answer on stdout: "STATUS LENGTH\\n"
and LENGTH bytes of what the script printed. Compiled scripts are kept by their text.
"""
import io
import os
import sys
import traceback


class Fields:
    """NUL-terminated fields from a file descriptor."""

    def __init__(self, fd):
        self.fd = fd
        self.buf = b""

    def next(self):
        while True:
            i = self.buf.find(b"\0")
            if i >= 0:
                field, self.buf = self.buf[:i], self.buf[i + 1:]
                return field
            chunk = os.read(self.fd, 65536)
            if not chunk:
                return None
            self.buf += chunk


def text(b):
    return b.decode("utf-8", "surrogateescape")


def run(code, argv):
    buf = io.BytesIO()
    out = io.TextIOWrapper(buf, encoding="utf-8", errors="surrogateescape", write_through=True)
    sys.stdout, sys.argv = out, ["-"] + argv
    rc = 0
    try:
        exec(code, {"__name__": "__main__"})
    except SystemExit as e:
        if e.code is None:
            rc = 0
        elif isinstance(e.code, int):
            rc = e.code
        else:
            print(e.code, file=sys.stderr)
            rc = 1
    except BaseException:  # the script's own failure, reported as python3 would
        traceback.print_exc()
        rc = 1
    finally:
        out.flush()
        sys.stdout = sys.__stdout__
    return rc, buf.getvalue()


def main():
    # The requests come on a copy of fd 0; fd 0 itself becomes /dev/null, so that a script
    # reading stdin (or opening /dev/stdin) sees an empty file instead of the requests.
    fields = Fields(os.dup(0))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    sys.stdin = open(0, closefd=False)
    answer = sys.stdout.buffer
    compiled = {}
    while True:
        n = fields.next()
        if n is None:
            return
        parts = [fields.next() for _ in range(int(n))]
        if any(p is None for p in parts) or not parts:
            return
        src = parts[0]
        code = compiled.get(src)
        if code is None:
            try:
                code = compiled[src] = compile(text(src), "<lib.sh>", "exec")
            except SyntaxError:
                traceback.print_exc()
                answer.write(b"1 0\n")
                answer.flush()
                continue
        rc, data = run(code, [text(a) for a in parts[1:]])
        answer.write(b"%d %d\n" % (rc & 0xFF, len(data)) + data)
        answer.flush()


main()

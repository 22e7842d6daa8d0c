#!/usr/bin/env python3
"""bench/report.py - the numbers of bench/run.sh.

    report.py latency LOGFILE
        LOGFILE: h2load --log-file (tab-separated: start time in us since the epoch, HTTP
        status (-1: failed stream), us from start to the end of the response). Prints
        "rows bad p50_us p99_us" (bad: rows whose status is not 2xx).

    report.py table RUNS.tsv AUDIT.tsv IDLE.tsv SPLIT.tsv HEADER.md [INSTR.tsv]
        Prints the markdown report: HEADER.md, then the throughput table, the audit
        log's group commit, the idle connection memory table, the batch split timing
        and the instructions per request (each only when its file has rows).

RUNS.tsv columns (one row per h2load run):
    kind proto mode rep requests rps p50_us p99_us cpu_us_per_req rss_kib offered_rps others
    (mode: sat or fixed; cpu, rss and others are "-" for the direct kind; offered_rps "-"
    for sat; others: % of the proxy's CPU busy with something else during the run)
AUDIT.tsv: kind records fdatasync_calls
IDLE.tsv: proxy proto conns rss_before_kib rss_after_kib per_conn_kib
SPLIT.tsv: label groups parts runs median_total_ms median_after_tls_ms
INSTR.tsv: kind proto tool n1 count1 n2 count2 per_request cycles_per_request
    (counts: instructions of a whole smsguard run with n1 and n2 requests; cycles "-"
    under callgrind)
"""
import os
import statistics
import sys

KIND_ORDER = ["sg-full", "sg-jwt", "sg-fwd", "nghttpx", "haproxy", "h2o", "direct"]
PROTO_ORDER = ["h2", "h1"]


def latency(path):
    lat, bad = [], 0
    with open(path) as f:
        for line in f:
            cols = line.split("\t")
            if len(cols) < 3:
                continue
            status = int(cols[1])
            if not 200 <= status < 300:
                bad += 1
            lat.append(int(cols[2]))
    if not lat:
        print("0 0 0 0")
        return
    lat.sort()

    def pct(p):  # nearest rank
        k = max(1, -(-len(lat) * p // 100))
        return lat[int(k) - 1]

    print(len(lat), bad, pct(50), pct(99))


def read_tsv(path):
    rows = []
    try:
        with open(path) as f:
            for line in f:
                line = line.rstrip("\n")
                if line and not line.startswith("#"):
                    rows.append(line.split("\t"))
    except FileNotFoundError:
        pass
    return rows


def med(values):
    values = [float(v) for v in values if v not in ("-", "")]
    return statistics.median(values) if values else None


def fmt(v, spec, none="–"):
    return none if v is None else format(v, spec)


def ratio(v, ref):
    return "–" if v is None or not ref else "%.2f" % (v / ref)


def throughput_table(rows):
    # (kind, proto) -> mode -> list of rows
    runs = {}
    for r in rows:
        kind, proto, mode = r[0], r[1], r[2]
        runs.setdefault((kind, proto), {}).setdefault(mode, []).append(r)
    kinds = [k for k in KIND_ORDER if any(k == kp[0] for kp in runs)]
    kinds += sorted({kp[0] for kp in runs} - set(kinds))
    summary = {}
    for (kind, proto), modes in runs.items():
        sat, fixed = modes.get("sat", []), modes.get("fixed", [])
        summary[(kind, proto)] = {
            "n": len(sat),
            "sat_rps": med(r[5] for r in sat),
            "sat_p50": med(r[6] for r in sat),
            "sat_p99": med(r[7] for r in sat),
            "fix_rps": med(r[5] for r in fixed),
            "offered": med(r[10] for r in fixed),
            "fix_p50": med(r[6] for r in fixed),
            "fix_p99": med(r[7] for r in fixed),
            "cpu": med(r[8] for r in fixed),
            "sat_cpu": med(r[8] for r in sat),
            "others": max([float(r[11]) for r in sat + fixed if len(r) > 11 and r[11] != "-"],
                          default=None),
            "rss": max([int(r[9]) for r in sat + fixed if r[9] != "-"], default=None),
        }
    out = []
    short = False
    out.append("| kind | proto | runs | sat. req/s | ×nghttpx | sat. p50 ms | sat. p99 ms "
               "| fixed req/s | fixed p50 ms | fixed p99 ms | CPU µs/req (fixed) | ×nghttpx "
               "| CPU µs/req (sat.) | RSS max MiB | others on its CPU, max % |")
    out.append("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    for kind in kinds:
        for proto in PROTO_ORDER:
            s = summary.get((kind, proto))
            if s is None:
                continue
            ref = summary.get(("nghttpx", proto), {})
            ms = lambda us: None if us is None else us / 1000.0  # noqa: E731
            fixed = fmt(s["fix_rps"], ".0f")
            if s["fix_rps"] is not None and s["offered"] and s["fix_rps"] < 0.95 * s["offered"]:
                fixed += " ⚠"
                short = True
            out.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                kind, proto, s["n"],
                fmt(s["sat_rps"], ".0f"), ratio(s["sat_rps"], ref.get("sat_rps")),
                fmt(ms(s["sat_p50"]), ".2f"), fmt(ms(s["sat_p99"]), ".2f"),
                fixed,
                fmt(ms(s["fix_p50"]), ".2f"), fmt(ms(s["fix_p99"]), ".2f"),
                fmt(s["cpu"], ".1f"), ratio(s["cpu"], ref.get("cpu")),
                fmt(s["sat_cpu"], ".1f"),
                fmt(None if s["rss"] is None else s["rss"] / 1024.0, ".1f"),
                fmt(s["others"], ".0f")))
    if short:
        out.append("")
        out.append("⚠ below 95 % of the offered rate. Over HTTP/2 the proxy could not keep up. Over "
                   "HTTP/1.1 each connection carries one request at a time, so the rate is reached "
                   "only while a request takes less than clients / rate (1.6 ms for 32 clients at "
                   "20000 req/s): the proxy's latency, not its CPU, was the limit. Either way that "
                   "row's fixed-rate CPU and latency are not measured at the offered rate; compare "
                   "them with care (BENCH_RPS_H1 lowers the HTTP/1.1 rate).")
    return out


def audit_table(rows):
    out = ["| kind | audit records | fdatasync calls | records per call |",
           "|---|--:|--:|--:|"]
    for r in rows:
        n, syncs = int(r[1]), int(r[2])
        out.append("| %s | %d | %d | %s |" % (r[0], n, syncs, "%.1f" % (n / syncs) if syncs else "–"))
    return out


def idle_table(rows):
    out = ["| proxy | proto | idle connections | RSS before MiB | RSS after MiB | KiB per connection |",
           "|---|---|--:|--:|--:|--:|"]
    for r in rows:
        out.append("| %s | %s | %s | %.1f | %.1f | %.1f |" % (
            r[0], r[1], r[2], int(r[3]) / 1024.0, int(r[4]) / 1024.0, float(r[5])))
    return out


def split_table(rows):
    out = ["| request | groups | upstream calls | runs | median total ms | median after TLS ms |",
           "|---|--:|--:|--:|--:|--:|"]
    by = {}
    for r in rows:
        by[r[0]] = r
        out.append("| %s | %s | %s | %s | %.2f | %.2f |" % (
            r[0], r[1], r[2], r[3], float(r[4]), float(r[5])))
    small, big = by.get("4 groups"), by.get("100 groups")
    if small and big and float(small[4]) > 0 and float(small[5]) > 0:
        out.append("")
        out.append("100 groups / 4 groups: **%.2f×** (total), **%.2f×** (after the TLS handshake)."
                   % (float(big[4]) / float(small[4]), float(big[5]) / float(small[5])))
    return out


def instr_table(rows):
    out = ["| kind | proto | tool | instructions, run of N1 | instructions, run of N2 "
           "| instructions per request | cycles per request |",
           "|---|---|---|--:|--:|--:|--:|"]
    for r in rows:
        cyc = r[8] if len(r) > 8 and r[8] not in ("", "-") else None
        out.append("| %s | %s | %s | %s (%s req) | %s (%s req) | **%.1fk** | %s |" % (
            r[0], r[1], r[2], "{:,}".format(int(r[4])), r[3], "{:,}".format(int(r[6])), r[5],
            int(r[7]) / 1000.0, "–" if cyc is None else "%.1fk" % (int(cyc) / 1000.0)))
    return out


def table(runs_path, audit_path, idle_path, split_path, header_path, instr_path=None):
    out = []
    with open(header_path) as f:
        out.append(f.read().rstrip("\n"))
    sections = ((runs_path, "Throughput, latency, CPU", throughput_table),
                (audit_path, "Audit log group commit (sync = \"%s\", whole run)"
                 % os.environ.get("BENCH_AUDIT_SYNC", "always"), audit_table),
                (idle_path, "Memory per idle TLS connection", idle_table),
                (split_path, "Batch split (sms-sim --max-batch 4)", split_table),
                (instr_path, "Instructions per request (smsguard, workers = 1)", instr_table))
    for path, title, render in sections:
        rows = read_tsv(path) if path else []
        if rows:
            out += ["", "### " + title, ""] + render(rows)
    print("\n".join(out))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "latency":
        latency(sys.argv[2])
    elif len(sys.argv) in (7, 8) and sys.argv[1] == "table":
        table(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Summarise bench/p2p/run.sh results: DIR/results.csv -> DIR/table.md, DIR/plot.svg.

Standard library only. Every CSV line is one run and counts: a run whose lab,
relay or camera failed, or whose phone never connected, is a failed run in
the connectivity figures (never dropped).

Per pair:
  connected      runs in which the phone reported a connection
  stream OK      runs with "result: OK" (connected, every frame verified, stream finished)
  connect        "connected via relay at N ms" (ms since the phone's first packet),
                 median / max over the runs that connected via the relay
  direct         runs in which a direct path was validated (or connected directly)
  migration      direct validated - relay connected, median / max over those runs
Targets:
  connectivity   every run connected and ended OK
  direct         where a direct path is possible (RFC 4787): every run went direct
  migration      where a direct path is possible: every run migrated, each within 1000 ms

Usage: report.py DIR
"""
import csv
import html
import os
import sys

MIGRATION_TARGET_MS = 1000


def median(xs):
    xs = sorted(xs)
    n = len(xs)
    if n == 0:
        return None
    if n % 2:
        return float(xs[n // 2])
    return (xs[n // 2 - 1] + xs[n // 2]) / 2.0


def fmt(x):
    if x is None:
        return "–"
    return "%d" % round(x)


def pct(k, n):
    return "%d/%d (%d %%)" % (k, n, round(100.0 * k / n)) if n else "0/0"


def load(d):
    with open(os.path.join(d, "results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    meta = {}
    try:
        with open(os.path.join(d, "meta.txt")) as f:
            for line in f:
                if "=" in line:
                    k, v = line.rstrip("\n").split("=", 1)
                    meta[k] = v
    except OSError:
        pass
    return rows, meta


def summarise(rows):
    order, by = [], {}
    for r in rows:
        p = r["pair"]
        if p not in by:
            by[p] = []
            order.append(p)
        by[p].append(r)
    out = []
    for p in order:
        rs = by[p]
        n = len(rs)
        exp = rs[0]["expect_direct"] == "1"
        conn = [r for r in rs if r["connected"] == "1"]
        ok = [r for r in rs if r["result"] == "OK"]
        relay_conn = [int(r["connect_ms"]) for r in conn if r["via"] == "relay"]
        via_direct = sum(1 for r in conn if r["via"] == "direct")
        direct = [r for r in rs if r["direct"] == "1"]
        mig = [int(r["migration_ms"]) for r in direct
               if r["via"] == "relay" and r["migration_ms"] != ""]
        final_direct = sum(1 for r in rs if r["final_path"] == "direct")
        fallbacks = sum(int(r["fallbacks"] or 0) for r in rs)
        statuses = {}
        for r in rs:
            if r["status"] != "ok":
                statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        s = dict(pair=p, a=rs[0]["profile_a"], b=rs[0]["profile_b"], n=n, exp=exp,
                 conn=len(conn), ok=len(ok), relay_conn=relay_conn, via_direct=via_direct,
                 direct=len(direct), mig=mig, final_direct=final_direct,
                 fallbacks=fallbacks, statuses=statuses,
                 mig_over=sum(1 for m in mig if m > MIGRATION_TARGET_MS))
        s["t_conn"] = s["conn"] == n and s["ok"] == n
        if exp:
            s["t_direct"] = s["direct"] == n
            s["t_mig"] = len(mig) + via_direct == n and s["mig_over"] == 0
        else:
            s["t_direct"] = s["t_mig"] = None
        out.append(s)
    return out


def verdict(s):
    miss = []
    if not s["t_conn"]:
        miss.append("connectivity")
    if s["t_direct"] is False:
        miss.append("direct")
    if s["t_mig"] is False:
        miss.append("migration ≤ 1 s")
    if miss:
        return "**missed: " + ", ".join(miss) + "**"
    return "met" if s["exp"] else "met (relay only)"


def table(summ, rows, meta):
    L = []
    L.append("| Pair (camera A ↔ phone B) | Runs | Connected | Stream OK | "
             "Relay connect median / max (ms) | Direct expected | Direct | "
             "Migration median / max (ms after relay connect) | Targets |")
    L.append("|---|---:|---:|---:|---:|:-:|---:|---:|---|")
    for s in summ:
        rc = s["relay_conn"]
        conn_txt = "%s / %s" % (fmt(median(rc)), fmt(max(rc) if rc else None))
        if s["via_direct"]:
            conn_txt += " (%d direct at once)" % s["via_direct"]
        mig = s["mig"]
        mig_txt = "%s / %s" % (fmt(median(mig)), fmt(max(mig) if mig else None)) if mig else "–"
        if s["mig_over"]:
            mig_txt += " (%d > 1 s)" % s["mig_over"]
        direct_txt = pct(s["direct"], s["n"])
        if not s["exp"] and s["direct"]:
            direct_txt += " (unexpected)"
        L.append("| %s ↔ %s | %d | %s | %s | %s | %s | %s | %s | %s |" % (
            s["a"], s["b"], s["n"], pct(s["conn"], s["n"]), pct(s["ok"], s["n"]),
            conn_txt, "yes" if s["exp"] else "no", direct_txt, mig_txt, verdict(s)))
    # Overall figures.
    n = len(rows)
    conn = sum(s["conn"] for s in summ)
    ok = sum(s["ok"] for s in summ)
    exp = [s for s in summ if s["exp"]]
    exp_n = sum(s["n"] for s in exp)
    exp_direct = sum(s["direct"] for s in exp)
    all_mig = [m for s in summ for m in s["mig"]]
    all_conn = [c for s in summ for c in s["relay_conn"]]
    within = sum(1 for s in exp for m in s["mig"] if m <= MIGRATION_TARGET_MS)
    L.append("")
    L.append("Overall: connected %s, stream OK %s; direct on the pairs where it is "
             "possible %s (migrated within 1 s: %s); relay connect median %s ms, max %s ms; "
             "migration median %s ms, max %s ms." % (
                 pct(conn, n), pct(ok, n), pct(exp_direct, exp_n), pct(within, exp_n),
                 fmt(median(all_conn)), fmt(max(all_conn) if all_conn else None),
                 fmt(median(all_mig)), fmt(max(all_mig) if all_mig else None)))
    missed = [s["pair"] for s in summ if verdict(s).startswith("**")]
    L.append("")
    L.append("Targets: " + ("met on every pair." if not missed else
                            "missed on %d of %d pairs: %s." % (len(missed), len(summ),
                                                                ", ".join(missed))))
    unexp = [s["pair"] for s in summ if not s["exp"] and s["direct"]]
    if unexp:
        L.append("")
        L.append("Direct path on a pair where RFC 4787 says it is not possible: " +
                 ", ".join(unexp) + ".")
    bad = {}
    for s in summ:
        for k, v in s["statuses"].items():
            bad[k] = bad.get(k, 0) + v
    if bad:
        L.append("")
        L.append("Runs whose setup failed (counted as failed): " +
                 ", ".join("%s %d" % kv for kv in sorted(bad.items())) + ".")
    fb = sum(s["fallbacks"] for s in summ)
    fd = sum(s["final_direct"] for s in summ)
    L.append("")
    L.append("Final path direct in %d runs; fallbacks to the relay after a "
             "migration: %d." % (fd, fb))
    return "\n".join(L) + "\n"


def nice_ceil(x):
    if x <= 0:
        return 100
    p = 1
    while p * 10 <= x:
        p *= 10
    for m in (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * p >= x:
            return m * p
    return 10 * p


def svg(summ, meta):
    esc = html.escape
    row_h, top, left_lab = 22, 78, 150
    pw, gap = 360, 70
    n = len(summ)
    W = left_lab + 2 * pw + gap + 170
    H = top + n * row_h + 70
    cmax = nice_ceil(max([max(s["relay_conn"]) for s in summ if s["relay_conn"]] or [100]))
    mmax = nice_ceil(max([max(s["mig"]) for s in summ if s["mig"]] + [MIGRATION_TARGET_MS]))
    x1 = left_lab
    x2 = left_lab + pw + gap
    o = []
    o.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
             'viewBox="0 0 %d %d" font-family="DejaVu Sans, Arial, sans-serif" '
             'font-size="11">' % (W, H, W, H))
    o.append('<rect width="100%" height="100%" fill="white"/>')
    ns = sorted(set(s["n"] for s in summ))
    runs = "%d runs" % ns[0] if len(ns) == 1 else "%d–%d runs" % (ns[0], ns[-1])
    o.append('<text x="10" y="18" font-size="14" font-weight="bold">qpeer P2P in the NAT lab: '
             'time to a relayed connection and to migration (direct path validated)</text>')
    o.append('<title>qpeer P2P benchmark in the NAT lab</title>')
    o.append('<text x="10" y="36">%s; %s per pair, %s ms one-way delay per edge, '
             'LAB_INPUT_DROP=1. Dark bar: median, light bar: max.</text>' % (
                 esc(meta.get("date_utc", "")), runs, esc(meta.get("delay_ms", "?"))))

    def axis(x0, vmax, title, target=None):
        o.append('<text x="%d" y="%d" font-weight="bold">%s</text>' % (x0, top - 24, esc(title)))
        for i in range(6):
            v = vmax * i / 5.0
            x = x0 + pw * i / 5.0
            o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#ddd"/>' % (
                x, top - 6, x, top + n * row_h))
            o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">%d</text>' % (
                x, top + n * row_h + 14, round(v)))
        o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#555">ms</text>' % (
            x0 + pw / 2.0, top + n * row_h + 28))
        if target is not None:
            x = x0 + pw * target / vmax
            o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#c00" '
                     'stroke-dasharray="4,3"/>' % (x, top - 10, x, top + n * row_h))
            o.append('<text x="%.1f" y="%d" fill="#c00" text-anchor="middle">target 1 s</text>' % (
                x, top - 12))

    axis(x1, cmax, "connected via relay (ms after the first packet)")
    axis(x2, mmax, "migration complete (ms after the relay connection)", MIGRATION_TARGET_MS)
    for i, s in enumerate(summ):
        y = top + i * row_h
        if i % 2:
            o.append('<rect x="0" y="%d" width="%d" height="%d" fill="#f6f6f6"/>' % (
                y, W, row_h))
        o.append('<text x="%d" y="%d" text-anchor="end">%s ↔ %s</text>' % (
            left_lab - 8, y + 15, esc(s["a"]), esc(s["b"])))
        rc = s["relay_conn"]
        if rc:
            med, mx = median(rc), max(rc)
            o.append('<rect x="%d" y="%d" width="%.1f" height="14" fill="#9ecae1"/>' % (
                x1, y + 4, pw * mx / cmax))
            o.append('<rect x="%d" y="%d" width="%.1f" height="14" fill="#3182bd"/>' % (
                x1, y + 4, pw * med / cmax))
            o.append('<text x="%.1f" y="%d" fill="#333">%s / %s</text>' % (
                x1 + pw * mx / cmax + 4, y + 15, fmt(med), fmt(mx)))
        else:
            o.append('<text x="%d" y="%d" fill="#c00">never via relay</text>' % (x1 + 4, y + 15))
        mg = s["mig"]
        note = ""
        if mg:
            med, mx = median(mg), max(mg)
            col_l, col_d = ("#a1d99b", "#31a354") if mx <= MIGRATION_TARGET_MS else ("#fdae6b", "#e6550d")
            o.append('<rect x="%d" y="%d" width="%.1f" height="14" fill="%s"/>' % (
                x2, y + 4, pw * mx / mmax, col_l))
            o.append('<rect x="%d" y="%d" width="%.1f" height="14" fill="%s"/>' % (
                x2, y + 4, pw * med / mmax, col_d))
            note = "%s / %s" % (fmt(med), fmt(mx))
            if s["direct"] < s["n"]:
                note += "  (direct %d/%d)" % (s["direct"], s["n"])
            o.append('<text x="%.1f" y="%d" fill="#333">%s</text>' % (
                x2 + pw * mx / mmax + 4, y + 15, esc(note)))
        else:
            txt = "relay only (direct not possible)" if not s["exp"] else \
                "no direct path (0/%d)" % s["n"]
            o.append('<text x="%d" y="%d" fill="%s">%s</text>' % (
                x2 + 4, y + 15, "#777" if not s["exp"] else "#c00", esc(txt)))
    o.append('<text x="10" y="%d" fill="#555">Green: every migration within 1 s; orange: at least one '
             'over 1 s. Generated by bench/p2p/report.py from results.csv.</text>' % (H - 10))
    o.append("</svg>")
    return "\n".join(o) + "\n"


def main():
    if len(sys.argv) != 2:
        sys.stderr.write("usage: report.py DIR\n")
        return 2
    d = sys.argv[1]
    rows, meta = load(d)
    if not rows:
        sys.stderr.write("report.py: no runs in %s/results.csv\n" % d)
        return 1
    summ = summarise(rows)
    with open(os.path.join(d, "table.md"), "w") as f:
        f.write(table(summ, rows, meta))
    with open(os.path.join(d, "plot.svg"), "w") as f:
        f.write(svg(summ, meta))
    return 0


if __name__ == "__main__":
    sys.exit(main())

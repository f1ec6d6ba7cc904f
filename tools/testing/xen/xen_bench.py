# SPDX-License-Identifier: GPL-2.0
"""The tables, JSON and chart of `make bench` (tools/testing/xen/xen-test.py bench).

A bench run prints one line per measurement in the domU (xen_demo.sh's bench mode):

    [domU] # bench: front=F back=B batch=N requests=R ns=T notifications=S interrupts=I
    [domU] # bench: gnttab=one|batch32|entry|alloc cycles=N ns=T
    [domU] # bench: pv=blk-read|blk-write|net-rx|net-tx bytes=N ns=T
    [domU] # bench: storm=self events=N ns=T

(the second from xen_gnttab_bench: grant cycles through the grant table's C API; the third from the
stock PV drivers: xen-blkfront on xen-blkback, xen-netfront on xen-netback; the fourth from
xen_evtchn_storm: events taken from a looped-back port flooded from every vCPU, through
/dev/xen/evtchn). The last three kinds are the "core" rows: they measure the Xen core the frontend
domain's kernel runs.

This module turns the lines of one or more runs (one per clock: QEMU -icount, and host wall time)
into rows with the median and range of the rounds and the ratio to the C pair, adds the rows the
replacement issues are to measure, and the sizes of the C objects they replace, and writes them
as text (bench.txt), JSON (bench.json) and an SVG bar chart of the ratios (bench.svg).
"""

import json
import os
import re
import subprocess

BENCH_LINE = re.compile(r"^\[(domU2?)\] # bench: front=(\S+) back=(\S+) batch=(\d+) requests=(\d+) ns=(\d+)"
                        r"(?: notifications=(\d+) interrupts=(\d+))?$")

CORE_LINE = re.compile(r"^\[(domU2?)\] # bench: (?:gnttab=(one|batch32|entry|alloc) cycles|"
                       r"pv=(blk-read|blk-write|net-rx|net-tx) bytes|storm=(self) events|"
                       r"attach=(single|many) devices)=(\d+) ns=(\d+)$")
# The core rows, in the order of the tables, with their units.
CORE_ROWS = {"one": ("grant cycle (claim, grant, end, free), 1 in flight", "cycles/s"),
             "batch32": ("grant cycle, 32 in flight", "cycles/s"),
             "entry": ("  of which grant and end only (one reference)", "cycles/s"),
             "alloc": ("  of which allocate and free only", "cycles/s"),
             "blk-read": ("blkfront sequential read (O_DIRECT, 64 KiB)", "MB/s"),
             "blk-write": ("blkfront sequential write (O_DIRECT, 64 KiB)", "MB/s"),
             "net-rx": ("netfront TCP, dom0 to the domain", "MB/s"),
             "net-tx": ("netfront TCP, the domain to dom0", "MB/s"),
             "self": ("event channel storm: events taken, looped-back flood", "events/s"),
             "single": ("xenbus attach to Connected, 1 device", "devices/s"),
             "many": ("xenbus attach to Connected, 64 at once", "devices/s")}

FRONTS = ("rust_xen_demo_front", "xen_demo_front")
BACKS = ("rust_xen_demo_back", "xen_demo_back")
LANG = {"rust_xen_demo_front": "Rust", "rust_xen_demo_back": "Rust", "xen_demo_front": "C",
        "xen_demo_back": "C"}
C_PAIR = ("xen_demo_front", "xen_demo_back")

# What the replacement issues measure, once there is a Rust core to measure against the C one.
# Printed as rows without numbers, so that the table says what is still to come.
PENDING = []

# The C objects the Rust cores replace, with the issue that replaces each.
REPLACED = [
    ("drivers/xen/grant-table.o", 12),
    ("drivers/xen/xenbus/xenbus_probe.o", 13),
    ("drivers/xen/xenbus/xenbus_device.o", 13),
    ("drivers/xen/xenbus/xenbus_probe_frontend.o", 13),
    ("drivers/xen/xenbus/xenbus_probe_backend.o", 13),
    ("drivers/xen/events/events_2l.o", 14),
    ("drivers/xen/events/events_lateeoi.o", 15),
    ("drivers/xen/events/events_map.o", 15),
    ("drivers/xen/events/events_irqchip.o", 15),
    ("drivers/xen/events/events_api.o", 15),
    ("drivers/xen/events/events_affinity.o", 15),
    ("drivers/xen/events/events_irqinfo.o", 15),
    ("drivers/xen/events/events_bind.o", 15),
    ("drivers/xen/events/events_virq_ipi.o", 15),
    ("drivers/xen/events/events_pirq.o", 15),
    ("drivers/xen/events/events_resume.o", 15),
]


def median(v):
    s = sorted(v)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def parse(lines, domain="domU"):
    """The demo rows of one run, measured in the frontend domain domain: for each (front, back,
    batch), the rounds' round trips per second and requests per event channel event
    (notifications sent plus interrupts taken)."""
    rounds = {}
    for line in lines:
        m = BENCH_LINE.match(line)
        if not m or m.group(1) != domain or int(m.group(6)) <= 0:
            continue
        key = (m.group(2), m.group(3), int(m.group(4)))
        reqs = int(m.group(5))
        events = int(m.group(7)) + int(m.group(8)) if m.group(7) is not None else None
        rounds.setdefault(key, []).append((reqs * 1e9 / int(m.group(6)),
                                           reqs / events if events else None))
    rows = []
    for batch in sorted({k[2] for k in rounds}):
        base = rounds.get((*C_PAIR, batch))
        base_med = median([r for r, _ in base]) if base else None
        for f in FRONTS:
            for b in BACKS:
                v = rounds.get((f, b, batch))
                if not v:
                    continue
                rates = [r for r, _ in v]
                per_event = [e for _, e in v if e is not None]
                med = median(rates)
                rows.append({
                    "frontend": LANG[f], "backend": LANG[b], "batch": batch,
                    "median": med, "min": min(rates), "max": max(rates), "rounds": rates,
                    "requests_per_event": median(per_event) if per_event else None,
                    "ratio": med / base_med if base_med else None,
                })
    return rows


def parse_core(lines, domain="domU"):
    """The core rows of one run in domain: per row, the rounds' rates (cycles or MB per second)."""
    rounds = {}
    for line in lines:
        m = CORE_LINE.match(line)
        if not m or m.group(1) != domain or int(m.group(7)) <= 0:
            continue
        key = m.group(2) or m.group(3) or m.group(4) or m.group(5)
        # bytes per ns * 1e3 = MB/s; cycles, events or devices per second
        scale = 1e3 if m.group(3) else 1e9
        rounds.setdefault(key, []).append(int(m.group(6)) * scale / int(m.group(7)))
    order = list(CORE_ROWS)
    return [{"row": CORE_ROWS[k][0], "loop": k, "unit": CORE_ROWS[k][1], "median": median(v), "min": min(v),
             "max": max(v), "rounds": v} for k, v in sorted(rounds.items(), key=lambda kv: order.index(kv[0]))]


def core_side_by_side(first, second):
    """Core rows of the second frontend domain against the first, as side_by_side."""
    other = {r["loop"]: r for r in second}
    rows = []
    for r in first:
        o = other.get(r["loop"])
        if not o:
            continue
        pairs = [b / a for a, b in zip(r["rounds"], o["rounds"]) if a > 0]
        rows.append({"row": r["row"], "loop": r["loop"], "unit": r["unit"], "first": r["median"],
                     "second": o["median"],
                     "ratio": o["median"] / r["median"],
                     "round_ratio_min": min(pairs) if pairs else None,
                     "round_ratio_max": max(pairs) if pairs else None})
    return rows


def side_by_side(first, second):
    """Rows of the second frontend domain against the first, pairing by pairing: the ratio of
    the medians, and the range of the rounds' ratios (rounds taken in turn, round by round)."""
    other = {(r["frontend"], r["backend"], r["batch"]): r for r in second}
    rows = []
    for r in first:
        o = other.get((r["frontend"], r["backend"], r["batch"]))
        if not o:
            continue
        pairs = [b / a for a, b in zip(r["rounds"], o["rounds"]) if a > 0]
        rows.append({"frontend": r["frontend"], "backend": r["backend"], "batch": r["batch"],
                     "first": r["median"], "second": o["median"], "ratio": o["median"] / r["median"],
                     "round_ratio_min": min(pairs) if pairs else None,
                     "round_ratio_max": max(pairs) if pairs else None})
    return rows


# The objects of each Rust core that is built: the Rust crate and its C glue.
RUST_OBJECTS = {
    "drivers/xen/grant-table.o": ("drivers/xen/rust/grant_table.o", "drivers/xen/rust/grant-table-glue.o"),
    "drivers/xen/events/events_2l.o": ("drivers/xen/rust/events.o", "drivers/xen/rust/events-abi-glue.o"),
    "drivers/xen/xenbus/xenbus_probe_frontend.o": ("drivers/xen/rust/xenbus_frontend.o",
                                                   "drivers/xen/rust/xenbus-frontend-glue.o"),
    "drivers/xen/xenbus/xenbus_probe_backend.o": ("drivers/xen/rust/xenbus_backend.o",
                                                  "drivers/xen/rust/xenbus-backend-glue.o"),
    "drivers/xen/xenbus/xenbus_device.o": ("drivers/xen/rust/xenbus_device.o",
                                           "drivers/xen/rust/xenbus-device-glue.o"),
    "drivers/xen/xenbus/xenbus_probe.o": ("drivers/xen/rust/xenbus_probe.o",
                                          "drivers/xen/rust/xenbus-probe-glue.o"),
    "drivers/xen/events/events_lateeoi.o": ("drivers/xen/rust/events/events_lateeoi.o",
                                            "drivers/xen/rust/events/lateeoi-glue.o"),
    "drivers/xen/events/events_map.o": ("drivers/xen/rust/events/events_map.o",),
    "drivers/xen/events/events_irqchip.o": ("drivers/xen/rust/events/events_irqchip.o",),
    "drivers/xen/events/events_api.o": ("drivers/xen/rust/events/events_api.o",
                                        "drivers/xen/rust/events/api-glue.o"),
    "drivers/xen/events/events_affinity.o": ("drivers/xen/rust/events/events_affinity.o",),
    "drivers/xen/events/events_irqinfo.o": ("drivers/xen/rust/events/events_irqinfo.o",),
    "drivers/xen/events/events_bind.o": ("drivers/xen/rust/events/events_bind.o",
                                         "drivers/xen/rust/events/bind-glue.o"),
    "drivers/xen/events/events_virq_ipi.o": ("drivers/xen/rust/events/events_virq_ipi.o",
                                             "drivers/xen/rust/events/virq-ipi-glue.o"),
    "drivers/xen/events/events_pirq.o": ("drivers/xen/rust/events/events_pirq.o",
                                         "drivers/xen/rust/events/pirq-glue.o"),
    "drivers/xen/events/events_resume.o": ("drivers/xen/rust/events/events_resume.o",),
}

# The C objects a Rust core replaces, where that is more than the one it is listed under: the
# grant table's page and map helpers, which the C-core build has in grant-table-pages.o (patch
# 0048 moves them out of grant-table.c) and the Rust core has in its crate.
C_OBJECTS = {
    "drivers/xen/grant-table.o": ("drivers/xen/grant-table.o", "drivers/xen/grant-table-pages.o"),
    "drivers/xen/events/events_2l.o": ("drivers/xen/events/events_2l.o", "drivers/xen/events/events_fifo.o"),
}


def sections(paths, size_tool="llvm-size-19"):
    """.text, .data and .rodata bytes of the objects, summing the sections whose names start with
    those (.text.unlikely, .data..read_mostly and so on); None if one is missing."""
    sums = {"text": 0, "data": 0, "rodata": 0}
    for full in paths:
        if not os.path.exists(full):
            return None
        try:
            text = subprocess.run([size_tool, "-A", full], capture_output=True, text=True, check=True).stdout
        except (OSError, subprocess.CalledProcessError):
            return None
        for ln in text.splitlines():
            parts = ln.split()
            if len(parts) < 2 or not parts[1].isdigit():
                continue
            for k in sums:
                if parts[0] == f".{k}" or parts[0].startswith(f".{k}."):
                    sums[k] += int(parts[1])
    return sums


def object_sizes(obj, c_obj=None, size_tool="llvm-size-19"):
    """Per replaced C object: its sections in the C-core build (c_obj, or obj where the C object is
    built), and those of the Rust core that replaces it in obj, where it is built."""
    out = []
    for path, issue in REPLACED:
        rust = RUST_OBJECTS.get(path)
        rust_sums = sections([os.path.join(obj, p) for p in rust], size_tool) if rust else None
        # With its Rust core built, obj has no (or a stale) C object: take it from the C-core build.
        c_dir = c_obj if (rust_sums and c_obj) else obj
        c_paths = C_OBJECTS.get(path, (path,))
        c_sums = None if (rust_sums and not c_obj) else sections([os.path.join(c_dir, p) for p in c_paths],
                                                                 size_tool)
        out.append({"object": " + ".join(c_paths), "issue": issue, "c": c_sums, "rust": rust_sums,
                    "rust_objects": list(rust) if rust_sums else None})
    return out


def format_run(run):
    """The table of one run."""
    rows = run["rows"]
    n = max((len(r["rounds"]) for r in rows), default=0)
    out = [run["title"], f"median (and range) of {n} rounds; the ratio is the medians'; req/event: requests "
           "per notification sent or interrupt taken by the frontend",
           f"{'frontend':<9} {'backend':<8} {'batch':>5} {'round trips/s':>14} {'range':>19} {'vs C+C':>7}"
           f" {'req/event':>9}"]
    if not rows:
        out.append("  (no results)")
    for r in rows:
        ratio = f"{r['ratio']:7.2f}" if r["ratio"] else "      -"
        per = f"{r['requests_per_event']:9.1f}" if r["requests_per_event"] else "        -"
        rng = f"{r['min']:,.0f}-{r['max']:,.0f}"
        out.append(f"{r['frontend']:<9} {r['backend']:<8} {r['batch']:>5} {r['median']:>14,.0f} {rng:>19}"
                   f" {ratio} {per}")
    return out


def rate_format(value):
    """The format of a core row's rates: whole numbers from 1,000 up (cycles/s), else one decimal
    (MB/s)."""
    return ",.0f" if value >= 1000 else ",.1f"


def round_range(r):
    """The range of a side-by-side row's per-round ratios, or "-"."""
    return (f"{r['round_ratio_min']:.2f}-{r['round_ratio_max']:.2f}"
            if r["round_ratio_min"] is not None else "-")


def format_core(rows, title):
    out = [title, f"  {'':<52} {'median':>12} {'':<8} {'range':>21}"]
    for r in rows:
        f = rate_format(r["median"])
        rng = f"{r['min']:{f}}-{r['max']:{f}}"
        out.append(f"  {r['row']:<52} {r['median']:>12{f}} {r['unit']:<8} {rng:>21}")
    return out


def format_side_by_side(run):
    if run.get("cores"):
        what = (f"Side by side ({run['clock']} clock): the domU boots {run['cores'][0]}, domU2 boots "
                f"{run['cores'][1]}; they measure in turn against the same dom0.")
        fair = ("The ratio domU2/domU is the C core's rate over the Rust core's: below 1.00 the Rust "
                "core is faster. The demo pairings use few grants, so they show the instrument's fairness.")
    else:
        what = (f"Side by side ({run['clock']} clock): the same pairings measured in a second frontend "
                "domain, in turn with the first, against the same dom0.")
        fair = "Both run the same kernel, so the ratio shows how fair the instrument is: 1.00 is fair."
    out = [what, fair,
           f"{'frontend':<9} {'backend':<8} {'batch':>5} {'domU':>10} {'domU2':>10} {'domU2/domU':>10}"
           f" {'per round':>13}"]
    for r in run["rows"]:
        out.append(f"{r['frontend']:<9} {r['backend']:<8} {r['batch']:>5} {r['first']:>10,.0f} "
                   f"{r['second']:>10,.0f} {r['ratio']:>10.3f} {round_range(r):>13}")
    if run.get("core"):
        out.append(f"{'core rows (cycles/s, MB/s)':<52} {'domU':>10} {'domU2':>10} {'domU2/domU':>10} {'per round':>13}")
    for r in run.get("core", []):
        f = rate_format(r["first"])
        out.append(f"{r['row']:<52} {r['first']:>10{f}} {r['second']:>10{f}} {r['ratio']:>10.3f} {round_range(r):>13}"
                   + (f"   Rust/C {1 / r['ratio']:.3f}" if run.get("cores") and r["ratio"] else ""))
    return out


def format_report(report):
    out = []
    for run in report["runs"]:
        out += format_run(run) + [""]
        if run.get("core"):
            out += format_core(run["core"], f"Through the Xen core in the domU ({run['clock']} clock): grant "
                               f"cycles, stock PV drivers; median and range of {len(run['core'][0]['rounds'])} "
                               "rounds:") + [""]
    for run in report["side_by_side"]:
        out += format_side_by_side(run) + [""]
    if report["pending"]:
        out.append("To be measured by the replacement issues, Rust core against C core in one run:")
    for p in report["pending"]:
        out.append(f"  {p['row']:<52} {p['unit']:<6} not measured yet (issue {p['issue']})")
    width = max([44] + [len(s["object"]) for s in report["sizes"]])
    out += ["", f"Sizes in bytes of the C objects the Rust cores replace, and of the Rust cores "
            f"(crate and C glue) ({report['config']}):",
            f"  {'object':<{width}} {'.text':>8} {'.data':>7} {'.rodata':>8}   {'Rust .text':>10} {'.data':>7} "
            f"{'.rodata':>8}"]

    def cols(c):
        return f"{c['text']:>8} {c['data']:>7} {c['rodata']:>8}" if c else f"{'-':>8} {'-':>7} {'-':>8}"

    for s in report["sizes"]:
        rust = (f"   {s['rust']['text']:>10} {s['rust']['data']:>7} {s['rust']['rodata']:>8}" if s["rust"]
                else f"   not built yet (issue {s['issue']})")
        out.append(f"  {s['object']:<{width}} {cols(s['c'])}{rust}")
    return "\n".join(out) + "\n"


def svg_chart(report):
    """A bar per demo row of each run: its ratio to C+C, with a line at 1.00."""
    bars = []
    for run in report["runs"]:
        for r in run["rows"]:
            if r["ratio"] is not None:
                bars.append((f"{run['clock']}: {r['frontend']} front, {r['backend']} back, batch {r['batch']}",
                             r["ratio"], r["min"] / r["median"], r["max"] / r["median"]))
    for run in report["side_by_side"]:
        if not run.get("cores"):
            continue
        for r in run.get("core", []):
            if r["ratio"] and r["round_ratio_min"] and r["round_ratio_max"]:
                # Rust core over C core: the inverse of domU2/domU, and of its range.
                bars.append((f"{run['clock']}: Rust core / C core, {r['row'].split(' (')[0]}"
                             + ("" if r["loop"] == "one" else ""), 1 / r["ratio"],
                             r["ratio"] / r["round_ratio_max"], r["ratio"] / r["round_ratio_min"]))
    width, left, bar_h, gap, top = 700, 300, 16, 6, 30
    height = top + len(bars) * (bar_h + gap) + 30
    hi = max([1.25] + [b[1] * b[3] for b in bars])
    scale = (width - left - 50) / hi

    def x(v):
        return left + v * scale

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="11">',
           '<text x="10" y="16" font-size="12">Ratios: demo round trips to the C pair at the same batch; '
           'grant cycles and PV drivers, Rust core to C core (bar: median; whisker: rounds)</text>']
    for i, (label, ratio, lo, hi_) in enumerate(bars):
        y = top + i * (bar_h + gap)
        colour = "#4878a8" if label.startswith("icount") else "#a0a0a0"
        out.append(f'<text x="{left - 6}" y="{y + bar_h - 4}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{ratio * scale:.1f}" height="{bar_h}" fill="{colour}"/>')
        out.append(f'<line x1="{x(ratio * lo):.1f}" x2="{x(ratio * hi_):.1f}" y1="{y + bar_h / 2}" '
                   f'y2="{y + bar_h / 2}" stroke="black"/>')
        out.append(f'<text x="{x(ratio * hi_) + 4:.1f}" y="{y + bar_h - 4}">{ratio:.2f}</text>')
    y_end = top + len(bars) * (bar_h + gap)
    out.append(f'<line x1="{x(1):.1f}" x2="{x(1):.1f}" y1="{top - 4}" y2="{y_end}" stroke="#c03030" '
               'stroke-dasharray="4,3"/>')
    out.append(f'<text x="{x(1):.1f}" y="{y_end + 14}" text-anchor="middle">1.00</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def write(report, logs):
    """bench.txt, bench.json and bench.svg in logs; returns the text."""
    text = format_report(report)
    with open(os.path.join(logs, "bench.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(logs, "bench.json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    with open(os.path.join(logs, "bench.svg"), "w") as f:
        f.write(svg_chart(report))
    return text


def new_report(obj, config, c_obj=None):
    return {"runs": [], "side_by_side": [], "config": config,
            "pending": [{"row": r, "unit": u, "issue": i} for r, u, i in PENDING],
            "sizes": object_sizes(obj, c_obj)}

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Run kernel tests under a real Xen hypervisor: PV dom0 and PV domU, booted in QEMU.

  xen-test.py run --obj DIR --xen FILE --xen-root DIR [--logs DIR]
      Build the dom0 and domU initramfs, boot Xen with the kernel of DIR (a kbuild O= directory) as
      dom0, create a domU from the same kernel with xl, and collect KUnit (from both boot logs) and
      the init scripts' TAP tests (from both domains).
  xen-test.py replay LOG
      Evaluate a console log saved by an earlier run, as if it had just been produced.
  xen-test.py self-test
      Check that the harness catches failures: a KTAP `not ok`, a truncated stream, a domU that never
      reports, and a hang (reported with its stage).

Each run prints a per-domain summary and, as its last line, `N passed, N failed`; it exits non-zero on
any failure. Nothing passes by default: each domain must positively report every result.
"""
import argparse
import contextlib
import io
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import xen_bench  # noqa: E402 - beside this file

HERE = os.path.dirname(os.path.abspath(__file__))
TOOLS = os.path.dirname(os.path.dirname(HERE))
KSFT_DIR = f"{TOOLS}/testing/selftests/drivers/xen"
# The kselftests run in both domains (the first two), and the helpers they source.
KSELFTESTS = ("xen_demo", "xen_pv")
KSFT_FILES = ("xen_demo.sh", "xen_pv.sh", "xen_lib.sh")
# The kselftests' C programs: built static for the initramfs, as the kselftest Makefile builds them.
KSFT_PROGS = ("xen_evtchn_storm",)
# Xen's own tools the xen_pv kselftest runs as peers: in both domains, and in dom0 only.
PEER_TOOLS = ("test-xenstore", "vchan-socket-proxy")
DOM0_PEER_TOOLS = ("depriv-fd-checker", "test-resource")
ATTACH_TOOL = f"{TOOLS}/xen/xen-demo-attach"

# Stages of a run, each entered when its marker appears on the console, each with its own time limit
# (seconds, under TCG on 2 cores). A run stuck in a stage past its limit, or silent for IDLE_LIMIT
# seconds in it, is stopped and reported with the stage's name. Machines of the same kind have been
# seen to differ 6x in speed (a whole run took 435 s on one and 2785 s on another), so the long
# stages' limits are generous and a hang is caught by the silence instead.
STAGES = [
    ("Xen boot", None, 180),
    ("dom0 kernel boot", re.compile(r"^Linux version "), 900),
    ("dom0 init", re.compile(r"^XR-STAGE dom0-init$"), 60),
    ("xenstored", re.compile(r"^XR-STAGE xenstored$"), 90),
    # Backends loaded, ramdisks filled (xen_pv.sh --setup).
    ("PV setup", re.compile(r"^XR-STAGE pv-setup$"), 120),
    ("xl create", re.compile(r"^XR-STAGE xl-create$"), 120),
    ("domU boot", re.compile(r"^XR-STAGE domU-boot$"), 900),
    ("domU tests", re.compile(r"^\[domU\] XR-STAGE domU-init$"), 600),
    # The kselftests, each run in both domains at once: the stock PV drivers, Xen's tools,
    # save/restore and the SMP race (xen_pv.sh), then the demo pair (xen_demo.sh).
    ("PV kselftest", re.compile(r"^\[domU\] XR-KSFT-BEGIN xen_pv$"), 2400),
    ("demo kselftest", re.compile(r"^\[domU\] XR-KSFT-BEGIN xen_demo$"), 3600),
    ("dom0 tests", re.compile(r"^XR-STAGE dom0-tests$"), 180),
    ("shutdown", re.compile(r"^XR-DONE dom0$"), 60),
]
# The longest silence on the console in any stage (seconds, scaled like the limits; at most the
# stage's own limit). Every step of the kselftests prints, and the kernels log each connection.
IDLE_LIMIT = 600
PANIC = re.compile(r"Kernel panic - not syncing|\(XEN\) Panic on CPU|^\[domU2?\] .*Kernel panic")
# Once dom0 has powered off, Xen halts or reboots; either ends the run.
HALTED = re.compile(r"\(XEN\) (Hardware Dom0 (halted|shutdown)|Domain 0 (halted|shutdown))")
DOMAINS = ("dom0", "domU")
# The bench's second frontend domain (side by side with the domU, the same kernel until the Rust
# cores exist); its console is relayed with this prefix, as the domU's is with "[domU] ".
DOMU2 = "domU2"


def frontend_domains(args):
    """The frontend domains of a run: the domU, and for the bench with --domus 2 the second one."""
    return ("domU", DOMU2) if args.mode == "bench" and getattr(args, "domus", 1) == 2 else ("domU",)
# The longest a soak cycle (one detach/attach or module reload, under TCG) may take on average.
SOAK_CYCLE_S = 30
# The KUnit suites of this project (the others are upstream's).
PROJECT_SUITE = re.compile(r"^rust_xen_")


# ---------------------------------------------------------------------------------------------------
# KTAP / TAP parsing

TAP_LINE = re.compile(r"^(?P<indent>\s*)(?:(?P<ok>not ok|ok) (?P<num>\d+)(?: -)? ?(?P<rest>.*)"
                      r"|(?P<plan>1\.\.(?P<count>\d+))|(?P<ktap>K?TAP version \d+)"
                      r"|# Subtest: (?P<subtest>.*))$")


class Result:
    def __init__(self, domain, group, name, status, note=""):
        self.domain, self.group, self.name, self.status, self.note = domain, group, name, status, note

    def __str__(self):
        s = f"{self.status.upper():4} {self.domain}: {self.group}: {self.name}"
        return s + (f" ({self.note})" if self.note else "")


def _status(ok, rest):
    if ok == "ok":
        return "skip" if re.search(r"#\s*SKIP", rest, re.I) else "pass"
    return "fail"


def _strip_directive(rest):
    return re.sub(r"\s*#.*$", "", rest).strip()


def parse_kunit(lines, domain):
    """Parse KUnit's boot-time KTAP output among other console lines.

    Returns (results, problems). Each test case (a result at depth 1) is one result; a suite whose
    plan is not met, or a top-level plan that is not met, is a problem (the stream was truncated).
    """
    results, problems = [], []
    start = None
    for i, line in enumerate(lines):
        if line.rstrip() == "KTAP version 1":
            start = i
            break
    if start is None:
        return results, [f"{domain}: no KUnit output (no top-level 'KTAP version 1')"]
    top_plan, top_seen = None, 0
    suite, suite_plan, suite_seen, cases = None, None, 0, []
    for line in lines[start + 1:]:
        m = TAP_LINE.match(line.rstrip())
        if not m:
            continue
        depth = len(m.group("indent").expandtabs(4)) // 4
        if m.group("plan") and depth == 0 and top_plan is None:
            top_plan = int(m.group("count"))
        elif m.group("subtest") and depth == 1:
            suite, suite_plan, suite_seen, cases = m.group("subtest").strip(), None, 0, []
        elif m.group("plan") and depth == 1:
            suite_plan = int(m.group("count"))
        elif m.group("ok") and depth == 1:
            suite_seen += 1
            st = _status(m.group("ok"), m.group("rest"))
            cases.append(Result(domain, f"KUnit {suite}", _strip_directive(m.group("rest")), st))
        elif m.group("ok") and depth == 0:
            top_seen += 1
            name = _strip_directive(m.group("rest"))
            if suite_plan is None:
                problems.append(f"{domain}: KUnit suite {name}: no plan")
            elif suite_seen != suite_plan:
                problems.append(f"{domain}: KUnit suite {name}: planned {suite_plan} cases, got {suite_seen}")
            if _status(m.group("ok"), m.group("rest")) == "fail" and all(c.status != "fail" for c in cases):
                problems.append(f"{domain}: KUnit suite {name} failed outside its cases")
            results += cases
            suite, suite_plan, suite_seen, cases = None, None, 0, []
            if top_plan is not None and top_seen == top_plan:
                break
    if top_plan is None:
        problems.append(f"{domain}: KUnit output has no top-level plan (truncated)")
    elif top_seen != top_plan:
        problems.append(f"{domain}: KUnit planned {top_plan} suites, {top_seen} reported (truncated"
                        + (f" in suite {suite}" if suite else "") + ")")
    return results, problems


def parse_flat_tap(lines, domain, group):
    """Results, plan and `Bail out!` reasons of a flat TAP stream; `# ` lines after a failed result
    become its note."""
    results, plan, bailouts = [], None, []
    for line in lines:
        m = TAP_LINE.match(line.rstrip())
        if not m:
            # The result that is due, behind whole 16-byte pieces of a kernel message that reached
            # the console first (see split_console).
            n = re.search(rf"(?:not ok|ok) {len(results) + 1}(?: |$)", line)
            if n and n.start() % 16 == 0:
                m = TAP_LINE.match(line[n.start():].rstrip())
        if line.startswith("Bail out!"):
            bailouts.append(line[len("Bail out!"):].strip())
        elif m and m.group("ok") and not m.group("indent"):
            results.append(Result(domain, group, _strip_directive(m.group("rest")),
                                  _status(m.group("ok"), m.group("rest"))))
        elif m and m.group("plan") and not m.group("indent"):
            plan = (int(m.group("count")), line)
        elif line.startswith("# ") and results and results[-1].status == "fail":
            last = results[-1]
            last.note = (last.note + "; " if last.note else "") + line[2:].strip()
    return results, plan, bailouts


def parse_tap_block(lines, domain):
    """Parse the init script's TAP between XR-TAP-BEGIN and XR-TAP-END markers."""
    begin = end = None
    for i, line in enumerate(lines):
        if line.strip() == f"XR-TAP-BEGIN {domain}":
            begin = i
        elif begin is not None and line.startswith(f"XR-TAP-END {domain}"):
            end = i
            break
    if begin is None:
        return [], [f"{domain}: the tests never started (no XR-TAP-BEGIN {domain})"]
    results, plan, _ = parse_flat_tap(lines[begin + 1:end if end is not None else len(lines)], domain, "tests")
    problems = []
    if end is None:
        problems.append(f"{domain}: the tests did not finish (no XR-TAP-END {domain}; truncated after "
                        f"{len(results)} results)")
    elif plan is None:
        problems.append(f"{domain}: the tests printed no plan")
    elif plan[0] != len(results):
        problems.append(f"{domain}: the tests planned {plan[0]}, reported {len(results)}")
    return results, problems


def ksft_blocks(lines, domain):
    """Results and problems of the kselftests an init script ran between XR-KSFT markers."""
    results, problems, seen = [], [], []
    blocks = []
    for name, block, end in marker_blocks(lines, "KSFT"):
        m = re.search(r"rc=(\d+)", end or "")
        blocks.append((name, block, "truncated" if end is None else int(m.group(1)) if m else None))
    for name, block, rc in blocks:
        seen.append(name)
        group = f"kselftest {name}"
        mine, plan, bailouts = parse_flat_tap(block, domain, group)
        problems += [f"{domain}: {group} bailed out: {b}" for b in bailouts]
        # Every step of our kselftests is meant to run here; a skipped one is lost coverage.
        problems += [f"{domain}: {group}: {r.name} was skipped" for r in mine if r.status == "skip"]
        skip_all = plan[1].split("SKIP", 1)[1].strip() if plan and plan[0] == 0 and "SKIP" in plan[1] else None
        results += mine
        if rc == "truncated":
            problems.append(f"{domain}: {group} did not finish (truncated after {len(mine)} results)")
        elif skip_all is not None:
            problems.append(f"{domain}: {group} skipped everything: {skip_all}")
        elif plan is None:
            problems.append(f"{domain}: {group} printed no plan")
        elif plan[0] != len(mine):
            problems.append(f"{domain}: {group} planned {plan[0]}, reported {len(mine)}")
        elif rc is None:
            problems.append(f"{domain}: {group} ended without an exit status (no rc= on its end marker)")
        elif rc != 0 and not any(r.status == "fail" for r in mine):
            problems.append(f"{domain}: {group} exited {rc} with no failed test")
    return results, problems, seen


def marker_blocks(lines, kind):
    """The (name, lines, end line or None if cut short) of each XR-<kind>-BEGIN/END block."""
    out, cur, name = [], None, None
    for line in lines:
        if line.startswith(f"XR-{kind}-BEGIN "):
            name, cur = line.split(" ", 1)[1].strip(), []
        elif line.startswith(f"XR-{kind}-END ") and cur is not None:
            out.append((name, cur, line))
            cur = None
        elif cur is not None:
            cur.append(line)
    if cur is not None:
        out.append((name, cur, None))
    return out


def split_console(lines):
    """Split the serial console into the dom0 and domU streams (Xen's own lines are dropped).

    dom0's kernel writes its messages to the console in 16-byte pieces (hvc's N_OUTBUF), and
    the relay of the domU's console (dom0-init.sh) can land between two of them: seen as
    "xen_demo_back: x[domU] ok 163 ... connectionen-demo demo-6-0: ...". The domU's part starts
    at the "[domU] " and keeps dom0's rest at its end, where it spoils only the test's name."""
    streams = {"dom0": [], "domU": [], DOMU2: []}
    for line in lines:
        m = RELAYED.search(line)
        if m and m.start() > 0 and not line.startswith("(XEN)"):
            streams["dom0"].append(line[:m.start()])
            line = line[m.start():]
        m = RELAYED.match(line)
        if m:
            streams[m.group(1)].append(line[m.end():])
        elif not line.startswith("(XEN)"):
            streams["dom0"].append(line)
    return streams


RELAYED = re.compile(r"\[(domU|domU2)\] ")


# What the kernel's checkers print (lockdep, KASAN, DEBUG_ATOMIC_SLEEP, WARN_ON, BUG_ON, oopses, RCU
# and hung-task detectors). Any of these in either domain's console fails the run.
SPLAT = re.compile(r"^(?:\[ *\d+\.\d+\] )?(?:\[ *[TC]\d+\] )?(?P<what>"
                   r"BUG: .*|BUG \S+ \([^)]*\): .*|WARNING: .*|Oops: .*|kernel BUG at .*|general protection fault.*|"
                   r"UBSAN: .*|INFO: task .* blocked for more than .*|"
                   r"rcu: INFO: .* detected stalls.*|watchdog: BUG: soft lockup.*|"
                   r"Unable to handle kernel .*|.*sleeping function called from invalid context.*)$")
# The same headers when user-space output on the serial line got in front of them.
SPLAT_ANYWHERE = re.compile(r"(?P<what>(?:WARNING: CPU: \d+ PID: \d+|BUG: KASAN: |BUG: sleeping function|"
                            r"Oops: \d{4}|WARNING: possible (?:circular|recursive) locking|"
                            r"WARNING: inconsistent lock state).*)$")
# lkdtm's provoked reports sit between these markers (the detector's own proof, run in the domU);
# there they are expected and counted, anywhere else they fail the run.
SPLAT_EXPECT = re.compile(r"^(?:\[ *\d+\.\d+\] )?XR-SPLAT-(BEGIN|END) (.+)$")
# Inside a block: lkdtm's verdict on its own attempt, and the figures provoke() logs.
LKDTM_SAID = re.compile(r"(?:lkdtm: FAIL: |XR-SPLAT-NOTE ).*$")


def splats(lines, domain):
    """(problems, expected, said): a problem for each checker report outside an XR-SPLAT block,
    naming the line; per XR-SPLAT block name, the reports seen inside it; and per block, what lkdtm
    and provoke() said there."""
    problems, expected, said, block = [], {}, {}, None
    for i, line in enumerate(lines, 1):
        m = SPLAT_EXPECT.match(line)
        if m:
            block = m.group(2) if m.group(1) == "BEGIN" else None
            if block:
                expected.setdefault(block, [])
            continue
        m = SPLAT.match(line) or SPLAT_ANYWHERE.search(line)
        if not m:
            # What lkdtm and the checker said about a provocation that did not work (lkdtm's
            # "FAIL: ..." lines, the KFENCE pool figures provoke() logs) goes into the failure.
            n = LKDTM_SAID.search(line) if block else None
            if n:
                said.setdefault(block, []).append(n.group(0))
            continue
        if block:
            expected[block].append(m.group("what"))
        else:
            problems.append(f"{domain}: kernel report at line {i} of its console: {m.group('what')}")
    return problems, expected, said


# The Xen core pieces that can be built from C or from Rust (drivers/xen/rust/): the Kconfig symbol
# that selects Rust, and the boot line that says which one a domain runs.
CORES = (
    ("grant table", "CONFIG_XEN_GRANT_TABLE_RUST",
     re.compile(r"(?:^|\] |xen:grant_table: )Grant table initialized(?P<rust> \(Rust\))?$")),
    ("event channel ABI", "CONFIG_XEN_EVTCHN_ABI_RUST",
     re.compile(r"(?:^|\] |xen:events: )Using (?:2-level|FIFO-based) ABI(?P<rust> \(Rust\))?$")),
    # The C buses print nothing at boot: no line is the C one.
    ("xenbus frontend bus", "CONFIG_XEN_XENBUS_RUST",
     re.compile(r"(?:^|\] |xenbus_probe_frontend: )frontend bus xen(?P<rust> \(Rust\))$")),
    # Printed by the Rust map's initialisation (events_map.rs); the C core prints nothing.
    ("event channel", "CONFIG_XEN_EVENTS_RUST",
     re.compile(r"(?:^|\] |xen:events: )event channel core(?P<rust> \(Rust\))$")),
)
# The cores whose C version prints no boot line of its own.
SILENT_C_CORES = ("xenbus frontend bus", "event channel")


def built_cores(obj):
    """{core name: "Rust" or "C"}, as the kernel in obj was configured; {} without a .config."""
    try:
        with open(f"{obj}/.config") as f:
            cfg = f.read().splitlines()
    except OSError:
        return {}
    return {name: ("Rust" if f"{sym}=y" in cfg else "C") for name, sym, _ in CORES}


def core_label(cores):
    """"the Rust grant table core", "the C grant table core" (or "the test kernel" without a .config)."""
    if not cores:
        return "the test kernel"
    return ", ".join(f"the {lang} {name} core" for name, lang in cores.items())


def core_results(stream, domain, cores):
    """A result per core: the domain's boot log says it runs the core the kernel was built with."""
    out = []
    for name, _sym, pattern in CORES:
        want = cores.get(name)
        if not want:
            continue
        got = None
        for line in stream:
            m = pattern.search(line)
            if m:
                got = "Rust" if m.group("rust") else "C"
                break
        if got is None and name in SILENT_C_CORES:
            got = "C"
        out.append(Result(domain, "cores", f"the {name} core is the {want} one", "pass" if got == want else "fail",
                          "" if got == want else f"the boot log says {got or 'nothing'}"))
    return out


def evaluate(lines, expect_suites=(), expect_ksft=(), mode="test", domains=DOMAINS, cores=None):
    """All results and problems found in a console log. Outside test mode (demo, bench) the domains
    run no KUnit and no init-script tests, only the demo kselftest in that mode. cores: per domain,
    what built_cores() says of the kernel it boots; the domain must run those."""
    results, problems = [], []
    streams = split_console(lines)
    for d in domains:
        s = streams[d]
        results += core_results(s, d, (cores or {}).get(d, {}))
        p, expected, said = splats(s, d)
        problems += p
        for block, seen in expected.items():
            # XR-SPLAT-BEGIN NAME: the checker NAME names must have fired, and only once.
            want = block.split(":", 1)[1] if ":" in block else block
            hit = [w for w in seen if want in w]
            why = "; ".join(said.get(block, []))
            results.append(Result(d, "checkers", f"{block}: the provoked report is seen and caught",
                                  "pass" if hit else "fail",
                                  "" if hit else f"no report containing {want!r} (saw {seen or 'none'})"
                                  + (f"; {why}" if why else "")))
        for line in s:
            if line.startswith("XR-FATAL"):
                problems.append(f"{d}: {line[len('XR-FATAL '):]}")
        if mode != "test":
            r, p, ran = ksft_blocks(s, d)
            results += r
            problems += p + [f"{d}: kselftest {w} did not run" for w in expect_ksft if w not in ran]
            continue
        # KUnit runs before init: its output ends where the init script starts talking.
        boot = []
        for line in s:
            if line.startswith("XR-STAGE"):
                break
            boot.append(line)
        r, p = parse_kunit(boot, d)
        # KUnit suites of test modules the init scripts loaded.
        # A block cut short is parsed too: parse_kunit reports what is missing.
        for suite, block, _ in marker_blocks(s, "KUNIT"):
            mr, mp = parse_kunit(block, d)
            r += mr
            problems += [f"{x} (module suite {suite})" for x in mp]
        results += r
        problems += p
        suites = {x.group[len("KUnit "):] for x in r}
        for want in expect_suites:
            if want not in suites:
                problems.append(f"{d}: KUnit suite {want} did not run")
        # Our own cases run on Xen, where nothing should make them skip: a skip would hide a
        # test that no longer runs (upstream suites may skip, e.g. for a missing feature).
        problems += [f"{d}: {x.group}: {x.name} was skipped (a project case must run)"
                     for x in r if x.status == "skip" and PROJECT_SUITE.match(x.group[len("KUnit "):])]
        r, p = parse_tap_block(s, d)
        results += r
        problems += p
        r, p, ran = ksft_blocks(s, d)
        results += r
        problems += p
        for want in expect_ksft:
            if want not in ran:
                problems.append(f"{d}: kselftest {want} did not run")
    return results, problems


# ---------------------------------------------------------------------------------------------------
# Initramfs

def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, text=True, capture_output=True, **kw).stdout


def copy_libs(binaries, dest, libdirs):
    """Copy the shared libraries the binaries need (resolved with ldd) into dest."""
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(libdirs))
    seen = set()
    for b in binaries:
        out = subprocess.run(["ldd", b], env=env, capture_output=True, text=True).stdout
        for m in re.finditer(r"(?:=> )?(/\S+) \(0x", out):
            seen.add(m.group(1))
        if "not found" in out:
            raise RuntimeError(f"{b}: missing libraries:\n{out}")
    for lib in sorted(seen) + ["/lib/x86_64-linux-gnu/libgcc_s.so.1"]:
        # xl needs libgcc_s (pthread_cancel dlopens it) though ldd does not list it.
        target = dest + (lib if not lib.startswith(tuple(libdirs)) else
                         "/usr/lib/x86_64-linux-gnu/" + os.path.basename(lib))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(os.path.realpath(lib), target)


def make_cpio(root, out, level=1):
    sh(f"cd '{root}' && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -{level} > '{out}'")


def built_modules(obj):
    """The modules the build in obj made (modules.order), not every .ko lying in obj: a module of
    another configuration (the misuse tests of the Rust grant table core, left in a copy of the test
    kernel's build) must not reach a kernel it was not built for."""
    try:
        with open(f"{obj}/modules.order") as f:
            return sorted(f"{obj}/{m[:-2]}.ko" for m in f.read().split() if m.endswith(".o"))
    except OSError:
        return sorted(sh(f"find '{obj}' -name '*.ko'").split())


def domain_obj(args, name):
    """The kernel build a frontend domain boots: the bench's domU2 may boot another (--domu2-obj,
    the reference kernel with the C cores), every other domain boots the test kernel."""
    other = getattr(args, "domu2_obj", None)
    return other if name == DOMU2 and other else args.obj


def build_initramfs(args, work):
    obj, xroot = args.obj, args.xen_root
    busybox = shutil.which("busybox") or "/bin/busybox"
    modules = built_modules(obj)
    # The domU's whole life, from boot to its last kselftest.
    names = [st[0] for st in STAGES]
    domu_timeout = sum(st[2] for st in STAGES[names.index("domU boot"):names.index("dom0 tests")])
    ksft = " ".join(args.kselftest or KSELFTESTS)
    # A barrier may wait for the whole of a long step in the other domain (the hostile frontends
    # take minutes under TCG with the checkers on): longer than the kselftests' own default.
    # The repeated cycles of the kselftests: a few in `make check`, all of them with --full
    # (`make check-full`); both domains read the same numbers, since their barriers count them.
    demo_cycles, race_cycles = (20, 3) if getattr(args, "full", False) else (2, 1)
    # The hostile-xenstore step's devices per bus: its 1000 take about a minute a run; the run with
    # the ABIs swapped exists for the event channel ABIs, which that xenbus step does not depend
    # on, so it writes 100 (unless --full).
    xenbus_many = 100 if getattr(args, "swap_abis", False) and not getattr(args, "full", False) else 1000
    sync_timeout = 900
    if args.mode == "soak":
        # A barrier waits for a chunk of 100 cycles in the other domain.
        demo_cycles, sync_timeout = args.cycles, 100 * SOAK_CYCLE_S
    params = (f"XR_DOMU_TIMEOUT={domu_timeout}\nXR_MODE={args.mode}\nXR_KSFT='{ksft}'\n"
              f"XR_SYNC_TIMEOUT={sync_timeout}\nXR_DEMO_CYCLES={demo_cycles}\nXR_RACE_CYCLES={race_cycles}\n"
              f"XR_XENBUS_MANY={xenbus_many}\n"
              f"XR_BENCH_ROUNDS={getattr(args, 'rounds', None) or BENCH_ROUNDS}\n"
              f"XR_DOMUS='{' '.join(frontend_domains(args))}'\n"
              f"XR_DOM0_ABI='{abis(args)[0]}'\nXR_DOMU_ABI='{abis(args)[1]}'\n"
              # The xenbus buses the test kernel runs: the xen_pv kselftest expects the Rust ones'
              # refusals of hostile xenstore entries that the C ones accept.
              f"XR_XENBUS='{built_cores(obj).get('xenbus frontend bus', 'C')}'\n")
    kunit = kunit_cmdline(args)

    progs = work + "/progs"
    os.makedirs(progs, exist_ok=True)
    for p in KSFT_PROGS:
        r = subprocess.run(["clang-19", "-O2", "-Wall", "-Werror", "-static", "-pthread", "-o", f"{progs}/{p}",
                            f"{KSFT_DIR}/{p}.c"], capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(f"cannot build {p}.c:\n{r.stderr}")

    def common(root, modules=modules):
        for d in ("bin", "dev", "proc", "sys", "tmp", "run", "etc/xr", "usr/share/xr", "lib/modules/xr"):
            os.makedirs(f"{root}/{d}", exist_ok=True)
        shutil.copy2(busybox, f"{root}/bin/busybox")
        for f in ("lib.sh", "dom0-tests.sh", "domU-tests.sh"):
            shutil.copy2(f"{HERE}/{f}", f"{root}/usr/share/xr/{f}")
        for f in KSFT_FILES:
            shutil.copy2(f"{KSFT_DIR}/{f}", f"{root}/usr/share/xr/{f}")
        for p in KSFT_PROGS:
            shutil.copy2(f"{progs}/{p}", f"{root}/usr/share/xr/{p}")
        # The xenstore client: dom0 drives the toolstack with it, the domU's kselftest meets dom0's
        # at barriers kept in xenstore.
        os.makedirs(f"{root}/usr/bin", exist_ok=True)
        shutil.copy2(f"{xroot}/usr/bin/xenstore", f"{root}/usr/bin/xenstore")
        for c in ("read", "write", "ls", "list", "rm", "chmod", "exists", "watch"):
            os.symlink("xenstore", f"{root}/usr/bin/xenstore-{c}")
        os.makedirs(f"{root}/usr/lib/xen-4.17/bin", exist_ok=True)
        peers = [f"{xroot}/usr/lib/xen-4.17/bin/{t}" for t in PEER_TOOLS]
        for t in peers:
            shutil.copy2(t, f"{root}/usr/lib/xen-4.17/bin/")
        copy_libs([f"{xroot}/usr/bin/xenstore"] + peers, root, [f"{xroot}/usr/lib/x86_64-linux-gnu"])
        for m in modules:
            shutil.copy2(m, f"{root}/lib/modules/xr/")
        with open(f"{root}/etc/xr/params", "w") as f:
            f.write(params)

    # One initramfs per kernel the frontend domains boot, with that kernel's modules.
    domu_objs = sorted({domain_obj(args, n) for n in frontend_domains(args)}, key=lambda o: o != obj)
    for i, o in enumerate(domu_objs):
        u = f"{work}/domU-{i}"
        common(u, built_modules(o))
        shutil.copy2(f"{HERE}/domU-init.sh", f"{u}/init")
        os.chmod(f"{u}/init", 0o755)
        make_cpio(u, f"{work}/domU-{i}.cpio.gz", 6)

    r = f"{work}/dom0"
    common(r)
    for d in ("root", "etc/xen/scripts", "var/lib/xen", "var/log/xen/console", "usr/lib/xen-4.17/bin", "usr/bin"):
        os.makedirs(f"{r}/{d}", exist_ok=True)
    os.symlink("../run", f"{r}/var/run")
    tools = [f"{xroot}/usr/lib/xen-4.17/bin/{b}" for b in
             ("xl", "xenstored", "xenconsoled", "xen-init-dom0", "libxl-save-helper") + DOM0_PEER_TOOLS]
    for t in tools:
        shutil.copy2(t, f"{r}/usr/lib/xen-4.17/bin/")
    copy_libs(tools, r, [f"{xroot}/usr/lib/x86_64-linux-gnu"])
    shutil.copy2(ATTACH_TOOL, f"{r}/usr/bin/xen-demo-attach")
    shutil.copy2(f"{xroot}/etc/xen/xl.conf", f"{r}/etc/xen/")
    shutil.copy2(f"{xroot}/etc/xen/scripts/hotplugpath.sh", f"{r}/etc/xen/scripts/")
    # Block and vif hotplug scripts for busybox (Xen's own need bash); see scripts/.
    for f in ("xr-block", "xr-vif"):
        shutil.copy2(f"{HERE}/scripts/{f}", f"{r}/etc/xen/scripts/{f}")
        os.chmod(f"{r}/etc/xen/scripts/{f}", 0o755)
    for i, o in enumerate(domu_objs):
        shutil.copy2(f"{o}/vmlinux", f"{r}/root/vmlinux-{i}")
        shutil.copy2(f"{work}/domU-{i}.cpio.gz", f"{r}/root/domU-{i}.cpio.gz")
    for name in frontend_domains(args):
        i = domu_objs.index(domain_obj(args, name))
        with open(f"{r}/etc/xen/{name}.cfg", "w") as f:
            f.write(f'name = "{name}"\ntype = "pv"\nkernel = "/root/vmlinux-{i}"\nramdisk = "/root/domU-{i}.cpio.gz"\n'
                    f'extra = "console=hvc0 rdinit=/init {DOMU_CMDLINE}{abi_cmdline(abis(args)[1])} '
                    f'{debug_cmdline(args)}{kunit}"\n'
                    f'memory = {DOMU_MEM_MB}\nvcpus = {vcpus(args)}\n'
                    'on_poweroff = "destroy"\non_crash = "destroy"\n')
    shutil.copy2(f"{HERE}/dom0-init.sh", f"{r}/init")
    os.chmod(f"{r}/init", 0o755)
    make_cpio(r, f"{work}/dom0.cpio.gz", 1)
    return f"{work}/dom0.cpio.gz", len(modules)


# ---------------------------------------------------------------------------------------------------
# Running

class Outcome:
    def __init__(self):
        self.lines, self.stage, self.failure = [], 0, None


def run_console(cmd, log_path, scale=1.0, echo=None):
    """Run cmd, saving its output to log_path; track stages; stop it on a hang, a panic or the end."""
    out = Outcome()

    # The emulator runs in its own session: if this process is stopped (SIGTERM from a timeout, or
    # ^C), stop it too instead of leaving it running. The handler is in place before the emulator
    # starts: a SIGTERM that came between the two would kill this process with the default action
    # and leave the emulator behind (seen once, on a loaded machine, in the self-test).
    def stop(signum, _frame):
        raise SystemExit(128 + signum)

    def reader():
        for raw in proc.stdout:
            q.put(raw.decode("utf-8", "replace").replace("\r", "").rstrip("\n"))
        q.put(None)

    proc = None
    old_term = signal.signal(signal.SIGTERM, stop)
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        q = queue.Queue()
        threading.Thread(target=reader, daemon=True).start()
        entered = start = heard = time.monotonic()
        done_at = None
        # Beside the log, the same lines with the host's seconds since the start: where a run's
        # time goes (the guests' own clocks stop while a domain is saved).
        timed_path = re.sub(r"\.log$", "", log_path) + ".timed.log"
        with open(log_path, "w") as log, open(timed_path, "w") as timed:
            while True:
                limit = STAGES[out.stage][2] * scale
                idle = min(IDLE_LIMIT, STAGES[out.stage][2]) * scale
                try:
                    line = q.get(timeout=0.5)
                except queue.Empty:
                    line = ""
                if line is None:
                    break
                now = time.monotonic()
                if line:
                    heard = now
                    out.lines.append(line)
                    log.write(line + "\n")
                    log.flush()
                    timed.write(f"{now - start:7.1f} {line}\n")
                    if echo:
                        echo(line)
                    for i in range(len(STAGES) - 1, out.stage, -1):
                        if STAGES[i][1] and STAGES[i][1].search(line):
                            out.stage, entered = i, now
                            break
                    if PANIC.search(line) and not out.failure:
                        out.failure = f"panic in stage {STAGES[out.stage][0]}"
                        done_at = done_at or now + 5 * scale  # let the backtrace reach the log
                    if STAGES[out.stage][0] == "shutdown" and HALTED.search(line):
                        done_at = done_at or now + 1
                if done_at and now >= done_at:
                    break
                if not done_at and now - entered > limit:
                    out.failure = (f"timeout in stage {STAGES[out.stage][0]} "
                                   f"(in it for {int(now - entered)} s, limit {int(limit)} s)")
                    break
                if not done_at and now - heard > idle:
                    out.failure = (f"timeout in stage {STAGES[out.stage][0]} "
                                   f"(no console output for {int(now - heard)} s, limit {int(idle)} s)")
                    break
    finally:
        signal.signal(signal.SIGTERM, old_term)
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    if not out.failure and STAGES[out.stage][0] != "shutdown":
        out.failure = f"the emulator exited in stage {STAGES[out.stage][0]}"
    return out


def report(results, problems, failure=None, lines=(), out=sys.stdout, results_path=None, counts=None):
    """Print the summary; return the exit code. counts, if given, gets the numbers."""
    passed = sum(r.status == "pass" for r in results)
    failed = sum(r.status == "fail" for r in results) + len(problems) + (1 if failure else 0)
    skipped = sum(r.status == "skip" for r in results)
    if counts is not None:
        counts.update(passed=passed, failed=failed, skipped=skipped)
    for d in DOMAINS + tuple(sorted({r.domain for r in results} - set(DOMAINS))):
        k = [r for r in results if r.domain == d and r.group.startswith("KUnit")]
        t = [r for r in results if r.domain == d and r.group == "tests"]
        ks = [r for r in results if r.domain == d and r.group.startswith("kselftest")]
        suites = len({r.group for r in k})
        print(f"== {d}: KUnit {sum(r.status == 'pass' for r in k)} passed, "
              f"{sum(r.status == 'fail' for r in k)} failed, {sum(r.status == 'skip' for r in k)} skipped "
              f"({suites} suites); tests {sum(r.status == 'pass' for r in t)} passed, "
              f"{sum(r.status == 'fail' for r in t)} failed; kselftests "
              f"{sum(r.status == 'pass' for r in ks)} passed, {sum(r.status == 'fail' for r in ks)} failed",
              file=out)
    for r in results:
        if r.group == "tests" or r.status == "fail":
            print(f"   {r}", file=out)
    for p in problems:
        print(f"   FAIL {p}", file=out)
    if failure:
        print(f"   FAIL {failure}; last 40 console lines:", file=out)
        for line in list(lines)[-40:]:
            print(f"   | {line}", file=out)
    if results_path:
        with open(results_path, "w") as f:
            for r in results:
                f.write(f"{r}\n")
            for p in problems:
                f.write(f"FAIL {p}\n")
            if failure:
                f.write(f"FAIL {failure}\n")
    print(f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""), file=out)
    return 1 if failed else 0


# TCG's XSAVE with Xen's vCPU context switch corrupts user-space state when dom0 and a domU share the
# CPU: busybox in dom0 took general protection faults in malloc, 2-5 per 400 pipelines, while the domU
# ran; 0 in 800 without XSAVE (AVX off alone did not help). So the guest CPU has no XSAVE.
QEMU_CPU = os.environ.get("XR_QEMU_CPU", "max,-xsave")


def kunit_cmdline(args):
    """Kernel command line words selecting KUnit suites, the same for dom0 and the domU."""
    if args.mode != "test":
        return " kunit.enable=0"  # the demo and the benchmark run no tests but their own
    return f" kunit.filter_glob={args.kunit_filter}" if args.kunit_filter else ""


# The machine: 2 vCPUs (multi-threaded TCG) for Xen, for dom0 and for the domU, so that a handler
# on one vCPU can race teardown on the other. dom0 uses the FIFO event channel ABI (the default),
# the domU the 2-level one, so that every run covers both; likewise dom0 the v1 grant table layout
# (the default on this machine) and the domU the v2 one (grant_table.version=2). SLUB checks the kmalloc caches, which
# the Xen drivers and the Rust kernel crate allocate from (poison, red zones, sanity checks on
# free), and lkdtm's; not the caches of processes and files, where debugging every object made
# the shell-driven tests several times slower. lockdep and the atomic-sleep checks are in the
# config.
VCPUS = 2


def vcpus(args):
    """vCPUs of the emulated machine, and of dom0 and of the domU each: VCPUS, or 1 for a bench
    under --icount, where with 2 per domain, run in turn on one thread, the batch-1 medians of
    two runs differed by up to 13 %; with 1 they agree within 1 % (README.md)."""
    return 1 if getattr(args, "icount", None) is not None else VCPUS


DOM0_MEM_MB = 768
DOMU_MEM_MB = 256
# A log buffer that holds a whole run: the init scripts check boot lines with dmesg at the end, and
# the provoked reports (lkdtm's, the grant table misuse suite's) print long backtraces.
DEBUG_CMDLINE = "slab_debug=FZP,kmalloc-*,lkdtm-heap-* log_buf_len=4M"
DOM0_CMDLINE = "console=hvc0 earlyprintk=xen"
DOMU_CMDLINE = "grant_table.version=2"
# The event channel ABI each domain runs: FIFO (the default) in dom0 and 2-level in the domU, or the
# other way round with --swap-abis, so that two runs give each ABI both domains.
FORCE_2L = "xen.fifo_events=0"


def abis(args):
    """(dom0's, the domU's) event channel ABI, as the kernel names it in its boot line."""
    fifo, two = "FIFO-based", "2-level"
    return (two, fifo) if getattr(args, "swap_abis", False) else (fifo, two)


def abi_cmdline(abi):
    return f" {FORCE_2L}" if abi == "2-level" else ""


def debug_cmdline(args):
    """The checkers' command line: none for the bench, whose kernels have them off (bench.config)."""
    return "log_buf_len=4M" if args.mode == "bench" else DEBUG_CMDLINE


def qemu_cmd(args, initrd):
    kunit = kunit_cmdline(args)
    xen_cmdline = (f"console=com1 com1=115200 dom0_mem={DOM0_MEM_MB}M,max:{DOM0_MEM_MB}M "
                   f"dom0_max_vcpus={vcpus(args)} loglvl=all guest_loglvl=all console_timestamps=boot")
    total = sum(s[2] for s in STAGES)
    # -nic none: the domains' network (xen-netfront/netback) exists only inside the emulated machine.
    accel, cpu = ["-accel", "tcg,thread=multi"], QEMU_CPU
    if getattr(args, "icount", None) is not None:
        # An experiment for a clock that does not depend on the host (issue 10): one TCG thread,
        # guest time advanced by instructions. Xen's x2APIC and TSC-deadline timers read QEMU's
        # clock outside an I/O instruction, which icount refuses ("Bad icount read"): they go.
        accel = ["-accel", "tcg,thread=single", "-icount", f"shift={args.icount},sleep=off"]
        cpu += ",-x2apic,-tsc-deadline"
    return ["timeout", "--kill-after=10", str(total), "qemu-system-x86_64", *accel,
            "-cpu", cpu, "-m", "2048", "-smp", str(vcpus(args)), "-nographic", "-no-reboot",
            "-monitor", "none", "-serial", "stdio", "-nic", "none",
            "-kernel", args.xen, "-append", xen_cmdline,
            # QEMU's multiboot module list is comma-separated; ",," is a literal comma.
            "-initrd", f"{args.obj}/arch/x86/boot/bzImage {DOM0_CMDLINE}{abi_cmdline(abis(args)[0])} {debug_cmdline(args)}{kunit}".replace(",", ",,") + f",{initrd}"]


def cmd_run(args, summary=sys.stdout, counts=None, lines=None):
    """Boot the machine and run the tests, the demo or the bench; print the summary to summary and
    return the exit code. For `bench`, which reports several runs: counts gets the numbers of
    results passed, failed and skipped, and lines the console lines."""
    os.makedirs(args.logs, exist_ok=True)
    for f in (f"{args.obj}/vmlinux", f"{args.obj}/arch/x86/boot/bzImage", args.xen,
              f"{args.xen_root}/usr/lib/xen-4.17/bin/xl"):
        if not os.path.exists(f):
            print(f"error: {f} is missing (run the build and setup first)", file=sys.stderr)
            return 2
    console = f"{args.logs}/console.log"
    with tempfile.TemporaryDirectory(prefix="xr-initramfs-") as work:
        t0 = time.monotonic()
        initrd, nmod = build_initramfs(args, work)
        print(f"[harness] initramfs built ({os.path.getsize(initrd) // 1024} KiB, {nmod} modules) "
              f"in {time.monotonic() - t0:.1f} s", flush=True)
        print(f"[harness] booting Xen + dom0 + domU under QEMU TCG; console: {console}", flush=True)
        last = [None]

        def progress(line):
            for name, rx, _ in STAGES:
                if rx and rx.search(line) and name != last[0]:
                    last[0] = name
                    print(f"[harness] {time.monotonic() - t0:6.1f} s  {name}", flush=True)
            if args.verbose:
                print(line, flush=True)

        if getattr(args, "demo", False):
            show = transcript_filter()
            inner = progress

            def progress(line):  # noqa: F811 - the demo shows a transcript as well as the stages
                inner(line)
                t = show(line)
                if t:
                    print(t, flush=True)

        cmd = args.emulator.split() if args.emulator else qemu_cmd(args, initrd)
        out = run_console(cmd, console, args.timeout_scale, progress)
        print(f"[harness] run ended after {time.monotonic() - t0:.1f} s", flush=True)
    if getattr(args, "demo", False):
        exchange_table(out.lines)
    results, problems = evaluate(out.lines, args.expect_suite, args.expect_kselftest, args.mode,
                                 ("dom0",) + frontend_domains(args),
                                 {d: built_cores(domain_obj(args, d)) for d in ("dom0",) + frontend_domains(args)})
    if args.mode == "soak":
        soak_record(out.lines, f"{args.logs}/soak.txt")
    if lines is not None:
        lines.extend(out.lines)
    return report(results, problems, out.failure, out.lines, out=summary,
                  results_path=f"{args.logs}/results.txt", counts=counts)


SOAK_LINE = re.compile(r"^(\[domU\] )?# soak: ")


def soak_record(lines, path):
    """The soak's figures (baseline, and after each chunk of cycles) from both domains."""
    rec = [ln for ln in lines if SOAK_LINE.match(ln)]
    with open(path, "w") as f:
        f.write("\n".join(rec) + "\n")
    print(f"[harness] soak figures ({len(rec)} lines) in {path}:", flush=True)
    for ln in rec:
        print(f"  {ln}", flush=True)


# Rounds of the bench, each over all four pairings (xen_demo.sh's XEN_DEMO_BENCH_ROUNDS).
BENCH_ROUNDS = 5
# The clocks `bench` measures with, the deterministic one first: QEMU -icount (guest time from
# instructions executed, one TCG thread, 1 vCPU per domain) and host wall time (multi-threaded
# TCG, 2 vCPUs per domain, as the tests run: noisy, for orientation).
BENCH_CLOCKS = {"both": ("icount", "wall"), "icount": ("icount",), "wall": ("wall",)}
BENCH_TITLES = {
    "icount": "Deterministic clock (QEMU -icount shift={shift},sleep=off, one TCG thread, 1 vCPU per domain): "
              "round trips per second, domU frontend <-> dom0 backend",
    "wall": "Host wall time (NOISY: multi-threaded TCG on a shared host, 2 vCPUs per domain; for orientation "
            "only): round trips per second, domU frontend <-> dom0 backend",
}
BENCH_CONFIG = ("tools/testing/xen/xen-rust.config with bench.config over it: SMP; lockdep, SLUB debugging "
                "and KFENCE off; -O2")


def bench_boots(args):
    """The boots of a bench: (clock, frontend domains) for each. The tables come from boots with
    the domU alone; the side by side is a boot of its own (see tools/testing/xen/README)."""
    boots = []
    for clock in BENCH_CLOCKS[args.clock]:
        boots.append((clock, 1))
        if clock == "icount" and args.domus == 2:
            boots.append((clock, 2))
    return boots


def cmd_bench(args):
    """`bench`: one boot per clock asked for, each running every demo pairing, and a boot with two
    frontend domains side by side; then the report of all of them in logs/bench.txt, bench.json
    and bench.svg (tools/testing/xen/xen_bench.py)."""
    os.makedirs(args.logs, exist_ok=True)
    report = xen_bench.new_report(args.obj, BENCH_CONFIG, getattr(args, "domu2_obj", None))
    totals = {"passed": 0, "failed": 0, "skipped": 0}
    for clock, domus in bench_boots(args):
        run = argparse.Namespace(**vars(args))
        name = clock if domus == 1 else f"{clock}-side-by-side"
        run.logs = f"{args.logs}/bench-{name}"
        run.icount = args.icount_shift if clock == "icount" else None
        run.domus = domus
        print(f"[harness] bench with the {clock} clock, {domus} frontend domain(s), {args.rounds} rounds; "
              f"logs in {run.logs}", flush=True)
        lines, counts = [], {}
        buf = io.StringIO()
        cmd_run(run, summary=buf, counts=counts, lines=lines)
        for ln in buf.getvalue().splitlines():
            print(f"  {ln}", flush=True)
        for k in totals:
            totals[k] += counts.get(k, 0)
        rows = xen_bench.parse(lines)
        entry = {"clock": clock, "icount_shift": run.icount, "vcpus_per_domain": vcpus(run),
                 "frontend_domains": domus, "title": BENCH_TITLES[clock].format(shift=run.icount)}
        if domus == 1:
            report["runs"].append(dict(entry, rows=rows, core=xen_bench.parse_core(lines)))
        else:
            cores = None
            if getattr(run, "domu2_obj", None):
                cores = [core_label(built_cores(run.obj)), core_label(built_cores(run.domu2_obj))]
            report["side_by_side"].append(dict(
                entry, cores=cores, rows=xen_bench.side_by_side(rows, xen_bench.parse(lines, DOMU2)),
                core=xen_bench.core_side_by_side(xen_bench.parse_core(lines),
                                                 xen_bench.parse_core(lines, DOMU2))))
    print(xen_bench.write(report, args.logs), end="", flush=True)
    print(f"[harness] bench report in {args.logs}/bench.txt, bench.json, bench.svg", flush=True)
    print(f"{totals['passed']} passed, {totals['failed']} failed"
          + (f", {totals['skipped']} skipped" if totals["skipped"] else ""), flush=True)
    return 1 if totals["failed"] else 0


DEMO_SENT = re.compile(r"^\[domU\] \S+: xen-demo \S+: sent slot (\d+): id=(\d+) op=(\d+) status=(\d+)$")
DEMO_RECV = re.compile(r"^\[domU\] \S+: xen-demo \S+: received slot (\d+): id=(\d+) op=(\d+) status=(\d+)$")
DEMO_BACK = re.compile(r"^\S+: xen-demo \S+: slot (\d+): id=(\d+) op=(\d+) status=(\d+) -> status=(\d+)$")


def exchange_table(lines):
    """For `demo`: the traced requests joined by id across the two domains, in the order sent. The
    domU's console reaches ours up to a second late, so the transcript above interleaves the two
    domains only roughly; this table does not depend on that."""
    rows, order = {}, []
    for line in lines:
        for rx, side in ((DEMO_SENT, "sent"), (DEMO_RECV, "recv"), (DEMO_BACK, "back")):
            m = rx.match(line)
            if m:
                rid = m.group(2)
                if rid not in rows:
                    rows[rid] = {"op": m.group(3)}
                    order.append(rid)
                rows[rid][side] = m.groups()
    if not order:
        return
    print("\nThe exchange, request by request (domU frontend -> dom0 backend -> domU frontend):")
    print(f"  {'slot':>4} {'id':>6} {'op':>3}  {'domU sent':>10}  {'dom0 answered':>20}  {'domU received':>13}")
    for rid in order:
        r = rows[rid]
        slot = (r.get("sent") or r.get("recv") or r.get("back"))[0]
        sent = r["sent"][3] if "sent" in r else "-"
        back = f"{r['back'][3]} -> {r['back'][4]}" if "back" in r else "-"
        recv = r["recv"][3] if "recv" in r else "-"
        print(f"  {slot:>4} {rid:>6} {r['op']:>3}  {sent:>10}  {back:>20}  {recv:>13}")
    print(flush=True)


def transcript_filter():
    """For `demo`: pick the console lines a person wants to read, labelled with their domain."""
    interesting = re.compile(r"^(XR-LOG |XR-FATAL|(not )?ok \d+ |rust_xen_\w+: |xen_demo_\w+: |demo: |xen:|"
                             r"Xen version|"
                             r"XR-TAP-END|# Subtest: )")
    kunit_suite = re.compile(r"^(not ok|ok) \d+ (\S+)")
    in_tap = {"dom0": False, "domU": False}
    in_ksft = {"dom0": False, "domU": False}

    def show(line):
        dom, text = ("domU", line[7:]) if line.startswith("[domU] ") else ("dom0", line)
        if text.startswith("(XEN) "):
            return f"  xen  | {text[6:]}" if "Xen version" in text else None
        if text.startswith("XR-TAP-BEGIN"):
            in_tap[dom] = True
            return f"  {dom} | -- tests --"
        if text.startswith("XR-TAP-END"):
            in_tap[dom] = False
            return None
        if text.startswith(("XR-KSFT-BEGIN", "XR-KSFT-END")):
            in_ksft[dom] = text.startswith("XR-KSFT-BEGIN")
            return None
        if in_ksft[dom]:
            m = re.match(r"^(not ok|ok) \d+ (.*)$", text)
            if m:
                return f"  {dom} |   [{'ok' if m.group(1) == 'ok' else 'FAILED'}] {m.group(2)}"
        if not in_tap[dom]:
            m = kunit_suite.match(text)
            if m:
                return f"  {dom} | KUnit suite {m.group(2)}: {m.group(1)}"
            if text.startswith(("ok ", "not ok ", "    ", "TAP", "KTAP")):
                return None
        if interesting.match(text):
            return f"  {dom} | {text.replace('XR-LOG ', '')}"
        return None

    return show


def cmd_replay(args):
    with open(args.log, encoding="utf-8", errors="replace") as f:
        lines = [l.rstrip("\n") for l in f]
    results, problems = evaluate(lines, args.expect_suite, args.expect_kselftest)
    failure = None
    if not any(l.startswith("XR-DONE dom0") for l in lines):
        failure = "the log ends before dom0 reported XR-DONE"
    return report(results, problems, failure, lines)


# ---------------------------------------------------------------------------------------------------
# Self-tests: each builds a console that must be rejected and checks the harness says so.

def _kunit(cases, suite="rust_demo", truncate_at=None):
    lines = ["KTAP version 1", "1..1", "    KTAP version 1", f"    # Subtest: {suite}", f"    1..{len(cases)}"]
    for i, (name, ok) in enumerate(cases, 1):
        lines.append(f"    {'ok' if ok else 'not ok'} {i} {name}")
    lines.append(f"{'ok' if all(ok for _, ok in cases) else 'not ok'} 1 {suite}")
    return lines[:truncate_at] if truncate_at else lines


def _tap(domain, names):
    return ([f"XR-TAP-BEGIN {domain}", "TAP version 13"] + [f"ok {i} {n}" for i, n in enumerate(names, 1)]
            + [f"1..{len(names)}", f"XR-TAP-END {domain} failed=0"])


def _console(dom0_kunit, domU_kunit, domU_tap=True):
    lines = ["(XEN) Xen version 4.17", "Linux version 7.3"] + dom0_kunit + ["XR-STAGE dom0-init"]
    lines += ["XR-STAGE domU-boot"] + ["[domU] " + l for l in domU_kunit + ["XR-STAGE domU-init"]]
    if domU_tap:
        lines += ["[domU] " + l for l in _tap("domU", ["a", "b"]) + ["XR-DONE domU"]]
    return lines + ["XR-STAGE dom0-tests"] + _tap("dom0", ["c"]) + ["XR-DONE dom0"]


def cmd_self_test(args):
    me = os.path.abspath(__file__)
    good = _kunit([("x", True), ("y", True)])
    checks = []

    def replay(name, lines, want_rc_nonzero, want_text, extra=()):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as f:
            f.write("\n".join(lines) + "\n")
        r = subprocess.run([sys.executable, me, "replay", f.name, *extra], capture_output=True, text=True)
        os.unlink(f.name)
        ok = (r.returncode != 0) == want_rc_nonzero and want_text in r.stdout
        checks.append((name, ok, f"rc={r.returncode}, wanted text {want_text!r}:\n{r.stdout[-600:]}"))

    replay("a good console passes", _console(good, good), False, "7 passed, 0 failed")
    # Which core a domain runs: its boot line against what the kernel was built with.
    rust_boot = ["xen:grant_table: Grant table initialized (Rust)"]
    for name, lines, cores, want in (
            ("a Rust-core kernel whose domains say Rust passes", rust_boot + ["[domU] " + rust_boot[0]],
             {"grant table": "Rust"}, ["pass", "pass"]),
            ("a Rust-core kernel whose domU says C fails", rust_boot + ["[domU] Grant table initialized"],
             {"grant table": "Rust"}, ["pass", "fail"]),
            ("a C-core kernel whose dom0 says Rust fails", rust_boot + ["[domU] Grant table initialized"],
             {"grant table": "C"}, ["fail", "pass"]),
            ("a C-core kernel whose domains say C passes (grant-table.c's line has no prefix)",
             ["Grant table initialized", "[domU] Grant table initialized"], {"grant table": "C"}, ["pass", "pass"]),
            ("a domain that never says which core fails", rust_boot, {"grant table": "Rust"}, ["pass", "fail"]),
            ("a Rust-ABI kernel whose domU uses events_2l.c fails",
             ["xen:events: Using FIFO-based ABI (Rust)", "[domU] xen:events: Using 2-level ABI"],
             {"event channel ABI": "Rust"}, ["pass", "fail"]),
            ("a C-ABI kernel whose domains say C passes",
             ["xen:events: Using FIFO-based ABI", "[domU] xen:events: Using 2-level ABI"],
             {"event channel ABI": "C"}, ["pass", "pass"]),
            ("a Rust-xenbus kernel whose domU is silent fails (the C buses print nothing)",
             ["xenbus_probe_frontend: frontend bus xen (Rust)"], {"xenbus frontend bus": "Rust"}, ["pass", "fail"]),
            ("a C-xenbus kernel whose domains are silent passes", [], {"xenbus frontend bus": "C"}, ["pass", "pass"]),
            ("a C-xenbus kernel whose domU says Rust fails", ["[domU] xenbus_probe_frontend: frontend bus xen (Rust)"],
             {"xenbus frontend bus": "C"}, ["pass", "fail"])):
        streams = split_console(lines)
        got = [r.status for d in DOMAINS for r in core_results(streams[d], d, cores)]
        checks.append((name, got == want, f"got {got}, wanted {want}"))
    replay("a KTAP 'not ok' case fails the run", _console(good, _kunit([("x", True), ("y", False)])),
           True, "FAIL domU: KUnit rust_demo: y")
    replay("a truncated KTAP stream fails the run", _console(_kunit([("x", True), ("y", True)], truncate_at=6), good),
           True, "dom0: KUnit planned 1 suites, 0 reported (truncated")
    replay("a KTAP stream with no result at all fails the run", _console(["KTAP version 1"], good),
           True, "no top-level plan")
    replay("a domU that never reports fails the run", _console(good, good, domU_tap=False),
           True, "domU: the tests never started")
    ksft = ["XR-KSFT-BEGIN xen_demo", "TAP version 13", "ok 1 a", "not ok 2 b", "# why b failed", "1..2",
            "XR-KSFT-END xen_demo rc=1"]
    # A relayed domU line that landed between two pieces of a dom0 kernel message still counts.
    relayed = ["[domU] XR-KSFT-BEGIN xen_demo", "[domU] TAP version 13", "[domU] ok 1 a",
               "xen_demo_back: x[domU] ok 2 ben-demo demo-6-0: misbehave none", "[domU] 1..2",
               "[domU] XR-KSFT-END xen_demo rc=0"]
    replay("a domU result inside a dom0 kernel line still counts", _console(good, good) + relayed, False,
           "9 passed, 0 failed")
    behind = ["XR-KSFT-BEGIN xen_demo", "TAP version 13", "ok 1 a", "xen_demo_back: xnot ok 2 b",
              "1..2", "XR-KSFT-END xen_demo rc=1"]
    replay("a dom0 result behind a piece of a kernel message still counts",
           _console(good, good) + behind, True, "FAIL dom0: kselftest xen_demo: b")
    replay("a kselftest 'not ok' fails the run", _console(good, good) + ksft, True,
           "FAIL dom0: kselftest xen_demo: b (why b failed)")
    replay("a kselftest that bails out fails the run",
           _console(good, good) + ksft[:3] + ["Bail out! the domU at step 3 never came", "1..1",
                                              "XR-KSFT-END xen_demo rc=1"],
           True, "kselftest xen_demo bailed out: the domU at step 3 never came")
    replay("a kselftest cut short fails the run", _console(good, good) + ksft[:3], True,
           "kselftest xen_demo did not finish")
    replay("a kselftest end marker without rc= fails the run",
           _console(good, good) + ksft[:3] + ["1..1", "XR-KSFT-END xen_demo"], True,
           "kselftest xen_demo ended without an exit status")
    replay("a skipped kselftest step fails the run",
           _console(good, good) + ksft[:3] + ["ok 2 b # SKIP no vchan here", "1..2", "XR-KSFT-END xen_demo rc=0"],
           True, "kselftest xen_demo: b was skipped")
    ours = _kunit([("x", True), ("y # SKIP not running on Xen", True)], suite="rust_xen_events")
    replay("a skipped project KUnit case fails the run", _console(good, ours), True,
           "domU: KUnit rust_xen_events: y was skipped")
    replay("a skipped upstream KUnit case is only a skip", _console(good, _kunit([("y # SKIP no", True)])),
           False, "5 passed, 0 failed, 1 skipped")
    replay("an expected suite missing from a domain with no KUnit output fails the run",
           _console(good, []), True, "domU: KUnit suite rust_demo did not run", ("--expect-suite", "rust_demo"))
    # The kernel's checkers: a report in either domain fails the run and names the line; a report
    # provoked on purpose (between XR-SPLAT markers) is a pass only if it is there.
    for what, line in (("a WARN_ON", "WARNING: CPU: 1 PID: 42 at drivers/xen/events/events_base.c:123 f+0x1/0x2"),
                       ("a lockdep report", "WARNING: possible circular locking dependency detected"),
                       ("a KASAN report", "[   12.345678] BUG: KASAN: slab-use-after-free in f+0x1/0x2"),
                       ("a sleep in atomic context",
                        "BUG: sleeping function called from invalid context at mm/slub.c:4100"),
                       ("an oops", "Oops: 0000 [#1] SMP KASAN"),
                       ("a report behind user-space output", "ok 3 somethiWARNING: CPU: 0 PID: 1 at x.c:1 f")):
        replay(f"{what} in the domU fails the run", _console(good, good) + ["[domU] " + line], True,
               "domU: kernel report at line")
        replay(f"{what} in dom0 fails the run", _console(good, good) + [line], True, "dom0: kernel report at line")
    provoked = ["[domU] XR-SPLAT-BEGIN lkdtm:WARNING", "[domU] WARNING: CPU: 0 PID: 9 at lkdtm/bugs.c:1 f",
                "[domU] XR-SPLAT-END lkdtm:WARNING"]
    replay("a provoked report between XR-SPLAT markers is a pass", _console(good, good) + provoked, False,
           "8 passed, 0 failed")
    replay("a provoked report that never came fails the run",
           _console(good, good) + [provoked[0], provoked[2]], True, "no report containing 'WARNING'")
    replay("a provocation that failed says what lkdtm said",
           _console(good, good) + [provoked[0], "[domU] [   9.000000] lkdtm: FAIL: kfence memory never allocated!",
                                   "[domU] XR-SPLAT-NOTE kfence currently allocated: 255", provoked[2]], True,
           "FAIL: kfence memory never allocated!; XR-SPLAT-NOTE kfence currently allocated: 255")
    # The bench report: medians per pairing and batch, the ratio to the C pair, requests per event,
    # and the same in JSON and as a chart with a bar per row.
    bench = [f"[domU] # bench: front={f} back={b} batch=1 requests=1000 ns={ns}"
             + (f" notifications={ev} interrupts={ev}" if ev else "")
             for f, b, ns, ev in (("rust_xen_demo_front", "rust_xen_demo_back", 500_000_000, 250),
                                  ("xen_demo_front", "xen_demo_back", 250_000_000, 0),
                                  ("xen_demo_front", "xen_demo_back", 200_000_000, 0),
                                  ("xen_demo_front", "xen_demo_back", 1_000_000_000, 0))]
    # The second frontend domain's rounds, for the side by side: C+C at 3,000 and 5,000 a second.
    bench += [f"[{DOMU2}] # bench: front=xen_demo_front back=xen_demo_back batch=1 requests=1000 ns={ns}"
              for ns in (333_333_333, 200_000_000, 250_000_000)]
    # Grant cycles: 1,000,000 a second in the domU (the Rust core), 800,000 in domU2 (the C core).
    bench += [f"[domU] # bench: gnttab=one cycles=32768 ns={ns}" for ns in (32_768_000, 30_000_000, 40_000_000)]
    bench += [f"[{DOMU2}] # bench: gnttab=one cycles=32768 ns={ns}" for ns in (40_960_000,) * 3]
    # Block reads: 16 MiB in 0.5 s (33.6 MB/s) in the domU, in 1 s in domU2.
    bench += [f"[domU] # bench: pv=blk-read bytes=16777216 ns={ns}" for ns in (500_000_000,) * 3]
    bench += [f"[{DOMU2}] # bench: pv=blk-read bytes=16777216 ns={ns}" for ns in (1_000_000_000,) * 3]
    # Attach to Connected: 64 devices in 0.5 s (128 a second) in the domU, in 0.4 s in domU2.
    bench += [f"[domU] # bench: attach=many devices=64 ns={ns}" for ns in (500_000_000,) * 3]
    bench += [f"[{DOMU2}] # bench: attach=many devices=64 ns={ns}" for ns in (400_000_000,) * 3]
    with tempfile.TemporaryDirectory() as d:
        rep = xen_bench.new_report(d, "test")
        rows = xen_bench.parse(bench)
        rep["runs"].append({"clock": "icount", "title": "t", "rows": rows,
                            "core": xen_bench.parse_core(bench)})
        rep["side_by_side"].append({
            "clock": "icount", "cores": ["the Rust grant table core", "the C grant table core"],
            "rows": xen_bench.side_by_side(rows, xen_bench.parse(bench, DOMU2)),
            "core": xen_bench.core_side_by_side(xen_bench.parse_core(bench),
                                                xen_bench.parse_core(bench, DOMU2))})
        text = xen_bench.write(rep, d)
        with open(f"{d}/bench.json") as f:
            js = json.load(f)
        with open(f"{d}/bench.svg") as f:
            svg = f.read()
        ok = (re.search(r"^Rust +Rust +1 +2,000 +2,000-2,000 +0\.50 +2\.0$", text, re.M) is not None
              and re.search(r"^C +C +1 +4,000 +1,000-5,000 +1\.00 +-$", text, re.M) is not None
              and re.search(r"^  xenbus attach to Connected, 64 at once +128\.0 devices/s +128\.0-128\.0$", text, re.M)
              is not None
              and re.search(r"^xenbus attach to Connected, 64 at once +128\.0 +160\.0 +1\.250 +1\.25-1\.25   "
                            r"Rust/C 0\.800$", text, re.M) is not None
              and re.search(r"^  drivers/xen/grant-table.o \+ drivers/xen/grant-table-pages.o +- +- +- +not built yet \(issue 12\)$", text, re.M)
              is not None
              and [r["ratio"] for r in js["runs"][0]["rows"]] == [0.5, 1.0]
              and re.search(r"^C +C +1 +4,000 +4,000 +1\.000 +0\.75-4\.00$", text, re.M) is not None
              and re.search(r"^  grant cycle \(claim, grant, end, free\), 1 in flight +1,000,000 cycles/s +"
                            r"819,200-1,092,267$", text, re.M) is not None
              and re.search(r"^  blkfront sequential read \(O_DIRECT, 64 KiB\) +33\.6 MB/s +33\.6-33\.6$", text, re.M)
              is not None
              and re.search(r"^blkfront sequential read \(O_DIRECT, 64 KiB\) +33\.6 +16\.8 +0\.500 +0\.50-0\.50   "
                            r"Rust/C 2\.000$", text, re.M) is not None
              and re.search(r"^grant cycle \(claim, grant, end, free\), 1 in flight +1,000,000 +800,000 +0\.800 "
                            r"+0\.73-0\.98   Rust/C 1\.250$", text, re.M) is not None
              and "the domU boots the Rust grant table core, domU2 boots the C grant table core" in text
              and svg.count("<rect") == 5 and ">1.00</text>" in svg and ">1.25</text>" in svg
              and ">0.80</text>" in svg)
    checks.append(("the bench report shows medians, ranges, the ratio to C+C, requests per event, grant "
                   "cycles, PV driver MB/s, attach times and the second frontend domain against the first, in "
                   "text, JSON and a chart", ok, text))
    # The demo's exchange table joins the two domains' trace lines by request id.
    trace = ["rust_xen_demo_back: xen-demo demo-1-0: slot 0: id=256 op=0 status=2560 -> status=2561",
             "[domU] rust_xen_demo_front: xen-demo demo-0: sent slot 0: id=256 op=0 status=2560",
             "[domU] rust_xen_demo_front: xen-demo demo-0: received slot 0: id=256 op=0 status=2561"]
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        exchange_table(trace)
    text = buf.getvalue()
    ok = re.search(r"^ +0 +256 +0 +2560 +2560 -> 2561 +2561$", text, re.M) is not None
    checks.append(("the demo's exchange table joins both domains by request id", ok, text))
    # The bench's second frontend domain has a stream of its own, also when its line is relayed
    # into the middle of a dom0 kernel line; Xen's lines belong to no domain.
    st = split_console(["[domU2] ok 1 a", "xen_demo_back: x[domU2] ok 2 b", "[domU] ok 3 c", "(XEN) y [domU] z"])
    ok = st == {"dom0": ["xen_demo_back: x"], "domU": ["ok 3 c"], DOMU2: ["ok 1 a", "ok 2 b"]}
    checks.append(("the console is split into dom0, the domU and the second frontend domain", ok, repr(st)))

    def fake_run(script, scale):
        """`run` with an "emulator" that prints `script`'s output: (result, seconds taken)."""
        with tempfile.TemporaryDirectory() as d:
            fake = f"{d}/fake-qemu.sh"
            with open(fake, "w") as f:
                f.write("#!/bin/sh\n" + script)
            os.chmod(fake, 0o755)
            t0 = time.monotonic()
            r = subprocess.run([sys.executable, me, "run", "--obj", d, "--xen", fake, "--xen-root", d,
                                "--logs", d, "--emulator", fake, "--timeout-scale", str(scale),
                                "--skip-build-check"], capture_output=True, text=True, timeout=120)
            return r, time.monotonic() - t0

    to_xenstored = "echo 'Linux version 7.3'\necho 'XR-STAGE dom0-init'\necho 'XR-STAGE xenstored'\n"
    # A hang: an "emulator" that boots to dom0 init, then stays silent.
    r, took = fake_run("echo '(XEN) Xen version 4.17'\n" + to_xenstored + "exec sleep 600\n", 0.02)
    ok = (r.returncode != 0 and "timeout in stage xenstored" in r.stdout
          and "| XR-STAGE xenstored" in r.stdout and took < 60)
    checks.append(("a hang is stopped and named by its stage", ok, r.stdout[-800:] + r.stderr[-400:]))
    # A silent hang in a long stage is caught by the silence, long before the stage's own limit; a
    # stage that keeps talking is still stopped at its limit.
    for what, tail, want in (
            ("a silent hang in a long stage is stopped by its silence",
             "echo '[domU] XR-KSFT-BEGIN xen_demo'\nexec sleep 600\n",
             "timeout in stage demo kselftest (no console output for 3 s"),
            ("a stage that talks but never ends is stopped at its limit",
             "while :; do echo '[domU] still here'; sleep 0.2; done\n",
             "timeout in stage xenstored (in it for")):
        r, took = fake_run(to_xenstored + tail, 0.005)
        ok = r.returncode != 0 and want in r.stdout and took < 15
        checks.append((what, ok, r.stdout[-800:] + r.stderr[-400:]))
    # A harness stopped from outside (a CI timeout's SIGTERM) stops its emulator with it.
    with tempfile.TemporaryDirectory() as d:
        fake = f"{d}/fake-qemu.sh"
        with open(fake, "w") as f:
            f.write(f"#!/bin/sh\necho $$ > {d}/pid\necho 'Linux version 7.3'\nexec sleep 600\n")
        os.chmod(fake, 0o755)
        h = subprocess.Popen([sys.executable, me, "run", "--obj", d, "--xen", fake, "--xen-root", d,
                              "--logs", d, "--emulator", fake, "--skip-build-check"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            if os.path.exists(f"{d}/pid") and os.path.getsize(f"{d}/pid"):
                break
            time.sleep(0.1)
        h.terminate()
        h.wait(timeout=30)
        pid = int(open(f"{d}/pid").read() or 0)
        gone = False
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except OSError:
                gone = True
                break
            time.sleep(0.1)
        if not gone:
            os.kill(pid, signal.SIGKILL)
        checks.append(("a harness stopped by SIGTERM stops its emulator", gone, f"emulator pid {pid} still ran"))
    results = []
    for name, ok, detail in checks:
        results.append(Result("harness", "self-test", name, "pass" if ok else "fail", "" if ok else detail))
    for r in results:
        print(f"   {r}")
    passed = sum(r.status == "pass" for r in results)
    print(f"{passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--obj", required=True, help="kbuild output directory (O=)")
    r.add_argument("--xen", required=True, help="uncompressed Xen hypervisor image")
    r.add_argument("--xen-root", required=True, help="xen-utils packages unpacked with dpkg-deb -x")
    r.add_argument("--logs", default="logs")
    r.add_argument("--expect-suite", action="append", default=[],
                   help="a KUnit suite that must have run in both domains")
    r.add_argument("--expect-kselftest", action="append", default=[],
                   help="a kselftest that must have run in both domains")
    r.add_argument("--emulator", help=argparse.SUPPRESS)
    r.add_argument("--skip-build-check", action="store_true", help=argparse.SUPPRESS)
    r.add_argument("--kunit-filter", metavar="GLOB",
                   help="run only the matching KUnit suites/cases in both domains (kunit.filter_glob)")
    r.add_argument("--timeout-scale", type=float, default=1.0, help="multiply every stage's time limit")
    r.add_argument("--kselftest", action="append", choices=KSELFTESTS,
                   help="run only this kselftest in both domains (repeatable; default: all)")
    r.add_argument("--swap-abis", action="store_true",
                   help="run the 2-level event channel ABI in dom0 and FIFO in the domU (the default is "
                        "the other way round)")
    r.add_argument("--full", action="store_true",
                   help="the kselftests' repeated cycles in full (20 demo reload/attach cycles of each "
                        "kind, 3 race cycles of each kind) instead of 2 and 1")
    r.add_argument("-v", "--verbose", action="store_true", help="echo the console")
    d = sub.add_parser("demo", parents=[], help="the Rust demo pair, with a transcript of both domains")
    for a in r._actions[1:]:
        d._add_action(a)
    b = sub.add_parser("bench", parents=[], help="round trips per second of the four demo pairings")
    for a in r._actions[1:]:
        b._add_action(a)
    b.add_argument("--rounds", type=int, default=BENCH_ROUNDS,
                   help=f"rounds, each over all four pairings (default {BENCH_ROUNDS})")
    b.add_argument("--clock", choices=sorted(BENCH_CLOCKS), default="both",
                   help="icount: guest time from instructions (QEMU -icount, one TCG thread, 1 vCPU per "
                        "domain); wall: host time, as the tests run (noisy); both (default): one boot each")
    b.add_argument("--domus", type=int, choices=(1, 2), default=2,
                   help="2 (default): one more boot under icount, with a second frontend domain "
                        "measuring side by side with the domU, in turn, against the same dom0; 1: not")
    b.add_argument("--domu2-obj", metavar="DIR",
                   help="the kernel build the second frontend domain of the side by side boots (the "
                        "reference kernel with the C cores, so that the two compare the cores); "
                        "default: the same as the domU")
    b.add_argument("--icount-shift", type=int, default=0, metavar="SHIFT",
                   help="-icount shift=SHIFT for the icount clock: 2^SHIFT ns per instruction (default 0)")
    s = sub.add_parser("soak", parents=[], help="the Rust demo pair's connect/disconnect cycles, "
                       "many of each kind, with resources compared with their baseline")
    for a in r._actions[1:]:
        s._add_action(a)
    s.add_argument("--cycles", type=int, default=1000, help="cycles of each kind (default 1000)")
    p = sub.add_parser("replay")
    p.add_argument("log")
    p.add_argument("--expect-suite", action="append", default=[])
    p.add_argument("--expect-kselftest", action="append", default=[])
    sub.add_parser("self-test")
    args = ap.parse_args()
    args.mode = {"demo": "demo", "bench": "bench", "soak": "soak"}.get(args.cmd, "test")
    if args.cmd == "run":
        if args.skip_build_check:
            return cmd_run_fake(args)
        return cmd_run(args)
    if args.cmd == "soak":
        if args.cycles < 1:
            ap.error("--cycles must be at least 1")
        # Three kinds of cycles, and the setup around them.
        set_stage_limit("demo kselftest", 600 + 3 * args.cycles * SOAK_CYCLE_S)
        args.kselftest = ["xen_demo"]
    if args.cmd == "bench":
        if args.rounds < 1:
            ap.error("--rounds must be at least 1")
        if not 0 <= args.icount_shift <= 10:
            ap.error("--icount-shift must be 0 to 10")
        args.demo = False
        return cmd_bench(args)
    if args.cmd in ("demo", "soak"):
        args.demo = args.cmd == "demo"
        return cmd_run(args)
    if args.cmd == "replay":
        return cmd_replay(args)
    return cmd_self_test(args)


def set_stage_limit(name, seconds):
    for i, (n, rx, _) in enumerate(STAGES):
        if n == name:
            STAGES[i] = (n, rx, seconds)


def cmd_run_fake(args):
    """`run` with a fake emulator and no kernel: only the stage tracking and reporting are exercised."""
    os.makedirs(args.logs, exist_ok=True)
    out = run_console(args.emulator.split(), f"{args.logs}/console.log", args.timeout_scale)
    results, problems = evaluate(out.lines)
    return report(results, problems, out.failure, out.lines)


if __name__ == "__main__":
    sys.exit(main())

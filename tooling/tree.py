#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Assemble the kernel tree from pristine Linux + this overlay + patches/, and export the series.

patches/ holds one entry per commit of the series, applied in file-name order:
  NNNN-name.patch  a `git format-patch` patch editing upstream files;
  NNNN-name.files  a commit message, a line '---', then the overlay paths (files or directories) the
                   commit adds.
Every overlay file must belong to exactly one .files entry, and patches must not touch overlay files.

  tree.py sync              bring $XR_SRC in line (only files whose content differs are rewritten, so
                            kbuild rebuilds only what changed)
  tree.py export DIR        write the series as `git format-patch` files to DIR
  tree.py verify DIR        `git am` the exported series onto the pristine versions of the files it
                            touches and compare the result with the assembled tree
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("XR_CACHE", "/var/cache/xen-rust")
PRISTINE = os.path.join(CACHE, "pristine")
SRC = os.path.join(CACHE, "linux")
OVERLAY_DIRS = ["Documentation", "drivers", "include", "kernel", "rust", "samples", "tools"]
PATCHES = os.path.join(TOP, "patches")
MANIFEST = os.path.join(SRC, ".xr-managed")


class TreeError(Exception):
    pass


def overlay_files():
    out = []
    for d in OVERLAY_DIRS:
        root = os.path.join(TOP, d)
        for dp, dns, fns in os.walk(root):
            dns.sort()
            for fn in sorted(fns):
                if fn.endswith(("~", ".swp", ".orig", ".rej")) or fn.startswith(".#"):
                    continue
                out.append(os.path.relpath(os.path.join(dp, fn), TOP))
    return out


def entries():
    """The series entries in order: (stem, kind, path)."""
    res = []
    for fn in sorted(os.listdir(PATCHES)):
        m = re.match(r"^(\d{4}-.+)\.(patch|files)$", fn)
        if not m:
            if fn != "README":
                raise TreeError(f"patches/{fn}: not NNNN-name.patch or NNNN-name.files")
            continue
        res.append((m.group(1), m.group(2), os.path.join(PATCHES, fn)))
    stems = [e[0][:4] for e in res]
    dup = {s for s in stems if stems.count(s) > 1}
    if dup:
        raise TreeError(f"patches/: number used twice: {', '.join(sorted(dup))}")
    return res


def patch_paths(path):
    """Files a patch touches (a/ and b/ sides, minus /dev/null)."""
    paths = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            m = re.match(r"^(?:---|\+\+\+) [ab]/(\S+)", line)
            if m and m.group(1) not in paths:
                paths.append(m.group(1))
    return paths


def files_entry(path):
    """(message, [overlay files]) of a .files entry."""
    text = open(path, encoding="utf-8").read()
    if "\n---\n" not in text:
        raise TreeError(f"{os.path.relpath(path, TOP)}: no '---' line between message and paths")
    msg, paths = text.split("\n---\n", 1)
    files = []
    for p in paths.split():
        full = os.path.join(TOP, p)
        if os.path.isdir(full):
            files += [f for f in overlay_files() if f.startswith(p.rstrip("/") + "/")]
        elif os.path.isfile(full):
            files.append(p)
        else:
            raise TreeError(f"{os.path.relpath(path, TOP)}: {p} does not exist")
    return msg.strip() + "\n", files


def check_coverage():
    """Every overlay file in exactly one .files entry; no patch touches an overlay file."""
    ov = overlay_files()
    owner = {}
    problems = []
    for stem, kind, path in entries():
        if kind == "files":
            for f in files_entry(path)[1]:
                if f in owner:
                    problems.append(f"{f} is in both {owner[f]} and {stem}")
                owner[f] = stem
        else:
            for f in patch_paths(path):
                if f in ov:
                    problems.append(f"{stem}.patch edits overlay file {f}; edit the file itself")
    for f in ov:
        if f not in owner:
            problems.append(f"{f} is in no patches/*.files entry, so the series would miss it")
    return problems


def run(cmd, cwd, **kw):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, **kw)
    if r.returncode:
        raise TreeError(f"{' '.join(cmd)} failed in {cwd}:\n{r.stdout}{r.stderr}")
    return r.stdout


def stage_tree(stage):
    """Write pristine copies of patched files, apply the patches, add the overlay. Returns the paths."""
    touched = []
    for stem, kind, path in entries():
        if kind == "patch":
            for f in patch_paths(path):
                if f not in touched:
                    touched.append(f)
    for f in touched:
        src = os.path.join(PRISTINE, f)
        if os.path.exists(src):
            os.makedirs(os.path.dirname(os.path.join(stage, f)), exist_ok=True)
            shutil.copy2(src, os.path.join(stage, f))
    for stem, kind, path in entries():
        if kind == "patch":
            r = subprocess.run(["patch", "-p1", "-s", "-N", "--no-backup-if-mismatch", "-i", path],
                               cwd=stage, capture_output=True, text=True)
            if r.returncode:
                raise TreeError(f"patches/{stem}.patch does not apply to Linux "
                                f"{kernelversion()}:\n{r.stdout}{r.stderr}")
    ov = overlay_files()
    for f in ov:
        if os.path.exists(os.path.join(PRISTINE, f)):
            raise TreeError(f"overlay file {f} exists upstream: change it with a patch instead")
        os.makedirs(os.path.dirname(os.path.join(stage, f)), exist_ok=True)
        shutil.copyfile(os.path.join(TOP, f), os.path.join(stage, f))
    return sorted(set(touched) | set(ov))


def kernelversion():
    try:
        return run(["make", "-s", "kernelversion"], PRISTINE).strip()
    except TreeError:
        return "?"


def same(a, b):
    if not os.path.exists(b) or os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


def sync():
    if not os.path.isfile(os.path.join(PRISTINE, "Makefile")):
        raise TreeError(f"no pristine source in {PRISTINE}: run `make setup` first")
    stamp = os.path.join(SRC, ".xr-pristine")
    want = kernelversion()
    if not os.path.isfile(stamp) or open(stamp).read().strip() != want:
        print(f"  copying pristine Linux {want} to {SRC}", flush=True)
        shutil.rmtree(SRC, ignore_errors=True)
        run(["cp", "-a", PRISTINE, SRC], "/")
        open(stamp, "w").write(want + "\n")
    prev = open(MANIFEST).read().split() if os.path.exists(MANIFEST) else []
    with tempfile.TemporaryDirectory(prefix="xr-stage-") as stage:
        managed = stage_tree(stage)
        changed = []
        for f in managed:
            s, d = os.path.join(stage, f), os.path.join(SRC, f)
            if not same(s, d):
                os.makedirs(os.path.dirname(d), exist_ok=True)
                shutil.copyfile(s, d + ".xr-new")
                os.replace(d + ".xr-new", d)
                changed.append(f)
        for f in prev:
            if f in managed:
                continue
            d, p = os.path.join(SRC, f), os.path.join(PRISTINE, f)
            if os.path.exists(p):
                shutil.copy2(p, d)
            elif os.path.exists(d):
                os.unlink(d)
            changed.append(f + " (restored)")
    with open(MANIFEST, "w") as f:
        f.write("\n".join(managed) + "\n")
    for f in changed:
        print(f"  updated {f}")
    print(f"  tree {SRC}: {len(managed)} files from the overlay and patches, {len(changed)} changed")


def export(outdir):
    problems = check_coverage()
    if problems:
        raise TreeError("the series does not cover the overlay:\n  " + "\n  ".join(problems))
    os.makedirs(outdir, exist_ok=True)
    for f in os.listdir(outdir):
        if f.endswith(".patch"):
            os.unlink(os.path.join(outdir, f))
    with tempfile.TemporaryDirectory(prefix="xr-series-") as g:
        base_files = []
        for stem, kind, path in entries():
            if kind == "patch":
                base_files += [f for f in patch_paths(path) if os.path.exists(os.path.join(PRISTINE, f))]
        for f in sorted(set(base_files)):
            os.makedirs(os.path.dirname(os.path.join(g, f)), exist_ok=True)
            shutil.copy2(os.path.join(PRISTINE, f), os.path.join(g, f))
        env = dict(os.environ, GIT_COMMITTER_DATE="2026-01-01T00:00:00Z")
        run(["git", "init", "-q"], g)
        run(["git", "add", "-A"], g)
        run(["git", "commit", "-q", "-m", f"Linux {kernelversion()} (the files this series touches)"], g, env=env)
        base = run(["git", "rev-parse", "HEAD"], g).strip()
        for stem, kind, path in entries():
            if kind == "patch":
                run(["git", "am", "-q", "--keep-cr", path], g, env=env)
            else:
                msg, files = files_entry(path)
                for f in files:
                    os.makedirs(os.path.dirname(os.path.join(g, f)), exist_ok=True)
                    shutil.copyfile(os.path.join(TOP, f), os.path.join(g, f))
                run(["git", "add", "--"] + files, g)
                run(["git", "commit", "-q", "-F", "-"], g, env=env, input=msg)
        run(["git", "format-patch", "-q", "--zero-commit", "--no-signature", "-o", os.path.abspath(outdir),
             f"{base}..HEAD"], g)
    n = len([f for f in os.listdir(outdir) if f.endswith(".patch")])
    print(f"  {n} patches in {outdir}")


def verify(outdir):
    """Apply the exported series with git am to pristine files; compare with the assembled tree."""
    series = sorted(f for f in os.listdir(outdir) if f.endswith(".patch"))
    if not series:
        raise TreeError(f"no patches in {outdir}")
    with tempfile.TemporaryDirectory(prefix="xr-verify-") as g:
        touched = set()
        for p in series:
            touched |= set(patch_paths(os.path.join(outdir, p)))
        for f in sorted(touched):
            if os.path.exists(os.path.join(PRISTINE, f)):
                os.makedirs(os.path.dirname(os.path.join(g, f)), exist_ok=True)
                shutil.copy2(os.path.join(PRISTINE, f), os.path.join(g, f))
        run(["git", "init", "-q"], g)
        run(["git", "add", "-A"], g)
        run(["git", "commit", "-q", "--allow-empty", "-m", "pristine"], g)
        for p in series:
            r = subprocess.run(["git", "am", "-q", os.path.join(outdir, p)], cwd=g, capture_output=True,
                               text=True)
            if r.returncode:
                raise TreeError(f"git am {p} failed on pristine Linux {kernelversion()}:\n{r.stdout}{r.stderr}")
        diffs = [f for f in sorted(touched)
                 if os.path.exists(os.path.join(g, f)) and not same(os.path.join(g, f), os.path.join(SRC, f))]
        if diffs:
            raise TreeError("the series does not reproduce the built tree for: " + ", ".join(diffs))
    print(f"  {len(series)} patches apply with git am to pristine Linux {kernelversion()} "
          f"and reproduce the built tree ({len(touched)} files)")


def main(argv):
    try:
        if argv[1:2] == ["sync"]:
            sync()
        elif argv[1:2] == ["export"] and len(argv) == 3:
            export(argv[2])
        elif argv[1:2] == ["verify"] and len(argv) == 3:
            verify(argv[2])
        elif argv[1:2] == ["coverage"]:
            problems = check_coverage()
            for p in problems:
                print(f"  {p}")
            return 1 if problems else 0
        else:
            print(__doc__)
            return 2
    except TreeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Print the rustc/clippy/rustdoc diagnostics of a build log that point into the given files.

  lint_diagnostics.py LOG SRCTREE FILE...  exit 1 if any diagnostic points at one of FILE (paths relative
                                      to SRCTREE)
"""
import os
import re
import sys


def main(argv):
    log, srctree, files = argv[1], argv[2], set(argv[3:])
    lines = open(log, encoding="utf-8", errors="replace").read().splitlines()
    found = []
    i = 0
    while i < len(lines):
        if re.match(r"^(warning|error)(\[\S+\])?: ", lines[i]) and not re.match(
                r"^(warning|error): (\d+ warnings? emitted|aborting)", lines[i]):
            block = [lines[i]]
            j = i + 1
            while j < len(lines) and (lines[j].startswith((" ", "|")) or lines[j].strip() == ""
                                      or lines[j].startswith("= ")):
                if lines[j].strip() == "" and j + 1 < len(lines) and not lines[j + 1].startswith(" "):
                    break
                block.append(lines[j])
                j += 1
            for b in block:
                m = re.match(r"^\s*--> (\S+?):\d+:\d+", b)
                if m:
                    path = m.group(1)
                    rel = os.path.relpath(path, srctree) if os.path.isabs(path) else path
                    if rel in files:
                        found.append("\n".join(block))
                    break
            i = j
        else:
            i += 1
    for f in found:
        print(f)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

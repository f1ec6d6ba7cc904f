#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# `make check`: setup, build, lint, series and the Xen harness (self-tests, then a real Xen run with
# dom0 and domU). Every step counts as tests; the last line is `N passed, N failed`, and the exit code
# is non-zero on any failure.
set -uo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$XR_LOGS"
pass=0 fail=0 skip=0
T0=$(xr_now)
res() {
	case $1 in pass) pass=$((pass + 1)) ;; skip) skip=$((skip + 1)) ;; *) fail=$((fail + 1)) ;; esac
	printf '%-4s %s\n' "$(echo "$1" | tr a-z A-Z)" "$2"
}
finish() {
	xr_step "check finished in $(( $(xr_now) - T0 )) s; logs in $XR_LOGS"
	echo "$pass passed, $fail failed$([ $skip = 0 ] || echo ", $skip skipped")"
	[ $fail = 0 ]
	exit
}
# add_counts FILE: take the `N passed, N failed[, N skipped]` last line of a sub-run.
add_counts() {
	local last
	last=$(tail -1 "$1")
	if [[ $last =~ ^([0-9]+)\ passed,\ ([0-9]+)\ failed(,\ ([0-9]+)\ skipped)?$ ]]; then
		pass=$((pass + BASH_REMATCH[1])) fail=$((fail + BASH_REMATCH[2])) skip=$((skip + ${BASH_REMATCH[4]:-0}))
		return 0
	fi
	res fail "$2: no result line (see $1)"
}

xr_step "check 1/10: setup"
bash "$XR_TOP/tooling/setup.sh" || { res fail "setup"; finish; }

xr_step "check 2/10: build"
if bash "$XR_TOP/tooling/build.sh"; then res pass "kernel build (bzImage, vmlinux, modules)"; else
	res fail "kernel build (log: $XR_LOGS/build.log)"; finish; fi

xr_step "check 3/10: the reference kernel: the same with the Xen core pieces in C"
while read -r st msg; do res "$st" "$msg"; done < <(bash "$XR_TOP/tooling/build-reference.sh")

xr_step "check 4/10: lint"
if [ -s "$XR_LOGS/lint-status" ]; then
	while read -r st msg; do res "$st" "$msg"; done <"$XR_LOGS/lint-status"
else
	res fail "lint: no clippy/rustdoc status from the build"
fi
mapfile -t rsfiles < <(grep '\.rs$' "$XR_SRC/.xr-managed")
if (cd "$XR_SRC" && /usr/bin/rustfmt --check --color never --edition 2021 --config-path .rustfmt.toml "${rsfiles[@]}") \
	>"$XR_LOGS/rustfmt.txt" 2>&1; then
	res pass "rustfmt: ${#rsfiles[@]} Rust files of ours are formatted"
else
	res fail "rustfmt: unformatted Rust code (see $XR_LOGS/rustfmt.txt)"; head -20 "$XR_LOGS/rustfmt.txt"
fi

xr_step "check 5/10: patch series"
if python3 "$XR_TOP/tooling/tree.py" export "$XR_TOP/out/series" >"$XR_LOGS/series.log" 2>&1; then
	res pass "series: every overlay file and patch is in the exported series ($(ls "$XR_TOP"/out/series/*.patch | wc -l) patches)"
	if python3 "$XR_TOP/tooling/tree.py" verify "$XR_TOP/out/series" >>"$XR_LOGS/series.log" 2>&1; then
		res pass "series: git am onto pristine Linux reproduces the built tree"
	else
		res fail "series: does not apply to pristine Linux (see $XR_LOGS/series.log)"; tail -5 "$XR_LOGS/series.log"
	fi
else
	res fail "series: export failed (see $XR_LOGS/series.log)"; tail -5 "$XR_LOGS/series.log"
fi

xr_step "check 6/10: build gates (Rust without Xen; a domU-only kernel)"
while read -r st msg; do res "$st" "$msg"; done < <(bash "$XR_TOP/tooling/gates.sh")

xr_step "check 7/10: harness self-tests (failures must be caught)"
python3 "$XR_TOP/tools/testing/xen/xen-test.py" self-test 2>&1 | tee "$XR_LOGS/self-test.log" | sed '$d'
add_counts "$XR_LOGS/self-test.log" "harness self-tests"

# `make check-full` (XR_FULL=1): the kselftests' repeated cycles in full; see README.md.
full=()
[ "${XR_FULL:-0}" = 1 ] && full=(--full)
xr_step "check 8/10: Xen 4.17 + dom0 + domU under QEMU TCG, on the Rust cores${full:+ (full cycles)}"
python3 "$XR_TOP/tools/testing/xen/xen-test.py" run "${full[@]}" --obj "$XR_OBJ" --xen "$XR_XEN/xen" \
	--xen-root "$XR_XEN/root" --logs "$XR_LOGS" --expect-suite rust_xen_domain \
	--expect-suite rust_xen_ring --expect-suite rust_xen_events --expect-suite rust_xen_grant_table \
	--expect-suite rust_xen_xenstore \
	--expect-suite rust_xen_gnttab_core --expect-suite rust_xen_gnttab_misuse --expect-suite rust_xen_evtchn_abi \
	--expect-suite rust_xen_xenbus_frontend --expect-suite rust_xen_xenbus_backend \
	--expect-suite rust_xen_xenbus_device --expect-suite rust_xen_events_lateeoi --expect-suite rust_xen_events_map --expect-suite rust_xen_events_api --expect-suite rust_xen_events_affinity --expect-suite rust_xen_events_irqinfo --expect-suite rust_xen_events_bind --expect-suite rust_xen_events_virq_ipi --expect-suite rust_xen_events_pirq --expect-suite rust_xen_events_resume --expect-suite rust_kernel_irq_chip \
	--expect-kselftest xen_demo --expect-kselftest xen_pv 2>&1 |
	tee "$XR_LOGS/xen-test.log" | sed '$d'
add_counts "$XR_LOGS/xen-test.log" "Xen run"

# The Rust event channel ABIs in the other domains: the run above has FIFO in dom0 and 2-level in
# the domU; this one the other way round, so that each ABI runs the whole suite in both domains.
xr_step "check 9/10: the same with the event channel ABIs swapped (2-level in dom0, FIFO in the domU)${full:+ (full cycles)}"
python3 "$XR_TOP/tools/testing/xen/xen-test.py" run "${full[@]}" --swap-abis --obj "$XR_OBJ" --xen "$XR_XEN/xen" \
	--xen-root "$XR_XEN/root" --logs "$XR_LOGS/swapped" --expect-suite rust_xen_domain \
	--expect-suite rust_xen_ring --expect-suite rust_xen_events --expect-suite rust_xen_grant_table \
	--expect-suite rust_xen_xenstore \
	--expect-suite rust_xen_gnttab_core --expect-suite rust_xen_gnttab_misuse --expect-suite rust_xen_evtchn_abi \
	--expect-suite rust_xen_xenbus_frontend --expect-suite rust_xen_xenbus_backend \
	--expect-suite rust_xen_xenbus_device --expect-suite rust_xen_events_lateeoi --expect-suite rust_xen_events_map --expect-suite rust_xen_events_api --expect-suite rust_xen_events_affinity --expect-suite rust_xen_events_irqinfo --expect-suite rust_xen_events_bind --expect-suite rust_xen_events_virq_ipi --expect-suite rust_xen_events_pirq --expect-suite rust_xen_events_resume --expect-suite rust_kernel_irq_chip \
	--expect-kselftest xen_demo --expect-kselftest xen_pv 2>&1 |
	sed -u -E 's/^( *)(PASS|FAIL|SKIP) /\1\2 [ABIs swapped] /' | tee "$XR_LOGS/xen-test-swapped.log" | sed '$d'
add_counts "$XR_LOGS/xen-test-swapped.log" "Xen run with the ABIs swapped"

# The same run on the reference kernel (the Xen core pieces in C, as upstream): every test must pass
# on it too, so that a failure above is the Rust cores' and not the test's. Its results are marked.
xr_step "check 10/10: the same on the reference kernel (Xen core pieces in C)${full:+ (full cycles)}"
if [ -f "$XR_CACHE/obj-c/vmlinux" ]; then
	python3 "$XR_TOP/tools/testing/xen/xen-test.py" run "${full[@]}" --obj "$XR_CACHE/obj-c" --xen "$XR_XEN/xen" \
		--xen-root "$XR_XEN/root" --logs "$XR_LOGS/reference" --expect-suite rust_xen_domain \
		--expect-suite rust_xen_ring --expect-suite rust_xen_events --expect-suite rust_xen_grant_table \
		--expect-suite rust_xen_xenstore --expect-suite rust_xen_gnttab_core --expect-suite rust_kernel_irq_chip \
		--expect-kselftest xen_demo --expect-kselftest xen_pv 2>&1 |
		sed -u -E 's/^( *)(PASS|FAIL|SKIP) /\1\2 [C core] /' | tee "$XR_LOGS/xen-test-reference.log" | sed '$d'
	add_counts "$XR_LOGS/xen-test-reference.log" "Xen run on the reference kernel"
else
	res fail "Xen run on the reference kernel: it was not built"
fi
finish

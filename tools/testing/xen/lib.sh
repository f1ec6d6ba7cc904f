# SPDX-License-Identifier: GPL-2.0
# Helpers for the dom0 and domU init scripts (busybox sh).

uptime_s() { cut -d. -f1 /proc/uptime; }
log() { echo "XR-LOG [$(cut -d' ' -f1 /proc/uptime)] $*"; }
stage() { echo "XR-STAGE $1"; }
fatal() { echo "XR-FATAL $*"; poweroff -f; }

# wait_for SECONDS WHAT CMD...: poll CMD once a second until it succeeds or the deadline passes.
wait_for() {
	local secs=$1 what=$2 i=0
	shift 2
	while ! "$@" >/dev/null 2>&1; do
		i=$((i + 1))
		[ $i -ge "$secs" ] && { log "gave up waiting for $what after ${secs}s"; return 1; }
		sleep 1
	done
	return 0
}

# Test bookkeeping: each test prints one TAP line. `t NAME CMD...` passes when CMD succeeds; its output
# is shown as diagnostics when it fails.
XR_N=0
XR_FAILED=0
t() {
	local name=$1 out
	shift
	XR_N=$((XR_N + 1))
	if out=$("$@" 2>&1); then
		echo "ok $XR_N $name"
	else
		echo "not ok $XR_N $name"
		printf '%s\n' "$out" >/tmp/xr-diag
		sed 's/^/# /' /tmp/xr-diag
		XR_FAILED=$((XR_FAILED + 1))
	fi
}

# run_tests DOMAIN FUNCTION: run FUNCTION (which calls t for each test) inside TAP markers. The plan is
# printed at the end, so a run that dies half-way has no plan and is reported as truncated.
run_tests() {
	echo "XR-TAP-BEGIN $1"
	echo "TAP version 13"
	"$2"
	echo "1..$XR_N"
	echo "XR-TAP-END $1 failed=$XR_FAILED"
}

# Checks shared by both domains.
has_line() { grep -q "$2" "$1"; }
module_loaded() { grep -q "^$1 " /proc/modules; }
module_gone() { ! grep -q "^$1 " /proc/modules; }
# No pipelines: busybox-static pipes have been seen to crash here (a reader that exits early).
dmesg_has() { dmesg >/tmp/dmesg.txt && grep -q "$1" /tmp/dmesg.txt; }

# bed_checkers: the test bed's claim, in each domain, that the checkers are on (a report from any of
# them fails the run, so a kernel that lost one would pass silently).
bed_checkers() {
	t "test bed: lockdep is on" test -e /proc/lockdep_stats
	t "test bed: SLUB debugging is on for kmalloc (slab_debug=)" has_line /sys/kernel/slab/kmalloc-64/poison '^1$'
	t "test bed: KFENCE is on" test -d /sys/kernel/debug/kfence
}
# has_alias MODULE ALIAS: the module's .modinfo lists ALIAS (what udev and modprobe autoload by).
# Not busybox modinfo: it wants a modules.dep, which the initramfs has not.
has_alias() { grep -q "alias=$2" "/lib/modules/xr/$1.ko"; }
dmesg_lacks() { dmesg >/tmp/dmesg.txt && ! grep -q "$1" /tmp/dmesg.txt; }

# kunit_module MODULE SUITE: load a KUnit test module (its suite runs at load), print the suite's
# KTAP from debugfs between markers for the host, and unload it.
kunit_module() {
	echo "XR-KUNIT-BEGIN $2"
	if insmod "/lib/modules/xr/$1.ko"; then
		cat "/sys/kernel/debug/kunit/$2/results"
		rmmod "$1"
	fi
	echo "XR-KUNIT-END $2"
}

# gnttab_kunit: the grant table core's KUnit modules. The API suite tests whichever core is built;
# with the Rust core (XEN_GRANT_TABLE_RUST) the misuse suite follows, each of whose refused misuses
# prints a WARNING on purpose: inside an XR-SPLAT block, where the host expects them.
gnttab_kunit() {
	kunit_module xen_gnttab_kunit rust_xen_gnttab_core
	[ -e /lib/modules/xr/xen_gnttab_misuse_kunit.ko ] || return 0
	echo "XR-SPLAT-BEGIN gnttab-misuse:WARNING" >/dev/kmsg
	kunit_module xen_gnttab_misuse_kunit rust_xen_gnttab_misuse
	echo "XR-SPLAT-END gnttab-misuse" >/dev/kmsg
}

# ksft_wanted NAME: the host asked for kselftest NAME (XR_KSFT in /etc/xr/params).
ksft_wanted() { case " $XR_KSFT " in *" $1 "*) return 0 ;; esac; return 1; }

# kfence_note: KFENCE's pool figures, as XR-SPLAT-NOTE lines in the kernel log (the host puts them
# in the failure when a provoked KFENCE report does not come).
kfence_note() {
	local line
	[ -r /sys/kernel/debug/kfence/stats ] || return 0
	while read -r line; do
		case $line in
		"currently allocated"* | "skipped allocations (capacity)"*) echo "XR-SPLAT-NOTE kfence $line" >/dev/kmsg ;;
		esac
	done </sys/kernel/debug/kfence/stats
}

# provoke CRASHTYPE TEXT: make lkdtm provoke CRASHTYPE between XR-SPLAT markers written to the
# kernel log (so that they stay in order with the report on the console); the host checks that a
# report with TEXT is inside them.
provoke() {
	local kfence=/sys/module/kfence/parameters/sample_interval interval=
	[ -e /sys/kernel/debug/provoke-crash/DIRECT ] || insmod /lib/modules/xr/lkdtm.ko || return
	# A SLUB report is wanted: KFENCE must not take the allocation (it did once and reported an
	# "invalid free" instead). 0 stops its sampling; the old interval restarts it.
	case $2 in "BUG lkdtm-heap"*) [ -w $kfence ] && interval=$(cat $kfence) && echo 0 >$kfence ;; esac
	echo "XR-SPLAT-BEGIN lkdtm-$1:$2" >/dev/kmsg
	# KFENCE's pool at the attempt: a full pool is why lkdtm would never get an object.
	case $1 in KFENCE*) kfence_note ;; esac
	echo "$1" >/sys/kernel/debug/provoke-crash/DIRECT
	echo "XR-SPLAT-END lkdtm-$1" >/dev/kmsg
	[ -n "$interval" ] && echo "$interval" >$kfence
	return 0
}

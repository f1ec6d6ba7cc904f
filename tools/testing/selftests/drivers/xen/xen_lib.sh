# SPDX-License-Identifier: GPL-2.0
#
# Shared by the Xen kselftests of this directory (sourced): KTAP output, waits under deadlines,
# xenstore and /proc readers, module load/unload, and the barriers at which the instance in dom0 and
# the instance in the frontend domain meet. The sourcing script sets ROLE (dom0 or domU; DOMU in
# dom0) and calls take_role, which sets PEER (the other one); it sets SYNC (the xenstore directory of
# the barriers) and SYNC_TIMEOUT, and may set KSFT_NAME (the name of its temporary files).

KSFT_PASS=0
KSFT_FAIL=1
KSFT_SKIP=4

# --- Roles --------------------------------------------------------------------------------------

# take_role: skip the whole test unless it runs on Xen, with the xenstore tools, in the kind of
# domain ROLE names: dom0 (the script was given --domu DOMU; or "setup", dom0 before the frontend
# domain exists) or a frontend domain (domU). Sets PEER, and in dom0 ATTACH (the demo's attach tool).
take_role() {
	[ -r /sys/hypervisor/type ] && [ "$(cat /sys/hypervisor/type)" = xen ] || skip_all "not running on Xen"
	command -v xenstore-read >/dev/null 2>&1 || skip_all "the xenstore tools are missing"
	if [ "$ROLE" = setup ]; then
		grep -q control_d /proc/xen/capabilities 2>/dev/null || skip_all "--setup is for dom0"
	elif [ "$ROLE" = dom0 ]; then
		grep -q control_d /proc/xen/capabilities 2>/dev/null || skip_all "--domu is for dom0"
		[ -n "$DOMU" ] || skip_all "--domu needs a domain id"
		ATTACH=${XEN_DEMO_ATTACH:-$(command -v xen-demo-attach || echo "$DIR/../../../../xen/xen-demo-attach")}
		[ -x "$ATTACH" ] || skip_all "xen-demo-attach not found"
		PEER=domU
	else
		! grep -q control_d /proc/xen/capabilities 2>/dev/null || skip_all "in dom0, run with --domu DOMID"
		[ -r $GRANTS ] || skip_all "$GRANTS is missing (no debugfs?)"
		PEER=dom0
	fi
}

# --- KTAP ---------------------------------------------------------------------------------------

n=0
failed=0
tmp=/tmp/${KSFT_NAME:-xen_ksft}.$$

pass() {
	n=$((n + 1))
	echo "ok $n $*"
}

fail() {
	n=$((n + 1))
	failed=$((failed + 1))
	echo "not ok $n $*"
}

# check DESCRIPTION CMD...: one test; the command's output becomes diagnostics if it fails. Its
# status is the test's, so that `check ... && publish` and `check ... || diagnose` do what they say.
check() {
	desc=$1
	shift
	if "$@" >"$tmp" 2>&1; then
		pass "$desc"
	else
		fail "$desc"
		sed 's/^/# /' "$tmp"
		return 1
	fi
}

finish() {
	rm -f "$tmp" "$tmp".*
	echo "1..$n"
	echo "# Totals: pass:$((n - failed)) fail:$failed xfail:0 xpass:0 skip:0 error:0"
	[ "$failed" -eq 0 ] && exit $KSFT_PASS
	exit $KSFT_FAIL
}

bail() {
	echo "Bail out! $*"
	finish
}

skip_all() {
	echo "TAP version 13"
	echo "1..0 # SKIP $*"
	exit $KSFT_SKIP
}

# --- Helpers ------------------------------------------------------------------------------------

now() { cut -d. -f1 /proc/uptime; }

# wait_until SECONDS WHAT CMD...: poll CMD until it succeeds; fail naming WHAT after SECONDS.
# Polls come quickly at first and then once a second, so that a long wait (the other domain at a
# barrier) does not take the CPUs the domains share away from the work it waits for.
wait_until() {
	local secs=$1 what=$2 end tries=0
	shift 2
	end=$(($(now) + secs))
	until "$@" >"$tmp.wait" 2>&1; do
		if [ "$(now)" -ge "$end" ]; then
			echo "timed out after ${secs}s waiting for $what"
			# What the last try said, e.g. "1040 grant references in use, want 1031".
			cat "$tmp.wait"
			return 1
		fi
		tries=$((tries + 1))
		if [ $tries -le 10 ]; then
			sleep 0.1
		elif [ $tries -le 20 ]; then
			sleep 0.3
		else
			sleep 1
		fi
	done
}

xs_read() { xenstore-read "$1" 2>/dev/null; }
state_is() { [ "$(xs_read "$1/state")" = "$2" ]; }
# publish KEY VALUE / peer_value KEY: values handed between the domains, next to the barriers.
publish() { xenstore-write "$SYNC/val/$1" "$2"; }
peer_value() { xs_read "$SYNC/val/$1"; }

# stat_of FILE NAME: the value of a "name value" line.
stat_of() {
	local k v
	while read -r k v; do
		if [ "$k" = "$2" ]; then
			echo "$v"
			return 0
		fi
	done <"$1"
	echo "no $2 in $1"
	return 1
}

stat_is() {
	local v
	v=$(stat_of "$1" "$2") || return 1
	[ "$v" = "$3" ] || { echo "$2 is $v, want $3"; return 1; }
}

# Event channels bound to handlers in this domain (/proc/interrupts, the xen-dyn chip).
evtchns() {
	local c=0 line
	while read -r line; do
		case $line in *xen-dyn*) c=$((c + 1)) ;; esac
	done </proc/interrupts
	echo $c
}

evtchns_are() {
	local v
	v=$(evtchns)
	[ "$v" -eq "$1" ] || { echo "$v event channels bound, want $1"; return 1; }
}

GRANTS=/sys/kernel/debug/xen-grant-table/refs
# How long (s) xen-blkback keeps a persistent grant that is not used (0: for ever); dom0 only.
PGRANT_PARAM=/sys/module/xen_blkback/parameters/persistent_grant_unused_seconds
grants_are() {
	local v
	v=$(stat_of $GRANTS in_use) || return 1
	[ "$v" -eq "$1" ] || { echo "$v grant references in use, want $1"; return 1; }
}

# mod_load MODULE [PARAM=VALUE...]
mod_load() {
	local m=$1
	shift
	if [ -n "$MODDIR" ]; then
		insmod "$MODDIR/$m.ko" "$@"
	else
		modprobe "$m" "$@"
	fi
}

# mod_unload MODULE BUS DEVICE: a bound xenbus driver holds its module, so unbind the device first.
mod_unload() {
	if [ -e "/sys/bus/$2/drivers/$1/$3" ]; then
		echo "$3" >"/sys/bus/$2/drivers/$1/unbind" || return 1
	fi
	rmmod "$1"
}

mod_gone() { [ ! -d "/sys/module/$1" ]; }
refcnt() { cat "/sys/module/$1/refcnt"; }

refcnt_is() {
	local v
	v=$(refcnt "$1") || return 1
	[ "$v" -eq "$2" ] || { echo "$1 refcnt is $v, want $2"; return 1; }
}

# --- Barriers -----------------------------------------------------------------------------------

step=0

peer_at() {
	local v
	v=$(xs_read "$SYNC/$PEER") || return 1
	[ "${v%% *}" -ge "$1" ] 2>/dev/null
}

# mine_and_peer_at STEP NAME: our key says STEP NAME (written again if it went away: a restored
# domain starts with an empty data/ directory), and the other domain is at STEP or beyond.
mine_and_peer_at() {
	[ "$(xs_read "$SYNC/$ROLE")" = "$1 $2" ] || xenstore-write "$SYNC/$ROLE" "$1 $2" || return 1
	peer_at "$1"
}

# wait_watched SECONDS WHAT PATH CMD...: as wait_until, but between tries block until xenstore PATH
# changes (or 5 s pass: a change just before the watch is set costs at most that), so that the
# wait takes no CPU time from the other domain. For the bench, which measures that other domain.
wait_watched() {
	local secs=$1 what=$2 path=$3 end left
	shift 3
	end=$(($(now) + secs))
	until "$@" >"$tmp.wait" 2>&1; do
		left=$((end - $(now)))
		if [ $left -le 0 ]; then
			echo "timed out after ${secs}s waiting for $what"
			cat "$tmp.wait"
			return 1
		fi
		[ $left -gt 5 ] && left=5
		# The first event is the watch being set, the second a change.
		timeout $left xenstore-watch -n 2 "$path" >/dev/null 2>&1 || :
	done
	return 0
}

# barrier_wait WHAT CMD...: wait_watched on the other domain's key with QUIET_BARRIERS=1, else
# wait_until; bail out if the wait runs out.
barrier_wait() {
	local what=$1
	shift
	if [ "${QUIET_BARRIERS:-0}" = 1 ]; then
		wait_watched "$SYNC_TIMEOUT" "$what" "$SYNC/$PEER" "$@" >"$tmp" || bail "$(cat "$tmp")"
	else
		wait_until "$SYNC_TIMEOUT" "$what" "$@" >"$tmp" || bail "$(cat "$tmp")"
	fi
}

# barrier_agree NAME: the other domain is at our step under the same name, or already beyond.
barrier_agree() {
	v=$(xs_read "$SYNC/$PEER")
	[ "${v%% *}" -ne $step ] || [ "${v#* }" = "$1" ] ||
		bail "the two domains disagree on step $step: '$1' here, '${v#* }' in the $PEER ($SYNC)"
}

# barrier NAME: wait for the other domain to reach the same step. With QUIET_BARRIERS=1 the wait
# is for a xenstore watch instead of a poll (wait_watched).
#
# A dom0 that meets several frontend domains at once (the bench's side by side) sets SYNCS to
# their barrier directories. It then writes its step only when every one of them has reached it,
# so that a frontend domain that passes the barrier knows that all the others are there too.
barrier() {
	local s0=$SYNC
	step=$((step + 1))
	if [ -z "${SYNCS:-}" ]; then
		xenstore-write "$SYNC/$ROLE" "$step $1" || bail "cannot write $SYNC/$ROLE"
		barrier_wait "the $PEER at step $step ($1)" mine_and_peer_at $step "$1"
		barrier_agree "$1"
		return
	fi
	for SYNC in $SYNCS; do
		barrier_wait "the $PEER at step $step ($1), in $SYNC" peer_at $step
		barrier_agree "$1"
	done
	for SYNC in $SYNCS; do
		xenstore-write "$SYNC/$ROLE" "$step $1" || bail "cannot write $SYNC/$ROLE"
	done
	SYNC=$s0
}

on() { [ $ROLE = "$1" ]; }

# handshake: dom0 clears what an earlier run left and says hello; the domU answers once it has seen
# that hello, so neither side can take a stale key for a step of this run.
# dom0 waits for the domU's hello before it moves on, so the domU sees exactly "0 hello"; the domU
# moves on at once, so dom0 accepts any key of the domU's (it removed the old ones itself).
hello_from() { [ "$(xs_read "$SYNC/$1")" = "0 hello" ]; }
domU_answered() { xs_read "$SYNC/domU" >/dev/null; }
handshake() {
	if on domU; then
		xenstore-rm "$SYNC/$ROLE" 2>/dev/null
		wait_until "$SYNC_TIMEOUT" "dom0's hello" hello_from dom0 >"$tmp" || bail "$(cat "$tmp")"
		xenstore-write "$SYNC/$ROLE" "0 hello" || bail "cannot write $SYNC/$ROLE"
	else
		local s0=$SYNC
		for SYNC in ${SYNCS:-$s0}; do
			xenstore-rm "$SYNC" 2>/dev/null
			xenstore-write "$SYNC/$ROLE" "0 hello" || bail "cannot write $SYNC/$ROLE"
		done
		for SYNC in ${SYNCS:-$s0}; do
			wait_until "$SYNC_TIMEOUT" "the domU's hello ($SYNC)" domU_answered >"$tmp" ||
				bail "$(cat "$tmp")"
		done
		SYNC=$s0
	fi
}

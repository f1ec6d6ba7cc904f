#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Kselftest for the stock Linux Xen PV drivers and Xen's own tools, as a test of the Xen core they
# run on (grant table, event channels, xenbus and xenstore): xen-blkfront on xen-blkback,
# xen-netfront on xen-netback, test-xenstore, vchan-socket-proxy (gntalloc, gntdev and evtchn from
# user space), depriv-fd-checker and test-resource; then save/restore of the frontend domain with a
# disk, a network link and a demo device in use; and a frontend flooding requests on one vCPU while
# its device goes away on the other; a guest flooding its dom0 backend with notifications that
# carry no request (XSA-332: dom0's device counts them spurious, the event core delays their EOIs,
# dom0 stays responsive); an event channel storm from each domain to the other
# (xen_evtchn_storm.c); and hostile xenstore entries against both xenbus buses.
#
# Run it in dom0 before the frontend domain exists, to load the backends and fill their disks, and
# add the disk and network lines to the domain's xl config:
#
#   dom0:  xen_pv.sh --setup XL-CONFIG
#
# and then at the same time in dom0 and in the frontend domain (created from XL-CONFIG):
#
#   dom0:  xen_pv.sh --domu DOMID
#   domU:  xen_pv.sh
#
# The two instances meet at barriers in the frontend domain's xenstore directory
# data/xen-pv-test, as xen_demo.sh does. Save/restore gives the domain a new id: dom0 follows it,
# and writes the new id to XEN_PV_DOMID_FILE for whoever else is watching the domain.
#
# Environment:
#   XEN_PV_MODDIR       directory holding the .ko files (default: modprobe by name)
#   XEN_PV_TIMEOUT      seconds the other domain may take to reach a barrier (default 300)
#   XEN_PV_SAVE_CYCLES  save/restore cycles (default 3)
#   XEN_PV_RACE_CYCLES  flood-and-remove cycles per frontend and way of removing (default 3)
#   XEN_PV_STORM_SECONDS how long each domain takes the other's event channel storm (default 6)
#   XEN_PV_XENBUS_MANY  devices dom0 writes at once into each bus's tree (default 1000)
#   XEN_PV_XENBUS       Rust or C: the xenbus buses the kernel runs, whose answers to hostile
#                       entries differ (default: Rust if the kernel log says so)
#   XEN_PV_PURGE_GAP    idle seconds before each I/O of the persistent grant purge step
#                       (default 13; see blk_purge)
#   XEN_PV_DOMID_FILE   where dom0 writes the domain's id after each restore, and "saving" while
#                       the domain is saved and not yet restored (default none)
#   XEN_DEMO_ATTACH     the demo attach tool (default: xen-demo-attach in PATH, then tools/xen/)

set -u
DIR=$(dirname "$0")
MODDIR=${XEN_PV_MODDIR:-}
SYNC_TIMEOUT=${XEN_PV_TIMEOUT:-300}
SAVE_CYCLES=${XEN_PV_SAVE_CYCLES:-3}
RACE_CYCLES=${XEN_PV_RACE_CYCLES:-3}
STORM_S=${XEN_PV_STORM_SECONDS:-6}
XB_MANY=${XEN_PV_XENBUS_MANY:-1000}
XENBUS=${XEN_PV_XENBUS:-}
DOMID_FILE=${XEN_PV_DOMID_FILE:-}
KSFT_NAME=xen_pv
. "$DIR/xen_lib.sh"

# The disks: brd ramdisks in dom0, 8 MiB each. xvda (51712) is in the xl config, xvdb (51728) is
# hot-plugged with xl block-attach.
RAM_MB=8
XVDA=51712
XVDB=51728
HOTPLUG=/etc/xen/scripts
NET_MB=4
VCHAN_KB=1024
DOM0_IP=10.0.0.1
DOMU_IP=10.0.0.2
FRONTS="rust_xen_demo_front xen_demo_front"
BACKS="rust_xen_demo_back xen_demo_back"
TOOLS=/usr/lib/xen-4.17/bin

ROLE=domU
DOMU=
case ${1:-} in
--setup)
	ROLE=setup
	CFG=${2:-}
	;;
--domu) ROLE=dom0 DOMU=${2:-} ;;
'') ;;
*) skip_all "unknown argument $1" ;;
esac
take_role
[ -d $TOOLS ] && PATH=$PATH:$TOOLS

sha() { sha256sum "$1" >"$tmp.sha" && read -r s _ <"$tmp.sha" && echo "$s"; }
size_is() { [ "$(blockdev --getsize64 "$1")" -eq "$2" ] || { echo "$1 has $(blockdev --getsize64 "$1") bytes, want $2"; return 1; }; }
sha_is() {
	local got
	got=$(sha "$1") || return 1
	[ "$got" = "$2" ] || { echo "sha256 of $1 is $got, want $2"; return 1; }
}
# log_has TEXT: the kernel log has a line with TEXT (no pipelines: busybox-static pipes have been
# seen to crash here).
log_has() { dmesg >"$tmp.dmesg" && grep -q "$1" "$tmp.dmesg"; }
# random FILE KIB: a file of random bytes.
random() { dd if=/dev/urandom of="$1" bs=1k count="$2" 2>/dev/null; }

# --- Setup (dom0, before the frontend domain exists) ---------------------------------------------

if [ $ROLE = setup ]; then
	echo "TAP version 13"
	[ -n "$CFG" ] && [ -w "$CFG" ] || bail "--setup needs a writable xl config"
	check "setup: load brd (2 ramdisks of $RAM_MB MiB)" mod_load brd rd_nr=2 rd_size=$((RAM_MB * 1024))
	for r in 0 1; do
		check "setup: fill /dev/ram$r with random data" \
			dd if=/dev/urandom of=/dev/ram$r bs=1M count=$RAM_MB conv=fsync
	done
	check "setup: load xen-blkback" mod_load xen-blkback
	check "setup: load xen-netback" mod_load xen-netback
	check "setup: hotplug scripts are in $HOTPLUG" test -x $HOTPLUG/xr-block -a -x $HOTPLUG/xr-vif
	cat >>"$CFG" <<EOF
disk = [ 'format=raw,vdev=xvda,access=rw,backendtype=phy,script=$HOTPLUG/xr-block,target=/dev/ram0' ]
vif = [ 'mac=00:16:3e:00:00:02,script=$HOTPLUG/xr-vif' ]
EOF
	finish
fi

# --- Roles --------------------------------------------------------------------------------------

if [ $ROLE = dom0 ]; then
	SYNC=/local/domain/$DOMU/data/xen-pv-test
else
	# Relative to our xenstore home, which moves with our domain id on restore.
	SYNC=data/xen-pv-test
fi
DEMO_FE=device/demo/0
demo_be() { echo "/local/domain/0/backend/demo/$DOMU/0"; }

# domid_of NAME: the id of the domain called NAME, from xenstore (`xl domid` fails now and then).
domid_of() {
	local d
	for d in $(xenstore-list /local/domain 2>/dev/null); do
		[ "$(xs_read "/local/domain/$d/name")" = "$1" ] && { echo "$d"; return 0; }
	done
	return 1
}

# --- Block: xen-blkfront (domU) on xen-blkback (dom0) ------------------------------------------

blk_boot_disk() {
	if on dom0; then
		check "blk: backend of xvda created by xl" test -n "$(xs_read /local/domain/0/backend/vbd/$DOMU/$XVDA/physical-device)"
		publish ram0 "$(sha /dev/ram0)"
	fi
	barrier "boot disk"
	if on domU; then
		check "blk: load xen-blkfront" mod_load xen-blkfront
		check "blk: /dev/xvda appears" wait_until 60 "/dev/xvda" test -b /dev/xvda
		check "blk: xvda has $RAM_MB MiB" size_is /dev/xvda $((RAM_MB << 20))
		check "blk: xvda reads what dom0 put on its ramdisk" sha_is /dev/xvda "$(peer_value ram0)"
		random /tmp/pat $((RAM_MB * 1024))
		check "blk: write $RAM_MB MiB to xvda (fsync)" dd if=/tmp/pat of=/dev/xvda bs=1M conv=fsync
		check "blk: flush xvda's page cache" blockdev --flushbufs /dev/xvda
		check "blk: xvda reads back what was written" sha_is /dev/xvda "$(sha /tmp/pat)"
		check "blk: O_DIRECT read matches" sh -c "dd if=/dev/xvda of=/tmp/back bs=64k iflag=direct 2>/dev/null && cmp /tmp/pat /tmp/back"
		random /tmp/pat $((RAM_MB * 1024))
		check "blk: O_DIRECT write of a second pattern" dd if=/tmp/pat of=/dev/xvda bs=64k oflag=direct
		check "blk: O_DIRECT read of the second pattern matches" \
			sh -c "dd if=/dev/xvda of=/tmp/back bs=64k iflag=direct 2>/dev/null && cmp /tmp/pat /tmp/back"
		PAT_SHA=$(sha /tmp/pat)
		publish xvda "$PAT_SHA"
		rm -f /tmp/back
	fi
	barrier "disk written"
	if on dom0; then
		check "blk: dom0 flushes its ramdisk's cache" blockdev --flushbufs /dev/ram0
		check "blk: dom0's ramdisk holds what the domU wrote" sha_is /dev/ram0 "$(peer_value xvda)"
		check "blk: blkback connected the vbd" log_has "xen-blkback: backend/vbd/$DOMU/$XVDA: using"
	fi
}

# blk_purge: blkback unmaps a persistent grant that stayed unused longer than
# persistent_grant_unused_seconds (1 s here; each ring's thread checks every 100 ms), blkfront
# ends the grants blkback no longer maps (every 10 s), and the next requests grant and map new
# ones: blkback's purge through gnttab_unmap_refs_sync and the page cache in dom0, end of access
# in the domU, then I/O that must match. Before each I/O the domU waits (up to 5 times the gap)
# until blkfront holds no grant but its rings' (xvda's ring-ref entries in xenstore): the disk is
# idle, so blkback purges every persistent grant and blkfront ends them all. Weaker conditions
# raced: a fixed gap of 13 s was too short once when the host was loaded (blkfront's work ran
# late); "fewer grants than before" never held when both purges had run before the count, and
# held too early when blkfront had ended older grants but not yet those of the last I/O (the
# next read then reused one, the case below). A gap shorter than blkfront's
# 10 s (XEN_PV_PURGE_GAP=2) sleeps that long and does not wait: the next request then may
# reuse a grant blkback purged, and Xen 4.17 refuses blkback's new map of it (GNTST_general_error
# on the indirect-descriptor page): an I/O error, with the C grant table in both domains as with
# the Rust one. That is an upstream problem, left out of the default run and noted in
# Documentation/rust/xen-core.rst.
PURGE_GAP=${XEN_PV_PURGE_GAP:-13}
no_grant_warning() {
	local w
	for w in "maptrack limit" "grant already in use" "eagain grant" "grant table operation"; do
		log_has "$w" && { echo "dom0 logged: $w"; return 1; }
	done
	return 0
}
# ring_grants: the grant references of xvda's rings (its ring-ref entries in xenstore), which
# blkfront holds while the disk is connected; the others it holds are persistent ones.
ring_grants() {
	xenstore-ls "/local/domain/$(xs_read domid)/device/vbd/$XVDA" 2>/dev/null |
		grep -c '^ *ring-ref[0-9]* = '
}
# purge_gap WHAT: the idle gap before WHAT: with XEN_PV_PURGE_GAP over 10 s, until blkfront holds
# no grant but its rings'; else a plain sleep.
purge_gap() {
	if [ "$PURGE_GAP" -gt 10 ]; then
		check "blk purge: blkfront ended the grants blkback purged, before $1" \
			wait_until $((PURGE_GAP * 5)) "the grants in use to fall to xvda's $RINGS ring grants" \
			grants_at_most $((G0 + RINGS))
	else
		sleep "$PURGE_GAP"
	fi
}
blk_purge() {
	if on dom0; then
		PGRANT_OLD=$(cat $PGRANT_PARAM)
		check "blk purge: persistent grants unused for 1 s are purged" sh -c "echo 1 >$PGRANT_PARAM"
	fi
	if on domU; then
		RINGS=$(ring_grants)
		check "blk purge: xvda's rings are in xenstore ($RINGS ring-ref entries)" test "$RINGS" -gt 0
	fi
	barrier "purge armed"
	if on domU; then
		purge_gap "the read"
		check "blk purge: O_DIRECT read after the purge matches" \
			sh -c "dd if=/dev/xvda of=/tmp/back bs=64k iflag=direct 2>/dev/null && cmp /tmp/pat /tmp/back"
		purge_gap "the write"
		check "blk purge: O_DIRECT write after the purge" dd if=/tmp/pat of=/dev/xvda bs=64k oflag=direct
		check "blk purge: ... reads back" \
			sh -c "dd if=/dev/xvda of=/tmp/back bs=64k iflag=direct 2>/dev/null && cmp /tmp/pat /tmp/back"
		rm -f /tmp/back
	fi
	barrier "purge done"
	if on dom0; then
		check "blk purge: default timeout back" sh -c "echo $PGRANT_OLD >$PGRANT_PARAM"
		check "blk purge: no grant warning in dom0's log" no_grant_warning
	fi
}

blk_hotplug() {
	if on dom0; then
		publish ram1 "$(sha /dev/ram1)"
		E1=$(evtchns)
		check "blk hotplug: xl block-attach xvdb" xl block-attach "$DOMU" \
			"format=raw,vdev=xvdb,access=rw,backendtype=phy,script=$HOTPLUG/xr-block,target=/dev/ram1"
	else
		G1=$(stat_of $GRANTS in_use)
		E1=$(evtchns)
	fi
	barrier "xvdb attached"
	if on domU; then
		check "blk hotplug: /dev/xvdb appears" wait_until 60 "/dev/xvdb" test -b /dev/xvdb
		check "blk hotplug: xvdb reads what dom0 put on its ramdisk" sha_is /dev/xvdb "$(peer_value ram1)"
		random /tmp/pat1 1024
		check "blk hotplug: O_DIRECT write to xvdb" dd if=/tmp/pat1 of=/dev/xvdb bs=64k oflag=direct
		check "blk hotplug: O_DIRECT read of xvdb matches" \
			sh -c "dd if=/dev/xvdb of=/tmp/back bs=64k count=16 iflag=direct 2>/dev/null && cmp /tmp/pat1 /tmp/back"
		publish xvdb "$(sha /tmp/pat1)"
		rm -f /tmp/pat1 /tmp/back
	fi
	barrier "xvdb written"
	if on dom0; then
		check "blk hotplug: dom0's ramdisk holds what the domU wrote" \
			sh -c "blockdev --flushbufs /dev/ram1 && dd if=/dev/ram1 of=/tmp/ram1 bs=64k count=16 2>/dev/null"
		check "blk hotplug: ... and it matches" sha_is /tmp/ram1 "$(peer_value xvdb)"
		rm -f /tmp/ram1
		check "blk hotplug: xl block-detach xvdb" xl block-detach "$DOMU" xvdb
		check "blk hotplug: the backend is gone" \
			wait_until 30 "the xvdb backend to go" sh -c "! xenstore-exists /local/domain/0/backend/vbd/$DOMU/$XVDB"
		check "blk hotplug: dom0's event channels back to baseline" wait_until 10 "$E1 event channels" evtchns_are "$E1"
	fi
	barrier "xvdb detached"
	if on domU; then
		check "blk hotplug: /dev/xvdb is gone" wait_until 30 "/dev/xvdb to go" sh -c '! test -e /sys/block/xvdb'
		# xvda's persistent grants may be purged meanwhile (blkfront frees idle ones), so the
		# count may fall below what it was before xvdb came, but never stay above it.
		check "blk hotplug: grant references not above the count before xvdb" \
			wait_until 10 "at most $G1 grants" grants_at_most "$G1"
		check "blk hotplug: event channels back to baseline" wait_until 10 "$E1 event channels" evtchns_are "$E1"
	fi
}

# --- Net: xen-netfront (domU) on xen-netback (dom0), a point-to-point vif -----------------------

# The link exists only between the two domains inside the emulated machine.
net_listen() {
	# busybox nc: the receiver must be `-e dd` (a plain `>file` receiver half-closes at once).
	nc -l -p "$1" -e dd of="$2" 2>/dev/null &
}

has_line() { grep -q "$2" "$1"; }

grants_at_most() {
	local v
	v=$(stat_of $GRANTS in_use) || return 1
	[ "$v" -le "$1" ] || { echo "$v grant references in use, want at most $1"; return 1; }
}

# What the network looks like, as diagnostics after a failure.
net_diag() {
	for f in "ip addr" "ip route" "ip neigh" "cat /proc/net/dev" "cat /proc/interrupts"; do
		$f >"$tmp.net" 2>&1
		sed "s|^|# $f: |" "$tmp.net"
	done
	echo "# vif states: frontend $(xs_read device/vif/0/state 2>/dev/null) backend $(xs_read "$(xs_read device/vif/0/backend)/state")"
}

net() {
	if on dom0; then
		check "net: the vif is up as $DOM0_IP" sh -c "ip addr show dev vif$DOMU.0 >$tmp.ip && grep -q 'inet $DOM0_IP/' $tmp.ip"
		random /tmp/net-tx $((NET_MB * 1024))
		publish net-tx "$(sha /tmp/net-tx)"
		rm -f /tmp/net-rx
		net_listen 5001 /tmp/net-rx
		RX_PID=$!
		nc -l -p 5002 -e cat /tmp/net-tx 2>/dev/null &
		TX_PID=$!
	fi
	barrier "net"
	if on domU; then
		check "net: load xen-netfront" mod_load xen-netfront
		check "net: eth0 appears" wait_until 60 eth0 test -e /sys/class/net/eth0
		check "net: the vif is Connected" wait_until 60 "device/vif/0 Connected" state_is device/vif/0 4
		check "net: eth0 up as $DOMU_IP" sh -c "ip link set eth0 up && ip addr add $DOMU_IP/24 dev eth0"
		check "net: eth0 has a carrier" wait_until 30 "eth0's carrier" has_line /sys/class/net/eth0/carrier '^1$'
		check "net: dom0 answers a ping" wait_until 30 "a ping reply" ping -c 1 -W 2 $DOM0_IP
		check "net: ping dom0" ping -c 3 -W 5 $DOM0_IP || net_diag
		random /tmp/ntx $((NET_MB * 1024))
		publish net-rx "$(sha /tmp/ntx)"
		check "net: TCP, $NET_MB MiB to dom0" timeout 120 nc $DOM0_IP 5001 </tmp/ntx
		check "net: TCP, $NET_MB MiB from dom0" sh -c "timeout 120 nc $DOM0_IP 5002 </dev/null >/tmp/nrx"
		check "net: what dom0 sent arrived intact" sha_is /tmp/nrx "$(peer_value net-tx)"
		rm -f /tmp/ntx /tmp/nrx
	fi
	barrier "net done"
	if on dom0; then
		check "net: dom0's receiver finished" wait_until 60 "nc on port 5001 to exit" sh -c "! kill -0 $RX_PID"
		check "net: what the domU sent arrived intact" sha_is /tmp/net-rx "$(peer_value net-rx)" || net_diag
		kill $TX_PID 2>/dev/null
		rm -f /tmp/net-rx /tmp/net-tx
	fi
}

# --- Xen's own tools as peers --------------------------------------------------------------------

vchan() {
	local path=/local/domain/0/xen-pv-test/vchan
	if on dom0; then
		xenstore-rm /local/domain/0/xen-pv-test 2>/dev/null
		rm -f /tmp/vin /tmp/vrx
		mkfifo /tmp/vin
		# The server shares the ring (gntalloc) and an unbound event channel; its input stays open
		# so that it does not close the link before the domU's data has arrived.
		vchan-socket-proxy -m server "$DOMU" $path - </tmp/vin >/tmp/vrx 2>/tmp/vchan.log &
		VS_PID=$!
		exec 5>/tmp/vin
		check "vchan: the server published its ring" wait_until 30 "$path/ring-ref" xenstore-exists $path/ring-ref
		# test-xenstore in the domU writes under its home, which is read-only to it.
		xenstore-write "/local/domain/$DOMU/xenstore-test" "" &&
			xenstore-chmod "/local/domain/$DOMU/xenstore-test" "n$DOMU"
	fi
	barrier "vchan server"
	if on domU; then
		random /tmp/vtx $VCHAN_KB
		publish vchan "$(sha /tmp/vtx)"
		rm -f /tmp/vout
		mkfifo /tmp/vout
		# The client maps the ring (gntdev) and binds the event channel (evtchn).
		vchan-socket-proxy -m client 0 $path - </tmp/vout >/dev/null 2>/tmp/vchan.log &
		VC_PID=$!
		exec 5>/tmp/vout
		check "vchan: send $VCHAN_KB KiB to dom0" sh -c 'cat /tmp/vtx >&5'
		check "vchan: dom0 received it intact" wait_until 60 "dom0's checksum" sh -c "[ -n \"\$(xenstore-read $SYNC/val/vchan-ok 2>/dev/null)\" ]"
		exec 5>&-
		check "vchan: the client exits" wait_until 30 "vchan-socket-proxy to exit" sh -c "! kill -0 $VC_PID"
		kill $VC_PID 2>/dev/null
		rm -f /tmp/vout /tmp/vtx
		check "test-xenstore through /dev/xen/xenbus" test-xenstore
	else
		want=$((VCHAN_KB * 1024))
		check "vchan: dom0 received $VCHAN_KB KiB" wait_until 60 "$want bytes in /tmp/vrx" \
			sh -c "[ \$(stat -c %s /tmp/vrx) -ge $want ]"
		check "vchan: intact" sha_is /tmp/vrx "$(peer_value vchan)" && publish vchan-ok 1
		exec 5>&-
		check "vchan: the server exits" wait_until 30 "vchan-socket-proxy to exit" sh -c "! kill -0 $VS_PID"
		kill $VS_PID 2>/dev/null
		rm -f /tmp/vin /tmp/vrx
		check "test-xenstore through xenstored's socket" test-xenstore
		check "test-xenstore through /dev/xen/xenbus" env XENSTORED_PATH=/dev/xen/xenbus test-xenstore
		check "depriv-fd-checker: gntalloc, gntdev grant copy, evtchn" \
			sh -c 'depriv-fd-checker gntdev 3 x evtchn 4 y 3<>/dev/xen/gntdev 4<>/dev/xen/evtchn'
		check "test-resource: map a new domain's grant table (privcmd)" test-resource
	fi
	barrier "tools done"
	on dom0 && xenstore-rm "/local/domain/$DOMU/xenstore-test" 2>/dev/null
}

# --- An event channel storm -----------------------------------------------------------------------

# storm VICTIM: the other domain floods a port of VICTIM's (dom0 or domU) from all its vCPUs through
# /dev/xen/evtchn, for STORM_S seconds of the victim's time. The victim takes each event and unmasks
# the port at once, and meanwhile must keep handling another port (a looped-back probe, sent every
# 50 ms, must come back, each within 5 s) and, with 2 vCPUs, must take the storm's interrupts on
# the CPU its IRQ's affinity names as it moves from CPU 0 to 1 and back. Event channels must come
# back to baseline in both domains. Each domain runs one ABI (FIFO in dom0, 2-level in the domU,
# or the other way round), so the two storms cover both.
storm() {
	local victim=$1 peer=0 e0 rc pid out=/tmp/storm.out
	on dom0 && peer=$DOMU
	e0=$(evtchns)
	rm -f $out
	if on "$victim"; then
		"$DIR/xen_evtchn_storm" listen $peer $STORM_S >$out 2>&1 &
		pid=$!
		check "storm on $victim: a port for the flooder" wait_until 30 "the storm port" grep -q '^port ' $out &&
			publish storm-port-$victim "$(sed -n 's/^port //p' $out)"
	fi
	barrier "storm port on $victim"
	if on "$victim"; then
		wait $pid
		rc=$?
		publish storm-done-$victim 1
		sed 's/^/# /' $out
		check "storm on $victim: events kept coming, a probe on another port always came back, and the IRQ followed its affinity" \
			sh -c "[ $rc = 0 ] || { cat $out; exit 1; }"
	else
		# Until the victim is done (it counts its time from its first event), at most 2 minutes.
		"$DIR/xen_evtchn_storm" flood $peer "$(peer_value storm-port-$victim)" 120 >$out 2>&1 &
		pid=$!
		wait_until 150 "the victim's end" sh -c "[ -n \"\$(xenstore-read $SYNC/val/storm-done-$victim 2>/dev/null)\" ]"
		kill -TERM $pid 2>/dev/null
		wait $pid
		rc=$?
		sed 's/^/# /' $out
		check "storm on $victim: $ROLE flooded its port from every vCPU until it was done" \
			sh -c "[ $rc = 0 ] && grep -q '^flood: [1-9]' $out || { cat $out; exit 1; }"
	fi
	barrier "storm on $victim over"
	check "storm on $victim: $ROLE's event channels back to baseline" wait_until 30 "$e0 event channels" evtchns_are "$e0"
}

# --- The demo pair: connect, exchange -------------------------------------------------------------

FE_DBG=/sys/kernel/debug/xen-demo.demo-0
demo_connected() { state_is "$DEMO_FE" 4 && [ "$(xs_read "$DEMO_FE/backend-id")" = 0 ] &&
	state_is "$(xs_read "$DEMO_FE/backend")" 4; }
# demo_send N B: N requests, B outstanding; all completed, none bad.
demo_send() {
	local c0 b0 c1 b1
	c0=$(stat_of $FE_DBG/stats completed) && b0=$(stat_of $FE_DBG/stats bad_responses) || return 1
	echo "$1 $2 0" >$FE_DBG/send || { echo "send '$1 $2' failed"; return 1; }
	c1=$(stat_of $FE_DBG/stats completed) && b1=$(stat_of $FE_DBG/stats bad_responses) || return 1
	[ $((c1 - c0)) -eq "$1" ] && [ "$b1" -eq "$b0" ] ||
		{ echo "completed $c0 -> $c1 (want +$1), bad $b0 -> $b1"; return 1; }
}

# demo_up P BARRIER: dom0 loads the Rust demo backend and attaches a demo device for the domU; after
# BARRIER, the domU loads the Rust demo frontend and waits for the device to connect. Checks are
# named "P: ...".
demo_up() {
	if on dom0; then
		check "$1: load rust_xen_demo_back" mod_load rust_xen_demo_back
		check "$1: attach a demo device" "$ATTACH" attach "$DOMU" 0
	fi
	barrier "$2"
	if on domU; then
		check "$1: load rust_xen_demo_front" mod_load rust_xen_demo_front
		check "$1: demo connected" wait_until 30 "the demo device Connected" demo_connected
	fi
}

# --- Save/restore: xl save and xl restore of the domU, with everything in use -------------------

save_restore() {
	local c=0 old
	demo_up "save/restore" "demo for save"
	if on domU; then
		check "save/restore: demo exchanges before saving" demo_send 100 8
		G1=$(stat_of $GRANTS in_use)
		E1=$(evtchns)
	fi
	while [ $c -lt "$SAVE_CYCLES" ]; do
		c=$((c + 1))
		barrier "save $c"
		if on dom0; then
			old=$DOMU
			[ -n "$DOMID_FILE" ] && echo saving >"$DOMID_FILE"
			check "save $c: xl save" xl save "$old" /run/xen-pv-save
			check "save $c: the saved domain is gone" \
				wait_until 30 "domain $old to go" sh -c "! xenstore-exists /local/domain/$old"
			# libxl removes the backends of the devices it knows; the demo device is ours.
			xenstore-rm "/local/domain/0/backend/demo/$old"
			check "save $c: xl restore (paused)" xl restore -p /run/xen-pv-save
			rm -f /run/xen-pv-save
			DOMU=$(domid_of domU) || DOMU=$old
			check "save $c: the domain has a new id ($old -> $DOMU)" test "$DOMU" != "$old"
			[ -n "$DOMID_FILE" ] && echo "$DOMU" >"$DOMID_FILE"
			SYNC=/local/domain/$DOMU/data/xen-pv-test
			# As a toolstack does, the demo device is back before the domain runs again.
			check "save $c: attach the demo device to the restored domain" "$ATTACH" attach "$DOMU" 0
			rm -f /tmp/net-rx
			net_listen 5003 /tmp/net-rx
			RX_PID=$!
			check "save $c: xl unpause" xl unpause "$DOMU"
		fi
		barrier "restored $c"
		if on domU; then
			check "restore $c: the demo device reconnects" wait_until 60 "the demo device Connected" demo_connected
			check "restore $c: demo exchanges again" demo_send 100 8
			check "restore $c: xvda still reads back the pattern" \
				sh -c "blockdev --flushbufs /dev/xvda && dd if=/dev/xvda of=/tmp/back bs=64k iflag=direct 2>/dev/null && cmp /tmp/pat /tmp/back"
			rm -f /tmp/back
			check "restore $c: ping dom0" ping -c 2 -W 5 $DOM0_IP
			random /tmp/ntx 1024
			publish net-rx "$(sha /tmp/ntx)"
			check "restore $c: TCP, 1 MiB to dom0" timeout 60 nc $DOM0_IP 5003 </tmp/ntx
			rm -f /tmp/ntx
			# blkfront and netfront grant their rings and buffers anew on resume, and blkfront
			# frees idle persistent grants on a timer, so the count moves; that nothing leaks is
			# checked exactly once the stock frontends are unloaded (back to the baseline).
			echo "# grant references in use: $G1 before saving, $(stat_of $GRANTS in_use) after restore $c"
			check "restore $c: event channels as before saving" wait_until 10 "$E1 event channels" evtchns_are "$E1"
		fi
		barrier "checked $c"
		if on dom0; then
			check "restore $c: dom0's receiver finished" wait_until 60 "nc on port 5003 to exit" sh -c "! kill -0 $RX_PID"
			check "restore $c: what the domU sent arrived intact" sha_is /tmp/net-rx "$(peer_value net-rx)"
			rm -f /tmp/net-rx
		fi
	done
	if on domU; then
		check "save/restore: unload rust_xen_demo_front" mod_unload rust_xen_demo_front xen demo-0
	fi
	barrier "demo unloaded"
	if on dom0; then
		check "save/restore: detach the demo device" "$ATTACH" detach "$DOMU" 0
		check "save/restore: unload rust_xen_demo_back" rmmod rust_xen_demo_back
	fi
}

# --- SMP: a frontend flooding requests on vCPU 0 while its device goes away ----------------------

short() {
	case $1 in
	rust_*) echo rust ;;
	*) echo c ;;
	esac
}

completed() { stat_of $FE_DBG/stats completed; }
flood_running() { [ "$(completed)" -gt $(($1 + 100)) ]; }

# race_cycle F HOW I: the domU floods the device from vCPU 0 (a million requests, 32 in flight)
# and, once the flood is under way, the device goes away: unbound from the frontend driver on
# vCPU 1 (HOW=unbind), or detached by dom0 (HOW=detach), the XSA-331 class of an event channel
# closed while its handler runs. The flood must end (done or failed, not hung); the checkers and
# the baselines checked after the cycles do the rest.
race_cycle() {
	local f=$1 how=$2 i=$3 p="race $(short "$1") $2 $3" c0
	on dom0 && { "$ATTACH" attach "$DOMU" 0 >"$tmp" || { fail "$p: attach"; sed 's/^/# /' "$tmp"; }; }
	barrier "$p"
	if on domU; then
		check "$p: connected" wait_until 30 "the demo device Connected" demo_connected
		c0=$(completed)
		taskset 1 sh -c "echo '1000000 32 0' >$FE_DBG/send" 2>/dev/null &
		FLOOD=$!
		check "$p: the flood is under way" wait_until 30 "100 requests completed" flood_running "$c0"
		if [ "$how" = unbind ]; then
			check "$p: unbind on vCPU 1" taskset 2 sh -c "echo demo-0 >/sys/bus/xen/drivers/$f/unbind"
		fi
		publish race "$p"
	fi
	if on dom0 && [ "$how" = detach ]; then
		wait_until 60 "the domU's flood" sh -c "[ \"\$(xenstore-read $SYNC/val/race 2>/dev/null)\" = '$p' ]"
		check "$p: detach while the domU floods" "$ATTACH" detach "$DOMU" 0
	fi
	barrier "$p removed"
	if on domU; then
		check "$p: the flood ended" wait_until 60 "the flooding writer to end" sh -c "! kill -0 $FLOOD"
		kill "$FLOOD" 2>/dev/null
	fi
	on dom0 && [ "$how" = unbind ] && "$ATTACH" detach "$DOMU" 0 >/dev/null
	barrier "$p done"
}

race() {
	local f b i how
	E2=$(evtchns)
	on domU && G2=$(stat_of $GRANTS in_use)
	for f in $FRONTS; do
		b=rust_xen_demo_back
		[ "$f" = xen_demo_front ] && b=xen_demo_back
		on dom0 && check "race $(short $f): load $b" mod_load $b
		on domU && check "race $(short $f): load $f" mod_load $f
		for how in unbind detach; do
			i=0
			while [ $i -lt "$RACE_CYCLES" ]; do
				i=$((i + 1))
				race_cycle $f $how $i
			done
		done
		if on domU; then
			check "race $(short $f): unload $f" rmmod $f
			check "race $(short $f): grant references at baseline" wait_until 10 "$G2 grants" grants_are "$G2"
			check "race $(short $f): event channels at baseline" wait_until 10 "$E2 event channels" evtchns_are "$E2"
		fi
		barrier "race $f unloaded"
		if on dom0; then
			check "race $(short $f): unload $b" rmmod $b
			check "race $(short $f): dom0 event channels at baseline" wait_until 10 "$E2 event channels" evtchns_are "$E2"
		fi
	done
}

# --- XSA-332: a guest flooding its backend with events that bring no work ------------------------

# guest_flood: the domU's Rust demo frontend notifies dom0's Rust demo backend for GFLOOD_MS
# without pushing a request (its debugfs `flood`, a hostile-peer aid), as a guest attacking its
# backend would. The backend finds no request and answers each event LateEoi::Spurious; the event
# core counts the events on the backend's xenbus device (xenbus/events, spurious_events) and
# delays their EOIs (jiffies_eoi_delayed), the channel staying masked meanwhile, so that the
# notifications coalesce. dom0 checks the counters, does a xenstore round trip during the flood,
# and the demo still answers requests after it; grants and event channels come back to baseline
# in both domains. It runs in every run, the C-reference one included: the Rust demo modules are
# built by xen-rust.config (CONFIG_SAMPLE_RUST_XEN_DEMO=m), which c-core.config leaves alone, the
# xenbus/ counters are the xenbus device model's with either core, and the back-off is the event
# core's late EOI (xen_irq_lateeoi()), which every kernel of the run has.
GFLOOD_MS=3000
# xb_counters DIR ATTR...: the values of a xenbus device's attributes ATTR in DIR (its xenbus/
# directory) on one line; fails, saying which, if one is not a number.
xb_counters() {
	local d=$1 a v out=
	shift
	for a; do
		v=$(cat "$d/$a" 2>&1)
		case $v in '' | *[!0-9]*) echo "$d/$a is '$v'"; return 1 ;; esac
		out="$out $v"
	done
	echo $out
}
# gflood_counters DIR: the counters events, spurious_events and jiffies_eoi_delayed of DIR.
gflood_counters() { xb_counters "$1" events spurious_events jiffies_eoi_delayed; }
# gflood_valid LINE: LINE is what gflood_counters prints when it succeeds.
gflood_valid() {
	set -- $1
	[ $# = 3 ] && case "$1$2$3" in *[!0-9]*) false ;; esac || { echo "counters: $*"; return 1; }
}
# gflood_cmp A OP B WHAT: [ A OP B ], explained when it does not hold.
gflood_cmp() { [ "$1" "$2" "$3" ] || { echo "$4 is $1, want $2 $3"; return 1; }; }
# gflood_num TEXT: TEXT if it is a number, else 0 (so that no arithmetic stops the script).
gflood_num() { case $1 in '' | *[!0-9]*) echo 0 ;; *) echo "$1" ;; esac; }
# flood_refuses: the frontend's flood takes only a number of milliseconds, 1 to 60000.
flood_refuses() {
	local w
	for w in 0 60001 abc "10 10" ""; do
		if echo "$w" >$FE_DBG/flood 2>/dev/null; then
			echo "flood took '$w'"
			return 1
		fi
	done
}
# gflood_xs_round_trip: a xenstore write and read of dom0's own, each done within 10 s.
gflood_xs_round_trip() {
	local k=/local/domain/0/data/xen-pv-gflood v
	timeout 10 xenstore-write $k "$1" || { echo "xenstore-write failed or took more than 10 s"; return 1; }
	v=$(timeout 10 xenstore-read $k) || { echo "xenstore-read failed or took more than 10 s"; return 1; }
	xenstore-rm $k
	[ "$v" = "$1" ] || { echo "read '$v' back, wrote '$1'"; return 1; }
}
guest_flood() {
	local p="xsa-332 guest flood" e0 g0=0 xb c0= c1= ev=0 sp=0 de=0 nf n0 n1 pid rc
	e0=$(evtchns)
	on domU && g0=$(stat_of $GRANTS in_use)
	demo_up "$p" "guest flood: attached"
	if on domU; then
		check "$p: flood refuses 0, 60001, a word, two numbers and nothing" flood_refuses
	fi
	barrier "guest flood: connected"
	if on dom0; then
		# The backend bus names the device <type>-<frontend domid>-<devid> (backend_bus_id).
		xb=/sys/bus/xen-backend/devices/demo-$DOMU-0/xenbus
		c0=$(gflood_counters "$xb")
		check "$p: dom0's backend device has its event counters" gflood_valid "$c0"
	fi
	barrier "guest flood: counted"
	if on domU; then
		n0=$(gflood_num "$(stat_of $FE_DBG/stats flood_notifications)")
		sh -c "echo $GFLOOD_MS >$FE_DBG/flood" >"$tmp.flood" 2>&1 &
		pid=$!
		publish gflood-on 1
		wait $pid
		rc=$?
		n1=$(gflood_num "$(stat_of $FE_DBG/stats flood_notifications)")
		check "$p: the domU flooded dom0's backend for $GFLOOD_MS ms" \
			sh -c "[ $rc = 0 ] || { cat $tmp.flood; exit 1; }"
		nf=$((n1 - n0))
		echo "# the domU sent $nf notifications"
		publish gflood-notifications "$nf"
		rm -f "$tmp.flood"
	else
		check "$p: the domU's flood began" wait_until 60 "the domU's flood" \
			sh -c "[ -n \"\$(xenstore-read $SYNC/val/gflood-on 2>/dev/null)\" ]"
		check "$p: dom0 does a xenstore round trip during the flood" gflood_xs_round_trip "$DOMU"
		[ -n "$(peer_value gflood-notifications)" ] &&
			echo "# (the flood ended before the round trip did)"
	fi
	barrier "guest flood: over"
	if on dom0; then
		c1=$(gflood_counters "$xb")
		nf=$(gflood_num "$(peer_value gflood-notifications)")
		if gflood_valid "$c0" >/dev/null && gflood_valid "$c1" >/dev/null; then
			set -- $c0 $c1
			ev=$(($4 - $1)) sp=$(($5 - $2)) de=$(($6 - $3))
		fi
		echo "# dom0's backend device: events +$ev, spurious_events +$sp, jiffies_eoi_delayed +$de, for $nf notifications"
		check "$p: dom0's backend device still has its event counters" gflood_valid "$c1"
		check "$p: spurious_events rose by at least 3" gflood_cmp "$sp" -ge 3 "the rise of spurious_events"
		check "$p: jiffies_eoi_delayed rose (the back-off delayed EOIs)" \
			gflood_cmp "$de" -ge 1 "the rise of jiffies_eoi_delayed"
		# With the default spurious_threshold 1, xen_irq_lateeoi_locked() delays the EOI of the
		# n-th spurious event in a row by 2^(n-2) jiffies (n >= 2, at most HZ), adding that to
		# jiffies_eoi_delayed. But in 7.3 the delayed EOI itself is a good one (the worker sends it
		# as xen_irq_lateeoi_locked(info, false)) and starts the row again, so a row never gets
		# past 2: the EOI of every second spurious event is held one jiffy, and the delay does not
		# grow (the KUnit test spurious_events_hold_the_channel_masked in
		# rust/kernel/xen/events.rs relies on this). jiffies_eoi_delayed thus rises by about half
		# as much as spurious_events, never by more; what is checked is that the back-off held the
		# channel for (nearly) every second one. An event whose EOI the event loop's own timeout
		# deferred starts the row again without a delay counted: hence 1/3, not 1/2.
		check "$p: the back-off delayed the EOI of nearly every second spurious event" \
			gflood_cmp $((3 * de)) -ge "$sp" "3 x the rise of jiffies_eoi_delayed"
		# The channel stays masked while an EOI is delayed (and while the handler runs), so the
		# notifications coalesce: dom0 takes at most about two events a jiffy, whatever the domU
		# sends.
		check "$p: dom0 took far fewer events than the domU sent notifications (events < notifications / 2)" \
			gflood_cmp $((2 * ev)) -lt "$nf" "2 x the rise of events"
	fi
	barrier "guest flood: checked"
	if on domU; then
		check "$p: dom0 answers 100 requests after the flood" demo_send 100 8
		check "$p: unload rust_xen_demo_front" mod_unload rust_xen_demo_front xen demo-0
		check "$p: grant references at baseline" wait_until 10 "$g0 grants" grants_are "$g0"
		check "$p: event channels at baseline" wait_until 10 "$e0 event channels" evtchns_are "$e0"
	fi
	barrier "guest flood: front unloaded"
	if on dom0; then
		check "$p: detach the demo device" "$ATTACH" detach "$DOMU" 0
		check "$p: unload rust_xen_demo_back" rmmod rust_xen_demo_back
		check "$p: dom0's event channels at baseline" wait_until 10 "$e0 event channels" evtchns_are "$e0"
	fi
	barrier "guest flood: done"
}

# --- Hostile xenstore: device entries no toolstack writes, against both buses -------------------
# dom0 writes device entries into the domU's device/ tree (the domU's frontend bus) and its own
# backend/ tree (dom0's backend bus), as a compromised or buggy toolstack or driver domain could:
# names too long for a bus id, two entries with one bus id, states other than Initialising, a
# frontend-id that is not a number, an other end outside the tree of the domain it names, entries
# that vanish as soon as they appear, and XB_MANY devices at once. Each domain checks its bus: what
# must be there is, what must not is not, the kernel said why, nothing crashed or hung, and it all
# goes when the entries go, with grants and event channels back to baseline. The Rust buses
# (XEN_XENBUS_RUST) refuse three things the C buses accept: an other end outside the tree of the
# domain it names (both buses), and a backend whose frontend-id is not the domain in its path.
# The Rust device model also refuses a state that only starts with a number ("1x", which C reads
# as 1) and removes the devices of a type whose whole directory is removed (C keeps them).
XB_FE_TYPES="xrbad xrdup-a xrdup xrstate xrgone xrmany xrtype"
XB_BE_TYPES="xrbad xrgone xrmany xrtype"
XB_LONG=aaaaaaaaaaaaaaaaaaaaaaaa
xb_dir() { if on dom0; then echo /sys/bus/xen-backend/devices; else echo /sys/bus/xen/devices; fi; }
# xb_count GLOB: how many devices of this domain's bus match GLOB.
xb_count() {
	set -- $(xb_dir)/$1
	if [ -e "$1" ]; then echo $#; else echo 0; fi
}
xb_count_is() {
	local c
	c=$(xb_count "$1")
	[ "$c" -eq "$2" ] || { echo "$c devices $1 on the bus, want $2"; return 1; }
}
xb_has() { [ -e "$(xb_dir)/$1" ] || { echo "no device $1 on the bus"; return 1; }; }
xb_not() { [ ! -e "$(xb_dir)/$1" ] || { echo "device $1 is on the bus ($(cat "$(xb_dir)/$1/nodename"))"; return 1; }; }
# xb_dev_is DEV NODENAME DEVTYPE MODALIAS STATE UEVENT-LINE...: DEV's sysfs attributes, and lines
# of its uevent (what udev and the hotplug scripts see), are those.
xb_dev_is() {
	local d l
	d=$(xb_dir)/$1
	[ "$(cat "$d/nodename")" = "$2" ] || { echo "nodename is '$(cat "$d/nodename")', want '$2'"; return 1; }
	[ "$(cat "$d/devtype")" = "$3" ] || { echo "devtype is '$(cat "$d/devtype")', want '$3'"; return 1; }
	[ "$(cat "$d/modalias")" = "$4" ] || { echo "modalias is '$(cat "$d/modalias")', want '$4'"; return 1; }
	[ "$(cat "$d/state")" = "$5" ] || { echo "state is '$(cat "$d/state")', want '$5'"; return 1; }
	shift 5
	cat "$d/uevent" >"$tmp.ue" || return 1
	for l in "$@"; do
		grep -qx "$l" "$tmp.ue" || { echo "no '$l' in the uevent:"; cat "$tmp.ue"; return 1; }
	done
}
# xs_says KEY TEXT: xenstore's KEY holds TEXT.
xs_says() {
	local v
	v=$(xs_read "$1")
	case $v in *"$2"*) ;; *) echo "$1 is '$v', not about '$2'"; return 1 ;; esac
}
xb_bound() { [ -e "$(xb_dir)/$1/driver" ] || { echo "device $1 has no driver"; return 1; }; }
# xb_refused DEV NODE: the Rust bus refused the other end of DEV (xenstore NODE): no driver, the
# device Closing and an error node.
xb_refused() {
	[ ! -e "$(xb_dir)/$1/driver" ] || { echo "device $1 is bound to a driver"; return 1; }
	state_is "$2" 5 || { echo "$2/state is '$(xs_read "$2/state")', want 5 (Closing)"; return 1; }
}
# xb_write_many ROOT N: N devices ROOT/0..N-1, each with its state and EXTRA key/value pairs, in
# transactions of 100 devices.
xb_write_many() {
	local root=$1 num=$2 i=0 args
	shift 2
	while [ $i -lt "$num" ]; do
		args=
		while [ $i -lt "$num" ]; do
			args="$args $root/$i/state 1"
			[ $# -gt 0 ] && args="$args $root/$i/$1 $2"
			[ $# -gt 2 ] && args="$args $root/$i/$3 $4"
			i=$((i + 1))
			[ $((i % 100)) -eq 0 ] && break
		done
		# shellcheck disable=SC2086
		xenstore-write $args || return 1
	done
}
xb_rm_many() {
	local root=$1 num=$2 i=0 args
	while [ $i -lt "$num" ]; do
		args=
		while [ $i -lt "$num" ]; do
			args="$args $root/$i"
			i=$((i + 1))
			[ $((i % 100)) -eq 0 ] && break
		done
		# shellcheck disable=SC2086
		xenstore-rm $args || return 1
	done
}
# The device's own directory goes first: the C xenbus core ignores the removal of a whole type.
xb_rm_types() {
	local root=$1 t d
	shift
	for t in "$@"; do
		for d in $(xenstore-list "$root/$t" 2>/dev/null); do
			xenstore-rm "$root/$t/$d"
		done
		xenstore-rm "$root/$t" 2>/dev/null
	done
	return 0
}
# xb_stats_ok DEV: the xenbus/ attributes of a bound backend device (the event counters of XSA-332)
# are numbers, and spurious_threshold takes a number, refuses anything else, and is put back. (By
# this step the domU has unloaded blkfront, so the device has no event channel bound: no count is
# asserted.)
xb_stats_ok() {
	local d=/sys/bus/xen-backend/devices/$1/xenbus v old
	v=$(xb_counters "$d" event_channels events spurious_events jiffies_eoi_delayed spurious_threshold) ||
		{ echo "$v"; return 1; }
	old=$(cat "$d/spurious_threshold")
	echo 7 >"$d/spurious_threshold" && [ "$(cat "$d/spurious_threshold")" = 7 ] ||
		{ echo "spurious_threshold is '$(cat "$d/spurious_threshold")' after writing 7"; return 1; }
	if echo abc >"$d/spurious_threshold" 2>/dev/null; then
		echo "spurious_threshold took 'abc'"
		return 1
	fi
	echo "$old" >"$d/spurious_threshold"
}
hostile_xenstore() {
	local fe=/local/domain/$DOMU/device be=/local/domain/0/backend/xrbad/$DOMU e0 g0=0 t0
	local rust=0 many=$XB_MANY i ok me=$DOMU
	on domU && me=$(xs_read domid)
	if [ -z "$XENBUS" ]; then
		XENBUS=C
		log_has "bus xen.* (Rust)" && XENBUS=Rust
	fi
	case $XENBUS in [Rr]ust) rust=1 ;; esac
	e0=$(evtchns)
	on domU && g0=$(stat_of $GRANTS in_use)
	echo "# hostile xenstore: the $XENBUS buses, $many devices at once"
	# The drivers that follow an other end: the demo pair.
	on domU && check "hostile xenstore: load rust_xen_demo_front" mod_load rust_xen_demo_front
	on dom0 && check "hostile xenstore: load rust_xen_demo_back" mod_load rust_xen_demo_back
	on dom0 && check "xenbus: blkback's device has its xenbus/ attributes; spurious_threshold takes a number" \
		xb_stats_ok "vbd-$DOMU-51712"
	barrier "hostile: drivers loaded"
	if on dom0; then
		# Other ends that exist, that the other domain can read, but that are not in the tree of the
		# domain they are said to be in.
		xenstore-write /local/domain/$DOMU/data/xr-fake-end 1 /local/domain/0/data/xr-fake-end 1
		xenstore-chmod /local/domain/0/data/xr-fake-end n0 r$DOMU
		# The demo devices as a toolstack writes them: without a state, owned by the domU (so that
		# it can write its state and error nodes) and readable by the backend domain, then the
		# state.
		xenstore-write $fe/demo/91/backend-id 0 $fe/demo/91/backend /local/domain/$DOMU/data/xr-fake-end \
			$fe/demo/92/backend-id 0 $fe/demo/92/backend /local/domain/0/data/xr-fake-end
		xenstore-chmod -r $fe/demo/91 n$DOMU r0
		xenstore-chmod -r $fe/demo/92 n$DOMU r0
		check "hostile xenstore: dom0 wrote the bad frontend entries" xenstore-write \
			$fe/xrbad/$XB_LONG/state 1 $fe/xrbad/ok_1@x-y/state 1 \
			$fe/xrstate/nan/state garbage $fe/xrstate/big/state 99 $fe/xrstate/empty/state "" \
			$fe/xrstate/later/state 7 $fe/xrstate/junk/state 1x $fe/demo/91/state 1 $fe/demo/92/state 1 \
			$fe/xrtype/0/state 1 $fe/xrtype/1/state 1
		# One after the other, so that the domU sees them in this order.
		check "hostile xenstore: dom0 wrote two frontend entries with one bus id" sh -c \
			"xenstore-write $fe/xrdup-a/b/state 1 && xenstore-write $fe/xrdup/a-b/state 1"
		check "hostile xenstore: dom0 wrote the bad backend entries" xenstore-write \
			$be/$XB_LONG/state 1 $be/$XB_LONG/frontend-id $DOMU $be/$XB_LONG/frontend $fe \
			$be/1/state 1 $be/1/frontend-id abc $be/1/frontend $fe \
			$be/2/state 1 $be/2/frontend-id $((DOMU + 1)) $be/2/frontend $fe \
			$be/3/state 1 $be/3/frontend-id $DOMU $be/3/frontend $fe \
			/local/domain/0/backend/demo/$DOMU/91/state 1 /local/domain/0/backend/demo/$DOMU/91/online 1 \
			/local/domain/0/backend/demo/$DOMU/91/frontend-id $DOMU \
			/local/domain/0/backend/demo/$DOMU/91/frontend /local/domain/$DOMU/data/xr-fake-end \
			/local/domain/0/backend/xrtype/$DOMU/0/state 1 /local/domain/0/backend/xrtype/$DOMU/0/frontend-id $DOMU \
			/local/domain/0/backend/xrtype/$DOMU/0/frontend $fe /local/domain/0/backend/xrtype/$DOMU/1/state 1 \
			/local/domain/0/backend/xrtype/$DOMU/1/frontend-id $DOMU /local/domain/0/backend/xrtype/$DOMU/1/frontend $fe
		t0=$(now)
		i=0
		ok=0
		while [ $i -lt 50 ]; do
			xenstore-write $fe/xrgone/$i/state 1 /local/domain/0/backend/xrgone/$DOMU/$i/state 1 \
				/local/domain/0/backend/xrgone/$DOMU/$i/frontend-id $DOMU \
				/local/domain/0/backend/xrgone/$DOMU/$i/frontend $fe &&
				xenstore-rm $fe/xrgone/$i /local/domain/0/backend/xrgone/$DOMU/$i && ok=$((ok + 1))
			i=$((i + 1))
		done
		check "hostile xenstore: dom0 wrote and at once removed 50 devices on each bus" \
			sh -c "[ $ok = 50 ] || { echo '$ok of 50 written and removed'; exit 1; }"
		# dom0 owns the directories of the many, so that they do not count against the domU's
		# xenstore quota.
		xenstore-write $fe/xrmany "" /local/domain/0/backend/xrmany/$DOMU ""
		xenstore-chmod $fe/xrmany n0 r$DOMU
		check "hostile xenstore: dom0 wrote $many frontend devices" xb_write_many $fe/xrmany "$many"
		check "hostile xenstore: dom0 wrote $many backend devices" \
			xb_write_many /local/domain/0/backend/xrmany/$DOMU "$many" frontend-id $DOMU frontend $fe
		echo "# written in $(($(now) - t0)) s"
	fi
	barrier "hostile: entries written"
	t0=$(now)
	check "hostile xenstore: $ROLE's bus took the $many devices" wait_until 600 "$many devices" xb_count_is "xrmany-*" "$many"
	echo "# $ROLE's bus took them in $(($(now) - t0)) s"
	check "hostile xenstore: $ROLE's bus has none of the vanished devices" wait_until 60 "no xrgone devices" xb_count_is "xrgone-*" 0
	check "hostile xenstore: $ROLE's bus took the two xrtype devices" wait_until 60 "2 xrtype devices" xb_count_is "xrtype-*" 2
	if on domU; then
		check "hostile xenstore: a name too long for a bus id is refused, with a warning" \
			log_has "bad frontend.*xrbad/$XB_LONG"
		check "hostile xenstore: of the two xrbad entries only the one that fits is probed" xb_count_is "xrbad-*" 1
		check "hostile xenstore: a name with _, @ and - in it is probed" xb_has xrbad-ok_1@x-y
		check "hostile xenstore: its sysfs attributes and uevent are the frontend bus's" xb_dev_is xrbad-ok_1@x-y \
			device/xrbad/ok_1@x-y xrbad xen:xrbad Initialising MODALIAS=xen:xrbad
		check "hostile xenstore: two entries with one bus id: one device" sh -c \
			"grep -qx -e device/xrdup-a/b -e device/xrdup/a-b /sys/bus/xen/devices/xrdup-a-b/nodename"
		for i in nan big empty later; do
			check "hostile xenstore: state '$(xs_read device/xrstate/$i/state)' is not probed" xb_not xrstate-$i
		done
		if [ $rust = 1 ]; then
			check "hostile xenstore: state '1x' is not probed" xb_not xrstate-junk
		else
			check "hostile xenstore: (C core) state '1x' is read as 1 and probed" xb_has xrstate-junk
		fi
		if [ $rust = 1 ]; then
			check "hostile xenstore: a second entry with the same bus id is refused, with a warning" log_has \
				"device/xrdup/a-b: bus id xrdup-a-b is taken by device/xrdup-a/b"
			check "hostile xenstore: a backend in the domU's own tree is refused" \
				wait_until 30 "device/demo/91 refused" xb_refused demo-91 device/demo/91
			check "hostile xenstore: a backend outside dom0's backend tree is refused" \
				wait_until 30 "device/demo/92 refused" xb_refused demo-92 device/demo/92
			check "hostile xenstore: the refusal is in xenstore" \
				xs_says error/device/demo/91/error "backend is not in the backend domain's backend tree"
			check "hostile xenstore: and in the log" log_has \
				"device/demo/91: backend /local/domain/$me/data/xr-fake-end of domain 0 is not under /local/domain/0/backend"
		else
			check "hostile xenstore: (C bus) a backend in the domU's own tree is taken" \
				wait_until 30 "demo-91 bound" xb_bound demo-91
			check "hostile xenstore: (C bus) a backend outside dom0's backend tree is taken" \
				wait_until 30 "demo-92 bound" xb_bound demo-92
		fi
	else
		check "hostile xenstore: a good backend among the bad ones is probed" xb_has "xrbad-$DOMU-3"
		check "hostile xenstore: its sysfs attributes and uevent are the backend bus's" xb_dev_is "xrbad-$DOMU-3" \
			"backend/xrbad/$DOMU/3" xrbad xen-backend:xrbad Initialising MODALIAS=xen-backend:xrbad \
			XENBUS_TYPE=xrbad "XENBUS_PATH=backend/xrbad/$DOMU/3" XENBUS_BASE_PATH=backend
		if [ $rust = 1 ]; then
			check "hostile xenstore: a name too long, frontend-id 'abc' and a frontend-id not the domain in the path are refused" \
				xb_count_is "xrbad-*" 1
			check "hostile xenstore: each refusal is in the log" sh -c \
				"dmesg >$tmp.d; grep -q 'xrbad/$DOMU/$XB_LONG: not a backend device: the bus id would be too long' $tmp.d &&
				 grep -q 'xrbad/$DOMU/1: not a backend device: frontend-id is missing or not a number' $tmp.d &&
				 grep -q 'xrbad/$DOMU/2: not a backend device: frontend-id is not the domain in the path' $tmp.d"
			check "hostile xenstore: a frontend in the domU's data tree is refused" \
				wait_until 30 "backend/demo/$DOMU/91 refused" xb_refused "demo-$DOMU-91" \
				/local/domain/0/backend/demo/$DOMU/91
			check "hostile xenstore: the refusal is in xenstore" \
				xs_says /local/domain/0/error/backend/demo/$DOMU/91/error "frontend is not in the frontend domain's device tree"
		else
			check "hostile xenstore: (C bus) a name too long and frontend-id 'abc' are refused" \
				xb_count_is "xrbad-*" 2
			check "hostile xenstore: (C bus) a frontend-id not the domain in the path is probed" \
				xb_has "xrbad-$((DOMU + 1))-2"
			check "hostile xenstore: (C bus) a frontend in the domU's data tree is taken" \
				wait_until 30 "demo-$DOMU-91 bound" xb_bound "demo-$DOMU-91"
		fi
	fi
	barrier "hostile: entries checked"
	if on dom0; then
		t0=$(now)
		check "hostile xenstore: dom0 removed the $many frontend devices" xb_rm_many $fe/xrmany "$many"
		check "hostile xenstore: dom0 removed the $many backend devices" \
			xb_rm_many /local/domain/0/backend/xrmany/$DOMU "$many"
		echo "# removed in $(($(now) - t0)) s"
		# The C core ignores the removal of a whole type (and keeps its devices): it only gets
		# this with the Rust one, before xb_rm_types removes the rest device by device.
		if [ $rust = 1 ]; then
			check "hostile xenstore: dom0 removed two whole types of devices" \
				xenstore-rm $fe/xrtype /local/domain/0/backend/xrtype
		fi
		xb_rm_types $fe $XB_FE_TYPES
		xb_rm_types /local/domain/0/backend $XB_BE_TYPES
		# One by one: xenstore-rm removes all its paths in one transaction, or none.
		for i in $fe/demo/91 $fe/demo/92 /local/domain/0/backend/demo/$DOMU/91 \
			/local/domain/$DOMU/data/xr-fake-end /local/domain/0/data/xr-fake-end \
			/local/domain/$DOMU/error/device/demo /local/domain/0/error/backend/demo/$DOMU/91; do
			xenstore-rm "$i" 2>/dev/null
		done
		check "hostile xenstore: dom0 removed every entry" sh -c \
			"! xenstore-exists $fe/xrmany/0 && ! xenstore-exists /local/domain/0/backend/xrbad"
	fi
	barrier "hostile: entries removed"
	if [ $rust = 1 ]; then
		check "hostile xenstore: removing a whole type's directory removed its devices" \
			wait_until 60 "no xrtype devices" xb_count_is "xrtype-*" 0
	fi
	check "hostile xenstore: $ROLE's bus let go of every device" wait_until 600 "no xr devices" xb_count_is "xr*" 0
	if on domU; then
		check "hostile xenstore: the domU's bus let go of the demo devices" wait_until 60 "no demo-91, demo-92" \
			sh -c "! [ -e /sys/bus/xen/devices/demo-91 ] && ! [ -e /sys/bus/xen/devices/demo-92 ]"
	else
		check "hostile xenstore: dom0's bus let go of the demo device" wait_until 60 "no demo-$DOMU-91" \
			xb_not "demo-$DOMU-91"
	fi
	if on domU; then
		check "hostile xenstore: unload rust_xen_demo_front" rmmod rust_xen_demo_front
		check "hostile xenstore: grant references at baseline" wait_until 10 "$g0 grants" grants_are "$g0"
	else
		check "hostile xenstore: unload rust_xen_demo_back" rmmod rust_xen_demo_back
	fi
	check "hostile xenstore: $ROLE's event channels at baseline" wait_until 10 "$e0 event channels" evtchns_are "$e0"
	barrier "hostile: over"
}

# --- The steps ----------------------------------------------------------------------------------

echo "TAP version 13"
echo "# xen_pv: $ROLE, frontend domain ${DOMU:-$(xs_read domid)}"
E0=$(evtchns)
if on domU; then
	G0=$(stat_of $GRANTS in_use) || bail "cannot read $GRANTS"
	echo "# baseline: $G0 grant references in use, $E0 event channels bound"
else
	echo "# baseline: $E0 event channels bound"
fi
handshake
blk_boot_disk
blk_purge
blk_hotplug
net
vchan
save_restore
# The stock frontends unloaded: the domU is back where it started.
if on domU; then
	ip link set eth0 down
	check "stock frontends: unbind xen-netfront" sh -c "echo vif-0 >/sys/bus/xen/drivers/vif/unbind"
	check "stock frontends: unload xen-netfront" rmmod xen_netfront
	check "stock frontends: unbind xen-blkfront" sh -c "echo vbd-$XVDA >/sys/bus/xen/drivers/vbd/unbind"
	check "stock frontends: unload xen-blkfront" rmmod xen_blkfront
	check "stock frontends: grant references at baseline" wait_until 10 "$G0 grants" grants_are "$G0"
	check "stock frontends: event channels at baseline" wait_until 10 "$E0 event channels" evtchns_are "$E0"
fi
barrier "stock frontends unloaded"
if on dom0; then
	check "stock backends: the vbd backend closed" wait_until 30 "backend/vbd Closed" \
		state_is /local/domain/0/backend/vbd/$DOMU/$XVDA 6
	check "stock backends: the vif backend closed" wait_until 30 "backend/vif Closed" \
		state_is /local/domain/0/backend/vif/$DOMU/0 6
	check "stock backends: dom0 event channels back to baseline" wait_until 30 "$E0 event channels" evtchns_are "$E0"
fi
# With nothing else granting, the race's baselines are exact.
storm domU
storm dom0
race
guest_flood
hostile_xenstore
finish

#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the dom0 initramfs: start the Xen toolstack daemons, create the PV domU with xl, relay its
# console, run the dom0 tests and power off. Every wait polls for a condition under a deadline, and
# each step prints an XR-STAGE marker so that the host can name the stage a hang happened in.
/bin/busybox --install -s /bin
export PATH=/usr/lib/xen-4.17/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmpfs /run
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mkdir -p /dev/pts && mount -t devpts devpts /dev/pts
. /etc/xr/params
. /usr/share/xr/lib.sh

stage dom0-init
mount -t xenfs xenfs /proc/xen || log "mount xenfs failed"
mkdir -p /var/lock /run/xen /run/xenstored /var/lib/xen /var/log/xen/console

stage xenstored
XENSTORED_ROOTDIR=/run/xenstored xenstored --pid-file /run/xen/xenstored.pid
wait_for 30 "xenstored answers" xenstore-read -s / || fatal "xenstored did not come up"
xen-init-dom0 >/dev/null || fatal "xen-init-dom0 failed"
xenconsoled --pid-file=/run/xen/xenconsoled.pid --log=guest || fatal "xenconsoled failed"
stage xenstored-up

# The stock PV drivers' side of dom0: backends loaded, ramdisks filled, disk and vif in the config.
stage pv-setup
if [ "$XR_MODE" = test ] && ksft_wanted xen_pv; then
	echo "XR-KSFT-BEGIN xen_pv_setup"
	XEN_PV_MODDIR=/lib/modules/xr sh /usr/share/xr/xen_pv.sh --setup /etc/xen/domU.cfg
	echo "XR-KSFT-END xen_pv_setup rc=$?"
fi

stage xl-create
xl create -p /etc/xen/domU.cfg >/tmp/xl-create.log 2>&1 || { cat /tmp/xl-create.log; fatal "xl create failed"; }
D=$(xl domid domU) || fatal "xl domid failed"
log "domU is domain $D"
# The domU's id; the xen_pv kselftest writes the new one here after each save/restore.
DOMID_FILE=/run/xr-domid
echo "$D" >$DOMID_FILE
# The bench's side by side: more frontend domains, from the same kernel and initramfs, which
# take turns with the domU at each measurement (XR_DOMUS names them all).
OTHERS=
for name in $XR_DOMUS; do
	[ "$name" = domU ] && continue
	xl create -p /etc/xen/$name.cfg >/tmp/xl-create.log 2>&1 || { cat /tmp/xl-create.log; fatal "xl create $name failed"; }
	d=$(xl domid $name) || fatal "xl domid $name failed"
	log "$name is domain $d"
	echo "$d" >/run/xr-domid-$name
	OTHERS="$OTHERS $d"
done
stage domU-created
for name in $XR_DOMUS; do
	xl unpause $name || fatal "xl unpause $name failed"
done

# Relay each frontend domain's console to ours, line by line, in the background until it
# reports that it is done, while dom0 runs its half of the demo kselftest (the domU runs the
# other half). relay_all NAME DOMID_FILE: the lines are prefixed with "[NAME] ".
stage domU-boot
relay_all() {
	local relayed=0 deadline name=$1 idfile=$2 glog=/var/log/xen/console/guest-$1.log
	relay_new() {
		local n
		[ -f $glog ] || return 0
		n=$(wc -l <$glog)
		# A new log (xenconsoled reopened it for a restored domain): start from its top.
		[ "$n" -lt "$relayed" ] && relayed=0
		if [ "$n" -gt "$relayed" ]; then
			sed -n "$((relayed + 1)),${n}{s/^/[$name] /;p}" $glog
			relayed=$n
		fi
	}
	deadline=$(( $(uptime_s) + XR_DOMU_TIMEOUT ))
	while :; do
		# The bench measures: no relay until it is done (its lines wait in the log).
		[ -e $QUIET_FILE ] && { sleep $relay_poll; continue; }
		relay_new
		# XR-DONE may land after the relay above: relay once more before leaving.
		grep -q '^XR-DONE domU' $glog 2>/dev/null && { relay_new; break; }
		# Not `xl domid`: it fails now and then while the domain is alive (seen here). The domU
		# may have finished and gone between two polls: one more round relays what is left.
		# While it is saved and restored the domain is gone for a while ("saving"), then has a new id.
		D=$(cat $idfile)
		[ "$D" = saving ] && { sleep 0.2; continue; }
		xenstore-exists /local/domain/$D || { [ -n "${gone:-}" ] && { log "$name is gone"; break; }; gone=1; continue; }
		[ "$(uptime_s)" -ge $deadline ] && { log "$name did not report within ${XR_DOMU_TIMEOUT}s"; break; }
		sleep $relay_poll
	done
}
# The bench measures the domains' round trips: a relay poll (five processes, about 0.15 s of CPU
# time under TCG with the checkers on) inside a measurement would be measured. So there the relay
# polls less often, and not at all while the demo kselftest says that a domain measures (it
# creates QUIET_FILE; removed below if the kselftest ends without doing so).
relay_poll=0.2
[ "$XR_MODE" = bench ] && relay_poll=2
QUIET_FILE=/run/xr-bench-measuring
relay_all domU $DOMID_FILE &
relay_pid=$!
other_relays=
for name in $XR_DOMUS; do
	[ "$name" = domU ] && continue
	relay_all $name /run/xr-domid-$name &
	other_relays="$other_relays $!"
done

# The stock PV drivers first, on a domU in which nothing else has run yet; then the demo pair.
if [ "$XR_MODE" = test ] && ksft_wanted xen_pv; then
	# Into a file first, printed whole afterwards: kernel messages on the same console (blkback's
	# purge notices) have been seen to land in the middle of a result line.
	log "xen_pv (dom0 half) running; its results follow when it is done"
	XEN_PV_XENBUS=$XR_XENBUS XEN_PV_XENBUS_MANY=$XR_XENBUS_MANY XEN_PV_RACE_CYCLES=$XR_RACE_CYCLES XEN_PV_MODDIR=/lib/modules/xr XEN_PV_TIMEOUT=$XR_SYNC_TIMEOUT XEN_PV_DOMID_FILE=$DOMID_FILE sh /usr/share/xr/xen_pv.sh --domu $D >/tmp/xen_pv.tap 2>&1
	rc=$?
	echo "XR-KSFT-BEGIN xen_pv"
	cat /tmp/xen_pv.tap
	echo "XR-KSFT-END xen_pv rc=$rc"
	D=$(cat $DOMID_FILE)
fi
if ksft_wanted xen_demo; then
	echo "XR-KSFT-BEGIN xen_demo"
	more=
	for d in $OTHERS; do
		more="$more --domu $d"
	done
	XEN_DEMO_MODE=$XR_MODE XEN_DEMO_CYCLES=$XR_DEMO_CYCLES XEN_DEMO_BENCH_ROUNDS=$XR_BENCH_ROUNDS XEN_DEMO_QUIET_FILE=$QUIET_FILE XEN_DEMO_MODDIR=/lib/modules/xr XEN_DEMO_TIMEOUT=$XR_SYNC_TIMEOUT sh /usr/share/xr/xen_demo.sh --domu $D $more
	echo "XR-KSFT-END xen_demo rc=$?"
fi
rm -f $QUIET_FILE
wait $relay_pid $other_relays
grep -q '^XR-DONE domU' /var/log/xen/console/guest-domU.log 2>/dev/null && relayed_all=1 || relayed_all=0
echo "XR-DOMU-RELAYED done=$relayed_all"

stage dom0-tests
if [ "$XR_MODE" = test ]; then
	kunit_module xen_xenstore_kunit rust_xen_xenstore
	gnttab_kunit
	. /usr/share/xr/dom0-tests.sh
	run_tests dom0 dom0_tests
fi

# The domU powers itself off; wait for it to go away so that no domain is left behind.
wait_for 30 "domU destroyed" sh -c "! xenstore-exists /local/domain/$D" || xl destroy domU
for name in $XR_DOMUS; do
	[ "$name" = domU ] && continue
	d=$(cat /run/xr-domid-$name)
	wait_for 30 "$name destroyed" sh -c "! xenstore-exists /local/domain/$d" || xl destroy $name
done
echo "XR-DONE dom0"
poweroff -f

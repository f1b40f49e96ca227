#!/bin/sh
# /init of the luksify live environment ("the live CD").
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mkdir -p /proc /sys /dev /run /tmp /mnt
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/lvm /run/lock/lvm /run/cryptsetup
# Kernel messages on the serial console would interleave with command output.
dmesg -n 1
while read -r m; do
    insmod "$m" || echo "luksify-live: loading $m failed"
done < /etc/luksify-live/modules
hostname live
echo "luksify-live: ready"
# setsid + cttyhack make ttyS0 the shell's controlling tty: cryptsetup prompts need one.
exec setsid cttyhack dash -l

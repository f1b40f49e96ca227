#!/bin/sh
# The VM target's init (init= on the kernel command line): reports what the
# test checks on the console, then powers off. Lines start with BOOTCHECK.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc 2>/dev/null
mount -t sysfs sysfs /sys 2>/dev/null
mount -t devtmpfs devtmpfs /dev 2>/dev/null
say() { echo "BOOTCHECK: $*"; }
say "start"
say "root $(findmnt -n -o SOURCE /)"
if sha256sum -c --quiet /var/lib/boot-check/tree.sha256; then
    say "sums ok"
else
    say "sums BAD"
fi
dmsetup table | sed 's/^/BOOTCHECK-DM: /'
lsblk -n -o NAME,TYPE,MOUNTPOINT | sed 's/^/BOOTCHECK-LSBLK: /'
if swapon /dev/mapper/vg0-swap && grep -q . /proc/swaps; then
    say "swap $(tail -n 1 /proc/swaps | tr -s ' \t' ' ')"
    swapoff /dev/mapper/vg0-swap
else
    say "swap FAILED"
fi
say "end"
sync
echo o > /proc/sysrq-trigger
sleep 30

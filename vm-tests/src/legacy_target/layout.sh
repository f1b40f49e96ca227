# Lays the host-made file system images out as CentOS 5's default layout on
# /dev/vda, inside the live guest: vda1 /boot, vda2 the PV of VolGroup00
# with LogVol00 (root) and LogVol01 (swap). vdb: /boot image, vdc: root
# image. No boot loader goes into the MBR: GRUB legacy is not available
# here; the test boots what grub.conf names with QEMU's -kernel.
set -eu
printf 'label: dos\n,%sMiB,83,*\n,,8e\n' "$BOOT_MIB" | sfdisk --quiet /dev/vda
pvcreate -q /dev/vda2
vgcreate -q VolGroup00 /dev/vda2
lvcreate -q -y -L "${ROOT_MIB}m" -n LogVol00 VolGroup00
lvcreate -q -y -L "${SWAP_MIB}m" -n LogVol01 VolGroup00
dd if=/dev/vdb of=/dev/vda1 bs=1M conv=fsync 2>/dev/null
dd if=/dev/vdc of=/dev/VolGroup00/LogVol00 bs=1M conv=fsync 2>/dev/null
e2fsck -fy /dev/vda1 >/dev/null
e2fsck -fy /dev/VolGroup00/LogVol00 >/dev/null
resize2fs -f /dev/vda1 >/dev/null 2>&1
mkswap /dev/VolGroup00/LogVol01 >/dev/null
vgchange -q -an VolGroup00
sync
echo layout-done

# Lays the host-made file system images out as the seed layout on /dev/vda
# and installs GRUB, inside the live guest. vdb: /boot image, vdc: root image.
set -eu
printf 'label: dos\n,%sMiB,83,*\n,,8e\n' "$BOOT_MIB" | sfdisk --quiet /dev/vda
pvcreate -q /dev/vda2
vgcreate -q "$VG" /dev/vda2
lvcreate -q -y -L "${ROOT_MIB}m" -n root "$VG"
lvcreate -q -y -L "${SWAP_MIB}m" -n swap "$VG"
dd if=/dev/vdb of=/dev/vda1 bs=1M conv=fsync 2>/dev/null
dd if=/dev/vdc of="/dev/$VG/root" bs=1M conv=fsync 2>/dev/null
e2fsck -fy /dev/vda1 >/dev/null
e2fsck -fy "/dev/$VG/root" >/dev/null
resize2fs -f /dev/vda1 >/dev/null 2>&1
mkswap -L swap "/dev/$VG/swap" >/dev/null
t=/mnt/target
mkdir -p $t
mount "/dev/$VG/root" $t
mount /dev/vda1 $t/boot
for fs in dev proc sys run; do mount --bind /$fs $t/$fs; done
chroot $t grub-install --target=i386-pc /dev/vda
chroot $t update-grub
grep -q "init=/usr/local/sbin/boot-check" $t/boot/grub/grub.cfg
for fs in run sys proc dev boot; do umount $t/$fs; done
umount $t
vgchange -q -an "$VG"
sync
echo layout-done

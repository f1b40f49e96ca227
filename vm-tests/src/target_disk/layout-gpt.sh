# The seed layout on a GPT label, inside the live guest: vda1 a 1 MiB BIOS
# boot partition (GRUB's core for i386-pc on GPT), vda2 /boot, vda3 the PV.
# SeaBIOS boots it through the protective MBR's boot code. vdb: /boot image,
# vdc: root image.
set -eu
printf 'label: gpt\nstart=1MiB, size=1MiB, type=21686148-6449-6E6F-744E-656564454649\nsize=%sMiB, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\ntype=E6D6D379-F507-44C2-A23C-238F2A3DF928\n' "$BOOT_MIB" | sfdisk --quiet /dev/vda
pvcreate -q /dev/vda3
vgcreate -q "$VG" /dev/vda3
lvcreate -q -y -L "${ROOT_MIB}m" -n root "$VG"
lvcreate -q -y -L "${SWAP_MIB}m" -n swap "$VG"
dd if=/dev/vdb of=/dev/vda2 bs=1M conv=fsync 2>/dev/null
dd if=/dev/vdc of="/dev/$VG/root" bs=1M conv=fsync 2>/dev/null
e2fsck -fy /dev/vda2 >/dev/null
e2fsck -fy "/dev/$VG/root" >/dev/null
resize2fs -f /dev/vda2 >/dev/null 2>&1
mkswap -L swap "/dev/$VG/swap" >/dev/null
t=/mnt/target
mkdir -p $t
mount "/dev/$VG/root" $t
mount /dev/vda2 $t/boot
for fs in dev proc sys run; do mount --bind /$fs $t/$fs; done
chroot $t grub-install --target=i386-pc /dev/vda
chroot $t update-grub
grep -q "init=/usr/local/sbin/boot-check" $t/boot/grub/grub.cfg
for fs in run sys proc dev boot; do umount $t/$fs; done
umount $t
vgchange -q -an "$VG"
sync
echo layout-done

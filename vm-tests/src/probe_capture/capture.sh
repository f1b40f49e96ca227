#!/bin/sh
# Records what luksify's probe reads about block devices and LVM into $1.
# Layout: see vm-tests/fixtures/README.md.
out=$1
rm -rf "$out"
mkdir -p "$out/blkid" "$out/sys/block"
: > "$out/exit-codes"
: > "$out/commands"

cap() {
    name=$1
    shift
    echo "$name	$*" >> "$out/commands"
    "$@" > "$out/$name" 2> "$out/$name.stderr"
    echo "$name $?" >> "$out/exit-codes"
    [ -s "$out/$name.stderr" ] || rm -f "$out/$name.stderr"
}

cap pvs.json lvm pvs --reportformat json --units b --nosuffix -a -o pv_name,pv_uuid,vg_name,pv_size,pv_free,pe_start,pv_pe_count,pv_pe_alloc_count,dev_size,pv_tags,pv_attr
cap vgs.json lvm vgs --reportformat json --units b --nosuffix -o vg_name,vg_uuid,vg_extent_size,vg_extent_count,vg_free_count,vg_tags,vg_attr,pv_count,lv_count
cap lvs.json lvm lvs --reportformat json --units b --nosuffix -a --segments -o lv_name,vg_name,lv_uuid,lv_size,lv_attr,lv_active,lv_path,lv_dm_path,segtype,seg_start_pe,seg_size_pe,devices,seg_pe_ranges,move_pv,copy_percent,origin,pool_lv,lv_tags,lv_role

for b in /sys/block/*; do
    x=${b##*/}
    cap "blkid/$x" blkid -p -o export "/dev/$x"
    for p in "$b/$x"*; do
        [ -f "$p/partition" ] && cap "blkid/${p##*/}" blkid -p -o export "/dev/${p##*/}"
    done
done

cap mountinfo cat /proc/self/mountinfo

for b in /sys/block/*; do
    x=${b##*/}
    d=$out/sys/block/$x
    mkdir -p "$d"
    readlink -f "$b" > "$d/readlink-f"
    for f in size ro removable queue/logical_block_size queue/physical_block_size \
             device/model device/serial serial dm/name dm/uuid; do
        if [ -r "$b/$f" ]; then
            mkdir -p "$(dirname "$d/$f")"
            cat "$b/$f" > "$d/$f" 2>/dev/null || rm -f "$d/$f"
        fi
    done
    ls "$b/slaves" > "$d/slaves.ls"
    for p in "$b/$x"*; do
        [ -f "$p/partition" ] || continue
        pd=$d/${p##*/}
        mkdir -p "$pd"
        for f in partition start size; do
            cat "$p/$f" > "$pd/$f"
        done
    done
done

//! The editors on real-world files: /etc/default/grub exactly as Debian's
//! grub2-common package ships it, a Debian 5 menu.lst with automagic kopt,
//! crypttab and fstab with comments, tabs and odd spacing.

use std::path::Path;

use luksify::boot::{BootRequest, Flavour, crypttab, fstab, grub_legacy, grub2};

const UUID: &str = "3f5ad593-4546-4a94-a374-bcfb68aa11f7";

fn req(vg: &str, lv: &str) -> BootRequest {
    BootRequest {
        luks_uuid: UUID.into(),
        mapper_name: "sda5_crypt".into(),
        vg: vg.into(),
        root_lv: lv.into(),
        flavour: None,
        initrd_path: None,
        discard: false,
    }
}

/// Lines that differ between two texts of the same line count.
fn changed_lines(a: &str, b: &str) -> Vec<(String, String)> {
    assert_eq!(a.lines().count(), b.lines().count());
    a.lines()
        .zip(b.lines())
        .filter(|(x, y)| x != y)
        .map(|(x, y)| (x.to_string(), y.to_string()))
        .collect()
}

#[test]
fn default_grub_from_debians_grub2_common_package() {
    // The template grub-pc's postinst copies to /etc/default/grub.
    let p = Path::new("/usr/share/grub/default/grub");
    let text = std::fs::read_to_string(p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; install grub2-common (listed in xtask/apt/boot-config.txt)",
            p.display()
        )
    });
    let out = grub2::edit_default(&text, &req("vg0", "root"), Flavour::Dracut)
        .unwrap()
        .unwrap();
    assert_eq!(
        changed_lines(&text, &out),
        [(
            "GRUB_CMDLINE_LINUX=\"\"".to_string(),
            format!("GRUB_CMDLINE_LINUX=\"rd.luks.uuid=luks-{UUID} rd.lvm.lv=vg0/root\"")
        )]
    );
    assert!(out.contains("GRUB_DISTRIBUTOR=`lsb_release -i -s 2> /dev/null || echo Debian`\n"));
    assert_eq!(
        grub2::edit_default(&out, &req("vg0", "root"), Flavour::Dracut).unwrap(),
        None
    );
    // initramfs-tools leaves the file alone.
    assert_eq!(
        grub2::edit_default(&text, &req("vg0", "root"), Flavour::InitramfsTools).unwrap(),
        None
    );
}

fn lenny_menu() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/boot_fixtures/files/debian5-menu.lst"),
    )
    .unwrap()
}

#[test]
fn debian5_menu_lst_clone_and_kopt() {
    let text = lenny_menu();
    let mut q = req("vg0", "root");
    q.initrd_path = Some("/boot/initrd.img-2.6.26-2-686.luks".into());
    let out = grub_legacy::edit(
        &text,
        None,
        &q,
        Flavour::InitramfsTools,
        "/boot/grub/menu.lst",
    )
    .unwrap()
    .unwrap();
    // kopt carries the new root for update-grub.
    assert!(
        out.contains("\n# kopt=root=/dev/mapper/vg0-root ro\n"),
        "{out}"
    );
    assert!(out.contains("\ndefault\t\t0\nfallback\t\t1\n"), "{out}");
    assert!(
        out.contains(
            "## ## End Default Options ##\n\n\
         title\t\tDebian GNU/Linux, kernel 2.6.26-2-686 (encrypted root)\n\
         root\t\t(hd0,0)\n\
         kernel\t\t/vmlinuz-2.6.26-2-686 root=/dev/mapper/vg0-root ro quiet\n\
         initrd\t\t/initrd.img-2.6.26-2-686.luks\n\
         \n\
         title\t\tDebian GNU/Linux, kernel 2.6.26-2-686\n\
         root\t\t(hd0,0)\n\
         kernel\t\t/vmlinuz-2.6.26-2-686 root=/dev/mapper/lenny-root ro quiet\n"
        ),
        "{out}"
    );
    // Every original line is still there, in order.
    let mut rest = out.lines();
    for l in text.lines().filter(|l| !l.starts_with("# kopt=")) {
        assert!(rest.any(|o| o == l), "lost or reordered: {l:?}");
    }
    assert_eq!(
        grub_legacy::edit(&out, None, &q, Flavour::InitramfsTools, "m").unwrap(),
        None,
        "a second run changes nothing"
    );
}

#[test]
fn debian5_menu_lst_same_vg_changes_nothing_without_new_initrd() {
    let text = lenny_menu();
    let q = req("lenny", "root");
    assert_eq!(
        grub_legacy::edit(&text, None, &q, Flavour::InitramfsTools, "m").unwrap(),
        None,
        "same root= and initrd: no clone for nothing"
    );
}

#[test]
fn crypttab_with_comments_tabs_and_odd_spacing() {
    let text = "# <target name>\t<source device>\t\t<key file>\t<options>\n\
                \n\
                   # encrypted /home, opened at boot\n\
                home_crypt   UUID=b8ad5c18-f445-495d-9095-c9ec4f9d2f37\t/etc/keys/home.key  luks,discard\n\
                cswap\tPARTLABEL=swap\t/dev/urandom\tswap,cipher=aes-xts-plain64,size=512";
    let mut q = req("vg0", "root");
    q.discard = true;
    let out = crypttab::edit(text, &q, Flavour::InitramfsTools)
        .unwrap()
        .unwrap();
    assert_eq!(
        out,
        format!("{text}\nsda5_crypt\tUUID={UUID}\tnone\tluks,discard,initramfs\n")
    );
    assert_eq!(
        crypttab::edit(&out, &q, Flavour::InitramfsTools).unwrap(),
        None
    );
}

#[test]
fn fstab_forms() {
    let text = "# <file system>\t<mount point>\t<type>\t<options>\t<dump>\t<pass>\n\
                LABEL=root   /   ext4  errors=remount-ro 0 1\n\
                /dev/mapper/vg0-home\t/home\text4\tdefaults\t0\t2   # comment after\n\
                /dev/disk/by-uuid/5c0e3a52-8d07-4f6a-9a6b-2f0f3c2b7e41 /boot ext2 defaults 0 2\n\
                  /dev/vg0/swap none swap sw 0 0\n\
                tmpfs /tmp tmpfs defaults 0 0\n";
    let notes: Vec<String> = fstab::parse(text)
        .iter()
        .filter_map(|e| fstab::note_for(e, "vg0"))
        .collect();
    assert_eq!(notes.len(), 4, "{notes:#?}");
    assert!(notes[0].contains("/ by LABEL=root stays valid"));
    assert!(notes[1].contains("/home on /dev/mapper/vg0-home stays valid"));
    assert!(notes[2].contains("/boot by /dev/disk/by-uuid/"));
    assert!(notes[3].contains("swap on /dev/vg0/swap stays valid"));
}

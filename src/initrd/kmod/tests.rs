use super::*;

#[test]
fn cipher_specs() {
    assert_eq!(
        parse_cipher("aes-xts-plain64"),
        (vec!["xts".into(), "aes".into()], "plain64".into())
    );
    assert_eq!(
        parse_cipher("aes-cbc-essiv:sha256"),
        (vec!["cbc".into(), "aes".into()], "essiv:sha256".into())
    );
    assert_eq!(
        parse_cipher("aes-plain"),
        (vec!["cbc".into(), "aes".into()], "plain".into())
    );
    assert_eq!(
        parse_cipher("capi:xts(aes)-plain64"),
        (vec!["xts".into(), "aes".into()], "plain64".into())
    );
    let names = |c: &str| -> Vec<String> {
        crypt_wants(c)
            .into_iter()
            .filter(|w| w.required)
            .map(|w| w.name)
            .collect()
    };
    assert_eq!(
        names("aes-cbc-essiv:sha256"),
        [
            "dm-mod",
            "dm-crypt",
            "af_alg",
            "algif_skcipher",
            "crypto-cbc",
            "crypto-aes",
            "crypto-essiv",
            "crypto-sha256"
        ]
    );
    let xts = crypt_wants("aes-xts-plain64");
    assert!(xts.contains(&Want::optional("crypto-ecb")));
    assert!(xts.contains(&Want::required("crypto-xts")));
}

#[test]
fn dashes_and_underscores_are_one() {
    assert_eq!(normalize("dm-crypt"), "dm_crypt");
    assert_eq!(normalize("pci:v[a-b]-x"), "pci:v[a-b]_x");
    assert_eq!(module_name("kernel/drivers/md/dm-crypt.ko.zst"), "dm_crypt");
    assert_eq!(module_name("kernel/crypto/xts.ko"), "xts");
}

/// A made-up kernel: compressed modules, a softdep, an alias, built-ins.
fn kernel() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("usr/lib/modules/9.9.9");
    fs::create_dir_all(&dir).unwrap();
    std::os::unix::fs::symlink("usr/lib", t.path().join("lib")).unwrap();
    fs::write(
        dir.join("modules.dep"),
        "kernel/drivers/md/dm-mod.ko.xz:\n\
         kernel/drivers/md/dm-crypt.ko.xz: kernel/drivers/md/dm-mod.ko.xz kernel/lib/base.ko.zst\n\
         kernel/lib/base.ko.zst:\n\
         kernel/crypto/xts.ko.xz:\n\
         kernel/arch/x86/crypto/aesni-intel.ko.xz: kernel/crypto/cryptd.ko.xz\n\
         kernel/crypto/cryptd.ko.xz:\n\
         kernel/crypto/crc32c.ko.xz:\n",
    )
    .unwrap();
    fs::write(
        dir.join("modules.alias"),
        "alias crypto-xts xts\nalias crypto-crc32c crc32c\nalias crypto-aes aesni_intel\nalias crypto-aes-* aesni_intel\n",
    )
    .unwrap();
    fs::write(
        dir.join("modules.builtin"),
        "kernel/crypto/aes_generic.ko\nkernel/crypto/af_alg.ko\n",
    )
    .unwrap();
    fs::write(
        dir.join("modules.builtin.modinfo"),
        b"aes_generic.alias=crypto-aes\0aes_generic.license=GPL\0sha256_generic.alias=crypto-sha256\0",
    )
    .unwrap();
    fs::write(
        dir.join("modules.softdep"),
        "# comment\nsoftdep dm_crypt pre: crypto-crc32c post: nothere\n",
    )
    .unwrap();
    t
}

#[test]
fn closure_orders_dependencies_first_and_keeps_compressed_names() {
    let t = kernel();
    let k = KernelModules::load(t.path(), "9.9.9").unwrap();
    assert_eq!(k.dir(), Path::new("/usr/lib/modules/9.9.9"));
    let c = k
        .closure(&[
            Want::required("dm-crypt"),
            Want::required("crypto-xts"),
            Want::required("crypto-aes"),
            Want::required("af-alg"),
            Want::required("crypto-sha256"),
            Want::optional("algif_nothing"),
        ])
        .unwrap();
    let rels: Vec<String> = c
        .modules
        .iter()
        .map(|m| m.rel.display().to_string())
        .collect();
    assert_eq!(
        rels,
        [
            "kernel/crypto/crc32c.ko.xz",
            "kernel/lib/base.ko.zst",
            "kernel/drivers/md/dm-mod.ko.xz",
            "kernel/drivers/md/dm-crypt.ko.xz",
            "kernel/crypto/xts.ko.xz",
            "kernel/crypto/cryptd.ko.xz",
            "kernel/arch/x86/crypto/aesni-intel.ko.xz",
        ]
    );
    assert_eq!(
        c.modules[3].path,
        Path::new("/usr/lib/modules/9.9.9/kernel/drivers/md/dm-crypt.ko.xz")
    );
    assert_eq!(c.builtin, ["af_alg", "sha256_generic"]);
    assert_eq!(c.notes.len(), 2, "{:?}", c.notes);
    assert!(c.notes.iter().any(|n| n.contains("nothere")));
    assert!(c.notes.iter().any(|n| n.contains("algif_nothing")));
}

#[test]
fn missing_required_module_is_named() {
    let t = kernel();
    let k = KernelModules::load(t.path(), "9.9.9").unwrap();
    let e = k.closure(&[Want::required("crypto-serpent")]).unwrap_err();
    assert_eq!(e.name, "crypto-serpent");
    assert!(e.to_string().contains("9.9.9"), "{e}");
}

#[test]
fn missing_kernel_is_an_error() {
    let t = kernel();
    let e = KernelModules::load(t.path(), "1.0.0").unwrap_err();
    assert!(format!("{e:#}").contains("/lib/modules/1.0.0"), "{e:#}");
}

//! ELF library closure and kernel module closure against real Debian 12
//! roots (built and cached by testkit: ~1-2 min the first time, instant
//! after), with Debian's own ldd and the host's modprobe as oracles.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use luksify::initrd::elf::{self, Reason, inroot::host_path};
use luksify::initrd::kmod::{KernelModules, Want, crypt_wants, module_index};
use testkit::{Flavour, debian_root, kernel_version, run};

const FLAVOURS: [Flavour; 2] = [Flavour::InitramfsTools, Flavour::Dracut];

/// What `ldd` (inside the root, so with the root's own ld.so) says a program
/// loads: the paths after `=>`, and the loader.
fn ldd(root: &Path, program: &str) -> BTreeSet<String> {
    let out = run("chroot", [root.to_str().unwrap(), "ldd", program]).unwrap();
    out.lines()
        .filter_map(|l| {
            let l = l.trim();
            let path = match l.split_once("=>") {
                Some((_, rest)) => rest.split_whitespace().next()?,
                None => l.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| path.to_string())
        })
        .collect()
}

#[test]
fn library_closure_matches_ldd_for_cryptsetup_and_lvm() {
    for flavour in FLAVOURS {
        let root = debian_root(flavour).unwrap();
        for program in ["/sbin/cryptsetup", "/sbin/lvm"] {
            let c = elf::closure(&root, &[Path::new(program)]).unwrap();
            // What the program loads at start: reachable from it through
            // DT_NEEDED and PT_INTERP, not through dlopen'd plugins.
            let mut reach: BTreeSet<PathBuf> = BTreeSet::new();
            let mut ours = BTreeSet::new();
            for f in &c.files {
                let linked = match &f.reason {
                    Reason::Requested => {
                        reach.insert(f.path.clone());
                        continue;
                    }
                    Reason::Needed { by } | Reason::Interpreter { by } => reach.contains(by),
                    Reason::Dlopened { .. } => false,
                };
                if linked {
                    reach.insert(f.path.clone());
                    ours.insert(f.path.display().to_string());
                }
            }
            let oracle = ldd(&root, program);
            assert_eq!(ours, oracle, "{flavour:?} {program}");
            assert!(c.notes.is_empty(), "{:?}", c.notes);
        }
    }
}

#[test]
fn cryptsetup_gets_what_it_dlopens() {
    let root = debian_root(Flavour::Dracut).unwrap();
    let c = elf::closure(&root, &[Path::new("/sbin/cryptsetup")]).unwrap();
    let dlopened: Vec<String> = c
        .files
        .iter()
        .filter(|f| matches!(f.reason, Reason::Dlopened { .. }))
        .map(|f| f.real.display().to_string())
        .collect();
    let lib = "/usr/lib/x86_64-linux-gnu";
    assert!(
        dlopened.contains(&format!("{lib}/libgcc_s.so.1")),
        "{dlopened:?}"
    );
    assert!(
        dlopened.contains(&format!("{lib}/ossl-modules/legacy.so")),
        "{dlopened:?}"
    );
    // The dracut root has systemd, which ships a TPM2 token plugin.
    assert!(
        dlopened
            .iter()
            .any(|p| p.starts_with(&format!("{lib}/cryptsetup/libcryptsetup-token-"))),
        "{dlopened:?}"
    );
}

/// The strongest oracle: copy only the closure (files and symlink chains)
/// into an empty directory and run the programs there.
#[test]
fn closure_alone_runs_cryptsetup_and_lvm() {
    let root = debian_root(Flavour::InitramfsTools).unwrap();
    let c = elf::closure(
        &root,
        &[Path::new("/sbin/cryptsetup"), Path::new("/sbin/lvm")],
    )
    .unwrap();
    let t = tempfile::tempdir().unwrap();
    let mini = t.path();
    for f in &c.files {
        let dest = host_path(mini, &f.real);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if !dest.exists() {
            fs::copy(host_path(&root, &f.real), &dest).unwrap();
        }
        for link in &f.symlinks {
            let at = host_path(mini, &link.path);
            fs::create_dir_all(at.parent().unwrap()).unwrap();
            if at.symlink_metadata().is_err() {
                std::os::unix::fs::symlink(&link.target, &at).unwrap();
            }
        }
    }
    let m = mini.to_str().unwrap();
    let v = run("chroot", [m, "/sbin/cryptsetup", "--version"]).unwrap();
    assert!(v.starts_with("cryptsetup 2."), "{v}");
    let v = run("chroot", [m, "/sbin/lvm", "version"]).unwrap();
    assert!(v.contains("LVM version"), "{v}");
}

/// Module files (relative to /lib/modules/KVER) that `modprobe
/// --show-depends` would insert for `name`, using only the root's index.
fn modprobe_deps(root: &Path, kver: &str, name: &str) -> BTreeSet<String> {
    let dir = root.join("lib/modules").join(kver);
    let dir = dir.canonicalize().unwrap();
    let out = run(
        "modprobe",
        [
            "-C",
            "/dev/null",
            "-d",
            root.to_str().unwrap(),
            "-S",
            kver,
            "--show-depends",
            name,
        ],
    )
    .unwrap();
    out.lines()
        .filter_map(|l| l.strip_prefix("insmod "))
        .map(|p| {
            let p = PathBuf::from(p.trim());
            let p = p.canonicalize().unwrap_or(p);
            p.strip_prefix(&dir).unwrap().display().to_string()
        })
        .collect()
}

#[test]
fn module_closure_matches_modprobe() {
    let root = debian_root(Flavour::InitramfsTools).unwrap();
    let kver = kernel_version(&root).unwrap();
    let k = KernelModules::load(&root, &kver).unwrap();

    let c = k.closure(&[Want::required("dm-crypt")]).unwrap();
    let names: Vec<&str> = c.modules.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names.last(), Some(&"dm_crypt"));
    assert!(names.contains(&"dm_mod"), "{names:?}");

    for cipher in [
        "aes-xts-plain64",
        "aes-cbc-essiv:sha256",
        "serpent-xts-plain64",
    ] {
        let wants = crypt_wants(cipher);
        let c = k.closure(&wants).unwrap();
        let ours: BTreeSet<String> = c
            .modules
            .iter()
            .map(|m| m.rel.display().to_string())
            .collect();
        let mut oracle = BTreeSet::new();
        for w in &wants {
            oracle.extend(modprobe_deps(&root, &kver, &w.name));
        }
        assert_eq!(ours, oracle, "{cipher}");
        for m in &c.modules {
            assert!(host_path(&root, &m.path).is_file(), "{}", m.path.display());
        }
    }
    // Debian builds these in: nothing to copy, but known.
    let c = k.closure(&crypt_wants("aes-cbc-essiv:sha256")).unwrap();
    assert!(c.builtin.contains(&"cbc".to_string()), "{:?}", c.builtin);
    assert!(
        c.modules.iter().any(|m| m.name == "essiv"),
        "{:?}",
        c.modules
    );
}

#[test]
fn regenerated_index_serves_modprobe() {
    let root = debian_root(Flavour::InitramfsTools).unwrap();
    let kver = kernel_version(&root).unwrap();
    let k = KernelModules::load(&root, &kver).unwrap();
    let c = k.closure(&crypt_wants("aes-xts-plain64")).unwrap();
    let modules: Vec<(PathBuf, Vec<u8>)> = c
        .modules
        .iter()
        .map(|m| (m.rel.clone(), fs::read(host_path(&root, &m.path)).unwrap()))
        .collect();
    let index = module_index(&root, &kver, &modules).unwrap();
    let names: Vec<&str> = index.iter().map(|(n, _)| n.as_str()).collect();
    for f in [
        "modules.dep",
        "modules.dep.bin",
        "modules.alias.bin",
        "modules.builtin.bin",
    ] {
        assert!(names.contains(&f), "{names:?}");
    }

    // An image-like tree: just these modules and the new index.
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("lib/modules").join(&kver);
    for (rel, data) in &modules {
        fs::create_dir_all(dir.join(rel).parent().unwrap()).unwrap();
        fs::write(dir.join(rel), data).unwrap();
    }
    for (name, data) in &index {
        fs::write(dir.join(name), data).unwrap();
    }
    for name in ["dm-crypt", "crypto-xts", "algif_skcipher"] {
        assert_eq!(
            modprobe_deps(t.path(), &kver, name),
            modprobe_deps(&root, &kver, name),
            "{name}"
        );
    }
    // Built-ins stay known: modprobe answers "builtin", not "not found".
    let out = run(
        "modprobe",
        [
            "-C",
            "/dev/null",
            "-d",
            t.path().to_str().unwrap(),
            "-S",
            &kver,
            "--show-depends",
            "aes_generic",
        ],
    )
    .unwrap();
    assert!(out.contains("builtin aes_generic"), "{out}");
}

/// xz-compressed modules (as Fedora and newer Debian kernels ship them) keep
/// their names through the closure and the regenerated index.
#[test]
fn compressed_modules_keep_their_format() {
    let root = debian_root(Flavour::InitramfsTools).unwrap();
    let kver = kernel_version(&root).unwrap();
    let k = KernelModules::load(&root, &kver).unwrap();
    let c = k.closure(&crypt_wants("aes-cbc-essiv:sha256")).unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("lib/modules").join(&kver);
    let mut modules = Vec::new();
    for m in &c.modules {
        let dest = dir.join(&m.rel);
        fs::create_dir_all(dest.parent().unwrap()).unwrap();
        fs::copy(host_path(&root, &m.path), &dest).unwrap();
        run("xz", ["--check=crc32", dest.to_str().unwrap()]).unwrap();
        let rel = PathBuf::from(format!("{}.xz", m.rel.display()));
        modules.push((rel.clone(), fs::read(dir.join(&rel)).unwrap()));
    }
    for (name, data) in module_index(&root, &kver, &modules).unwrap() {
        fs::write(dir.join(name), data).unwrap();
    }
    let k2 = KernelModules::load(t.path(), &kver).unwrap();
    let c2 = k2.closure(&crypt_wants("aes-cbc-essiv:sha256")).unwrap();
    let rels: Vec<String> = c2
        .modules
        .iter()
        .map(|m| m.rel.display().to_string())
        .collect();
    let expected: Vec<String> = c
        .modules
        .iter()
        .map(|m| format!("{}.xz", m.rel.display()))
        .collect();
    assert_eq!(rels, expected);
    let deps = modprobe_deps(t.path(), &kver, "dm-crypt");
    assert_eq!(deps.len(), 2, "{deps:?}");
    assert!(deps.iter().all(|p| p.ends_with(".ko.xz")), "{deps:?}");
}

//! Crafted roots with hand-made minimal ELF files: each case sets up exactly
//! the search situation it is about.

use std::os::unix::fs::symlink;

use super::*;

/// A minimal little-endian ELF shared object: one PT_LOAD over the whole
/// file, PT_DYNAMIC with DT_NEEDED / DT_RPATH / DT_RUNPATH, optional PT_INTERP.
struct Spec<'a> {
    is_64: bool,
    machine: u16,
    interp: Option<&'a str>,
    needed: &'a [&'a str],
    rpath: Option<&'a str>,
    runpath: Option<&'a str>,
}

const X86_64: Spec<'static> = Spec {
    is_64: true,
    machine: EM_X86_64,
    interp: None,
    needed: &[],
    rpath: None,
    runpath: None,
};

fn craft(s: &Spec) -> Vec<u8> {
    let (ehsize, phsize, word) = if s.is_64 { (64, 56, 8) } else { (52, 32, 4) };
    let phnum = 2 + usize::from(s.interp.is_some());
    let mut strtab = vec![0u8];
    let mut add_str = |t: &str| {
        let off = strtab.len();
        strtab.extend_from_slice(t.as_bytes());
        strtab.push(0);
        off as u64
    };
    let mut dyns: Vec<(u64, u64)> = s.needed.iter().map(|n| (1, add_str(n))).collect();
    if let Some(r) = s.rpath {
        dyns.push((15, add_str(r)));
    }
    if let Some(r) = s.runpath {
        dyns.push((29, add_str(r)));
    }
    let interp_off = add_str(s.interp.unwrap_or(""));
    let str_off = (ehsize + phsize * phnum) as u64;
    let dyn_off = (str_off + strtab.len() as u64).next_multiple_of(8);
    dyns.push((5, str_off));
    dyns.push((10, strtab.len() as u64));
    dyns.push((0, 0));
    let dyn_size = (dyns.len() * 2 * word) as u64;
    let total = dyn_off + dyn_size;

    let mut out = Vec::new();
    let put = |out: &mut Vec<u8>, v: u64, n: usize| out.extend_from_slice(&v.to_le_bytes()[..n]);
    out.extend_from_slice(b"\x7fELF");
    out.extend_from_slice(&[if s.is_64 { 2 } else { 1 }, 1, 1, 0]);
    out.extend_from_slice(&[0; 8]);
    put(&mut out, 3, 2); // ET_DYN
    put(&mut out, u64::from(s.machine), 2);
    put(&mut out, 1, 4);
    put(&mut out, 0, word); // entry
    put(&mut out, ehsize as u64, word); // phoff
    put(&mut out, 0, word); // shoff
    put(&mut out, 0, 4);
    put(&mut out, ehsize as u64, 2);
    put(&mut out, phsize as u64, 2);
    put(&mut out, phnum as u64, 2);
    put(&mut out, if s.is_64 { 64 } else { 40 }, 2);
    put(&mut out, 0, 2);
    put(&mut out, 0, 2);
    let phdr = |out: &mut Vec<u8>, typ: u64, off: u64, size: u64| {
        if s.is_64 {
            put(out, typ, 4);
            put(out, 4, 4); // flags
            for v in [off, off, off, size, size, 8] {
                put(out, v, 8);
            }
        } else {
            for v in [typ, off, off, off, size, size, 4, 4] {
                put(out, v, 4);
            }
        }
    };
    phdr(&mut out, 1, 0, total); // PT_LOAD
    phdr(&mut out, 2, dyn_off, dyn_size); // PT_DYNAMIC
    if let Some(i) = s.interp {
        phdr(&mut out, 3, str_off + interp_off, i.len() as u64 + 1); // PT_INTERP
    }
    out.extend_from_slice(&strtab);
    out.resize(dyn_off as usize, 0);
    for (tag, val) in dyns {
        put(&mut out, tag, word);
        put(&mut out, val, word);
    }
    out
}

/// A merged-/usr root with a loader and libc.
fn root() -> tempfile::TempDir {
    let t = tempfile::tempdir().unwrap();
    let r = t.path();
    for d in ["usr/lib/x86_64-linux-gnu", "usr/lib64", "usr/bin", "etc"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    symlink("usr/lib", r.join("lib")).unwrap();
    symlink("usr/lib64", r.join("lib64")).unwrap();
    symlink("usr/bin", r.join("bin")).unwrap();
    put(r, "/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", &X86_64);
    symlink(
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        r.join("usr/lib64/ld-linux-x86-64.so.2"),
    )
    .unwrap();
    put(r, "/usr/lib/x86_64-linux-gnu/libc.so.6", &X86_64);
    t
}

fn put(root: &Path, path: &str, spec: &Spec) {
    let host = host_path(root, Path::new(path));
    fs::create_dir_all(host.parent().unwrap()).unwrap();
    fs::write(host, craft(spec)).unwrap();
}

fn prog<'a>(needed: &'a [&'a str]) -> Spec<'a> {
    Spec {
        interp: Some("/lib64/ld-linux-x86-64.so.2"),
        needed,
        ..X86_64
    }
}

fn paths(c: &Closure) -> Vec<String> {
    c.files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect()
}

#[test]
fn program_loader_and_libc_through_usr_merge_links() {
    let t = root();
    put(t.path(), "/usr/bin/prog", &prog(&["libc.so.6"]));
    let c = closure(t.path(), &[Path::new("/bin/prog")]).unwrap();
    assert_eq!(
        paths(&c),
        [
            "/bin/prog",
            "/lib64/ld-linux-x86-64.so.2",
            "/lib/x86_64-linux-gnu/libc.so.6"
        ]
    );
    let loader = &c.files[1];
    assert_eq!(
        loader.real,
        Path::new("/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2")
    );
    let links: Vec<(String, String)> = loader
        .symlinks
        .iter()
        .map(|s| (s.path.display().to_string(), s.target.display().to_string()))
        .collect();
    assert_eq!(
        links,
        [
            ("/lib64".into(), "usr/lib64".into()),
            (
                "/usr/lib64/ld-linux-x86-64.so.2".into(),
                "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2".into()
            ),
            ("/lib".into(), "usr/lib".into()),
        ]
    );
    assert!(c.notes.is_empty(), "{:?}", c.notes);
}

#[test]
fn missing_library_names_it_and_who_needs_it() {
    let t = root();
    put(
        t.path(),
        "/usr/lib/x86_64-linux-gnu/libmid.so.1",
        &Spec {
            needed: &["libgone.so.7"],
            ..X86_64
        },
    );
    put(t.path(), "/usr/bin/prog", &prog(&["libmid.so.1"]));
    let e = closure(t.path(), &[Path::new("/usr/bin/prog")]).unwrap_err();
    match &e {
        ElfError::MissingLibrary {
            name, needed_by, ..
        } => {
            assert_eq!(name, "libgone.so.7");
            assert_eq!(needed_by, Path::new("/lib/x86_64-linux-gnu/libmid.so.1"));
        }
        other => panic!("{other}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("libgone.so.7") && msg.contains("libmid.so.1"),
        "{msg}"
    );
    assert!(
        msg.contains("/usr/lib/x86_64-linux-gnu"),
        "says where it looked: {msg}"
    );
}

#[test]
fn origin_in_runpath_is_the_objects_directory() {
    let t = root();
    put(
        t.path(),
        "/opt/app/lib/libapp.so",
        &Spec {
            needed: &["libc.so.6", "libplug.so"],
            runpath: Some("${ORIGIN}/plugins"),
            ..X86_64
        },
    );
    put(t.path(), "/opt/app/lib/plugins/libplug.so", &X86_64);
    put(
        t.path(),
        "/opt/app/bin/app",
        &Spec {
            runpath: Some("$ORIGIN/../lib"),
            ..prog(&["libapp.so"])
        },
    );
    // The program is reached through a symlink: $ORIGIN is where it really is.
    symlink("/opt/app/bin/app", t.path().join("usr/bin/app")).unwrap();
    let c = closure(t.path(), &[Path::new("/usr/bin/app")]).unwrap();
    let p = paths(&c);
    assert!(
        p.contains(&"/opt/app/bin/../lib/libapp.so".to_string()),
        "{p:?}"
    );
    assert!(
        p.contains(&"/opt/app/bin/../lib/plugins/libplug.so".to_string()),
        "{p:?}"
    );
    let plug = c
        .files
        .iter()
        .find(|f| f.path.ends_with("libplug.so"))
        .unwrap();
    assert_eq!(plug.real, Path::new("/opt/app/lib/plugins/libplug.so"));
}

#[test]
fn runpath_hides_rpath_and_executable_rpath_serves_libraries() {
    let t = root();
    put(t.path(), "/opt/r/libz.so.1", &X86_64);
    put(t.path(), "/opt/wrong/libz.so.1", &X86_64);
    put(t.path(), "/opt/run/libz.so.1", &X86_64);
    // A library without RUNPATH also searches the executable's RPATH.
    put(
        t.path(),
        "/usr/lib/x86_64-linux-gnu/libuses.so",
        &Spec {
            needed: &["libz.so.1"],
            ..X86_64
        },
    );
    put(
        t.path(),
        "/usr/bin/prog",
        &Spec {
            rpath: Some("/opt/r"),
            ..prog(&["libuses.so"])
        },
    );
    // A library with RUNPATH ignores its own RPATH and the executable's.
    put(
        t.path(),
        "/usr/lib/x86_64-linux-gnu/libown.so",
        &Spec {
            needed: &["libz.so.1"],
            rpath: Some("/opt/wrong"),
            runpath: Some("/opt/run"),
            ..X86_64
        },
    );
    put(
        t.path(),
        "/usr/bin/prog2",
        &Spec {
            rpath: Some("/opt/r"),
            ..prog(&["libown.so"])
        },
    );
    let c = closure(t.path(), &[Path::new("/usr/bin/prog")]).unwrap();
    assert!(
        paths(&c).contains(&"/opt/r/libz.so.1".into()),
        "{:?}",
        paths(&c)
    );
    let c = closure(t.path(), &[Path::new("/usr/bin/prog2")]).unwrap();
    assert!(
        paths(&c).contains(&"/opt/run/libz.so.1".into()),
        "{:?}",
        paths(&c)
    );
    assert!(!paths(&c).contains(&"/opt/wrong/libz.so.1".into()));
}

#[test]
fn other_class_or_machine_is_skipped() {
    let t = root();
    let i386 = Spec {
        is_64: false,
        machine: EM_386,
        ..X86_64
    };
    let arm64 = Spec {
        machine: EM_AARCH64,
        ..X86_64
    };
    put(t.path(), "/etc/../opt/first/libk.so", &i386);
    put(t.path(), "/usr/lib/x86_64-linux-gnu/libk.so", &arm64);
    put(t.path(), "/usr/lib64/libk.so", &X86_64);
    fs::write(t.path().join("etc/ld.so.conf"), "/opt/first\n").unwrap();
    put(t.path(), "/usr/bin/prog", &prog(&["libk.so"]));
    let c = closure(t.path(), &[Path::new("/usr/bin/prog")]).unwrap();
    assert_eq!(paths(&c).last().unwrap(), "/lib64/libk.so");
    // And when only wrong ones exist, it is missing.
    fs::remove_file(t.path().join("usr/lib64/libk.so")).unwrap();
    let e = closure(t.path(), &[Path::new("/usr/bin/prog")]).unwrap_err();
    assert!(e.to_string().contains("ELF64 machine X86_64"), "{e}");
}

#[test]
fn ld_so_conf_include_directories_are_searched() {
    let t = root();
    fs::create_dir_all(t.path().join("etc/ld.so.conf.d")).unwrap();
    fs::write(
        t.path().join("etc/ld.so.conf"),
        "include /etc/ld.so.conf.d/*.conf\n",
    )
    .unwrap();
    fs::write(t.path().join("etc/ld.so.conf.d/opt.conf"), "/opt/conf\n").unwrap();
    put(t.path(), "/opt/conf/libc.so.6", &X86_64);
    put(t.path(), "/usr/bin/prog", &prog(&["libc.so.6"]));
    let c = closure(t.path(), &[Path::new("/usr/bin/prog")]).unwrap();
    assert_eq!(paths(&c).last().unwrap(), "/opt/conf/libc.so.6");
}

#[test]
fn dlopened_extras_are_added_when_present() {
    let t = root();
    let lib = "/usr/lib/x86_64-linux-gnu";
    put(
        t.path(),
        &format!("{lib}/libpthread.so.0"),
        &Spec {
            needed: &["libc.so.6"],
            ..X86_64
        },
    );
    put(
        t.path(),
        &format!("{lib}/libgcc_s.so.1"),
        &Spec {
            needed: &["libc.so.6"],
            ..X86_64
        },
    );
    put(t.path(), &format!("{lib}/libcrypto.so.3"), &X86_64);
    put(
        t.path(),
        &format!("{lib}/ossl-modules/legacy.so"),
        &Spec {
            needed: &["libcrypto.so.3"],
            ..X86_64
        },
    );
    put(
        t.path(),
        &format!("{lib}/libcryptsetup.so.12"),
        &Spec {
            needed: &["libcrypto.so.3", "libc.so.6"],
            ..X86_64
        },
    );
    put(
        t.path(),
        &format!("{lib}/cryptsetup/libcryptsetup-token-good.so"),
        &X86_64,
    );
    put(
        t.path(),
        &format!("{lib}/cryptsetup/libcryptsetup-token-bad.so"),
        &Spec {
            needed: &["libtss2-nowhere.so.0"],
            ..X86_64
        },
    );
    put(
        t.path(),
        "/usr/bin/cryptsetup",
        &prog(&["libcryptsetup.so.12", "libpthread.so.0", "libc.so.6"]),
    );
    let c = closure(t.path(), &[Path::new("/usr/bin/cryptsetup")]).unwrap();
    let dl: Vec<String> = c
        .files
        .iter()
        .filter(|f| matches!(f.reason, Reason::Dlopened { .. }))
        .map(|f| f.real.display().to_string())
        .collect();
    assert_eq!(
        dl,
        [
            format!("{lib}/libgcc_s.so.1"),
            format!("{lib}/ossl-modules/legacy.so"),
            format!("{lib}/cryptsetup/libcryptsetup-token-good.so"),
        ]
    );
    assert_eq!(c.notes.len(), 1, "{:?}", c.notes);
    assert!(c.notes[0].contains("libtss2-nowhere.so.0"), "{:?}", c.notes);
}

#[test]
fn not_an_elf_file_is_named() {
    let t = root();
    fs::write(t.path().join("usr/bin/script"), "#!/bin/sh\n").unwrap();
    let e = closure(t.path(), &[Path::new("/usr/bin/script")]).unwrap_err();
    assert!(matches!(e, ElfError::NotElf { .. }), "{e}");
    assert!(e.to_string().contains("/usr/bin/script"), "{e}");
}

#[test]
fn expansion_of_tokens() {
    let k = Kind {
        is_64: true,
        machine: EM_X86_64,
    };
    assert_eq!(
        expand("$ORIGIN/../$LIB/x", Path::new("/a/b"), k),
        [
            PathBuf::from("/a/b/../lib/x86_64-linux-gnu/x"),
            PathBuf::from("/a/b/../lib64/x")
        ]
    );
    assert_eq!(
        expand("/opt/${PLATFORM}", Path::new("/"), k),
        [PathBuf::from("/opt/x86_64")]
    );
    assert!(expand("relative/dir", Path::new("/"), k).is_empty());
}

//! Which files a dynamically linked program needs, found by reading ELF
//! headers inside the target root — never by running `ldd`, which executes
//! the program (and would use the live system's libraries, not the target's).
//!
//! The search follows glibc's ld.so: DT_RPATH (of the object, then of the
//! executable) unless the object has DT_RUNPATH, then DT_RUNPATH, then the
//! directories of the target's ld.so.conf (what its ld.so.cache is built
//! from), then the system directories. Candidates of another ELF class or
//! machine are skipped, as ld.so skips them. On top of DT_NEEDED it adds what
//! programs load with dlopen: libgcc_s for thread cancellation, OpenSSL's
//! legacy provider, and libcryptsetup's token plugins.

pub mod inroot;
mod ldconf;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

use goblin::elf::Elf;
use goblin::elf::header::{EM_386, EM_AARCH64, EM_ARM, EM_PPC64, EM_RISCV, EM_S390, EM_X86_64};

pub use inroot::Symlink;
use inroot::{ResolveError, host_path, resolve};

/// Why a file is in the closure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// One of the programs asked for.
    Requested,
    /// The dynamic loader (PT_INTERP) of `by`.
    Interpreter { by: PathBuf },
    /// A DT_NEEDED entry of `by`.
    Needed { by: PathBuf },
    /// Loaded with dlopen at run time, which no header names.
    Dlopened { why: &'static str },
}

/// One file to put into an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfFile {
    /// The absolute path the loader (or the caller) asks for, inside the root.
    pub path: PathBuf,
    /// The file itself: `path` with every symlink resolved inside the root.
    pub real: PathBuf,
    /// Symlinks from `path` to `real` (usr-merge links like /lib -> usr/lib,
    /// soname links), in the order they were followed.
    pub symlinks: Vec<Symlink>,
    pub reason: Reason,
}

#[derive(Debug, Default, Clone)]
pub struct Closure {
    /// Requested programs first, then what they need, each `path` once.
    pub files: Vec<ElfFile>,
    /// dlopen'd extras that were looked for but left out, and why.
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    #[error(
        "{needed_by} needs {name}, which is not in {root} for {class} (searched {searched}); \
         install the package that provides it in the target system"
    )]
    MissingLibrary {
        name: String,
        needed_by: PathBuf,
        root: PathBuf,
        class: String,
        searched: String,
    },
    #[error("{path} in {root} is not a usable ELF file: {reason}")]
    NotElf {
        root: PathBuf,
        path: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Resolve(#[from] ResolveError),
}

/// ELF class and machine: a library only serves objects of the same kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Kind {
    is_64: bool,
    machine: u16,
}

impl Kind {
    fn describe(self) -> String {
        format!(
            "ELF{} machine {}",
            if self.is_64 { 64 } else { 32 },
            goblin::elf::header::machine_to_str(self.machine)
        )
    }

    /// The Debian multiarch tuple for this kind, used for $LIB and the
    /// default search directories.
    fn multiarch(self) -> Option<&'static str> {
        Some(match (self.machine, self.is_64) {
            (EM_X86_64, true) => "x86_64-linux-gnu",
            (EM_X86_64, false) => "x86_64-linux-gnux32",
            (EM_386, false) => "i386-linux-gnu",
            (EM_AARCH64, true) => "aarch64-linux-gnu",
            (EM_ARM, false) => "arm-linux-gnueabihf",
            (EM_RISCV, true) => "riscv64-linux-gnu",
            (EM_PPC64, true) => "powerpc64le-linux-gnu",
            (EM_S390, true) => "s390x-linux-gnu",
            _ => return None,
        })
    }

    fn platform(self) -> &'static str {
        match self.machine {
            EM_X86_64 => "x86_64",
            EM_386 => "i686",
            EM_AARCH64 => "aarch64",
            _ => "",
        }
    }

    /// The directories ld.so and ldconfig trust without configuration.
    fn default_dirs(self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(t) = self.multiarch() {
            dirs.push(format!("/lib/{t}"));
            dirs.push(format!("/usr/lib/{t}"));
        }
        let bits = if self.is_64 { "64" } else { "32" };
        dirs.push(format!("/lib{bits}"));
        dirs.push(format!("/usr/lib{bits}"));
        dirs.push("/lib".into());
        dirs.push("/usr/lib".into());
        dirs.into_iter().map(PathBuf::from).collect()
    }
}

/// What one ELF object says about its needs.
#[derive(Debug, Clone)]
struct Object {
    kind: Kind,
    interp: Option<String>,
    soname: Option<String>,
    needed: Vec<String>,
    rpath: Vec<String>,
    runpath: Vec<String>,
    /// Imports a pthread_* function: glibc then may dlopen libgcc_s.
    uses_pthread: bool,
}

fn parse(root: &Path, real: &Path) -> Result<Object, ElfError> {
    let not_elf = |reason: String| ElfError::NotElf {
        root: root.to_path_buf(),
        path: real.to_path_buf(),
        reason,
    };
    let data = fs::read(host_path(root, real)).map_err(|e| not_elf(e.to_string()))?;
    let elf = Elf::parse(&data).map_err(|e| not_elf(e.to_string()))?;
    let split = |v: &[&str]| -> Vec<String> {
        v.iter()
            .flat_map(|s| s.split(':'))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    let uses_pthread = elf.dynsyms.iter().any(|s| {
        s.st_shndx == 0
            && elf
                .dynstrtab
                .get_at(s.st_name)
                .is_some_and(|n| n.starts_with("pthread_"))
    });
    Ok(Object {
        kind: Kind {
            is_64: elf.is_64,
            machine: elf.header.e_machine,
        },
        interp: elf.interpreter.map(str::to_string),
        soname: elf.soname.map(str::to_string),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        rpath: split(&elf.rpaths),
        runpath: split(&elf.runpaths),
        uses_pthread,
    })
}

/// Just the ELF header's class and machine, or None for anything else.
fn kind_of(root: &Path, real: &Path) -> Option<Kind> {
    use std::io::Read;
    let mut head = [0u8; 64];
    let mut f = fs::File::open(host_path(root, real)).ok()?;
    f.read_exact(&mut head[..52]).ok()?;
    let _ = f.read(&mut head[52..]);
    let h = Elf::parse_header(&head).ok()?;
    Some(Kind {
        is_64: h.e_ident[goblin::elf::header::EI_CLASS] == goblin::elf::header::ELFCLASS64,
        machine: h.e_machine,
    })
}

/// Expands $ORIGIN, $LIB and $PLATFORM (also as ${...}) in a search path
/// entry. $LIB has two meanings (Debian's lib/TUPLE and upstream's lib64),
/// so several candidates may come back.
fn expand(entry: &str, origin: &Path, kind: Kind) -> Vec<PathBuf> {
    let origin = origin.display().to_string();
    let mut libs = Vec::new();
    if let Some(t) = kind.multiarch() {
        libs.push(format!("lib/{t}"));
    }
    libs.push(if kind.is_64 { "lib64" } else { "lib" }.to_string());
    let base = entry
        .replace("${ORIGIN}", &origin)
        .replace("$ORIGIN", &origin)
        .replace("${PLATFORM}", kind.platform())
        .replace("$PLATFORM", kind.platform());
    let mut out: Vec<PathBuf> = if base.contains("$LIB") || base.contains("${LIB}") {
        libs.iter()
            .map(|l| PathBuf::from(base.replace("${LIB}", l).replace("$LIB", l)))
            .collect()
    } else {
        vec![PathBuf::from(base)]
    };
    // A relative entry is relative to the process's working directory,
    // which we cannot know; ld.so's answer would be an accident anyway.
    out.retain(|p| p.is_absolute());
    out
}

struct Walker<'a> {
    root: &'a Path,
    ld_conf: Vec<PathBuf>,
    closure: Closure,
    paths: HashSet<PathBuf>,
    parsed: HashMap<PathBuf, Object>,
}

/// Who asks for a library: the object, where it was found, and the
/// executable it is loaded into (whose DT_RPATH also applies).
struct Requester<'o> {
    obj: &'o Object,
    path: PathBuf,
    exe: Option<(&'o Object, PathBuf)>,
}

impl<'a> Walker<'a> {
    fn add(&mut self, path: &Path, reason: Reason) -> Result<PathBuf, ElfError> {
        let r = resolve(self.root, path)?;
        if self.paths.insert(path.to_path_buf()) {
            self.closure.files.push(ElfFile {
                path: path.to_path_buf(),
                real: r.real.clone(),
                symlinks: r.symlinks,
                reason,
            });
        }
        Ok(r.real)
    }

    fn object(&mut self, real: &Path) -> Result<Object, ElfError> {
        if let Some(o) = self.parsed.get(real) {
            return Ok(o.clone());
        }
        let o = parse(self.root, real)?;
        self.parsed.insert(real.to_path_buf(), o.clone());
        Ok(o)
    }

    fn search_dirs(&self, who: &Requester) -> Vec<PathBuf> {
        let kind = who.obj.kind;
        let origin_of = |p: &Path| p.parent().unwrap_or(Path::new("/")).to_path_buf();
        let mut dirs = Vec::new();
        if who.obj.runpath.is_empty() {
            for e in &who.obj.rpath {
                dirs.extend(expand(e, &origin_of(&who.path), kind));
            }
            if let Some((exe, exe_path)) = &who.exe
                && exe.runpath.is_empty()
            {
                for e in &exe.rpath {
                    dirs.extend(expand(e, &origin_of(exe_path), kind));
                }
            }
        }
        for e in &who.obj.runpath {
            dirs.extend(expand(e, &origin_of(&who.path), kind));
        }
        dirs.extend(self.ld_conf.iter().cloned());
        dirs.extend(kind.default_dirs());
        let mut seen = HashSet::new();
        dirs.retain(|d| seen.insert(d.clone()));
        dirs
    }

    /// Finds `name` for `who` the way ld.so would, or says where it looked.
    fn find(&self, name: &str, who: &Requester) -> Result<PathBuf, ElfError> {
        let kind = who.obj.kind;
        let dirs = if name.contains('/') {
            vec![PathBuf::from("/")]
        } else {
            self.search_dirs(who)
        };
        for dir in &dirs {
            let candidate = dir.join(name);
            let Ok(r) = resolve(self.root, &candidate) else {
                continue;
            };
            if kind_of(self.root, &r.real) == Some(kind) {
                return Ok(candidate);
            }
        }
        Err(ElfError::MissingLibrary {
            name: name.to_string(),
            needed_by: who.path.clone(),
            root: self.root.to_path_buf(),
            class: kind.describe(),
            searched: dirs
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Adds `path` (already found) and, recursively, all it needs.
    fn walk(
        &mut self,
        path: &Path,
        reason: Reason,
        exe: Option<(&Object, PathBuf)>,
    ) -> Result<(), ElfError> {
        let first_time = !self.paths.contains(path);
        let real = self.add(path, reason)?;
        if !first_time {
            return Ok(());
        }
        let obj = self.object(&real)?;
        if let Some(interp) = &obj.interp {
            let interp = PathBuf::from(interp);
            let r = self.add(
                &interp,
                Reason::Interpreter {
                    by: path.to_path_buf(),
                },
            )?;
            // Parsed so that its soname answers DT_NEEDED entries naming it.
            let loader_kind = self.object(&r).ok().map(|o| o.kind);
            if loader_kind != Some(obj.kind) {
                return Err(ElfError::NotElf {
                    root: self.root.to_path_buf(),
                    path: interp,
                    reason: format!("not a loader for {}", obj.kind.describe()),
                });
            }
        }
        // For the executable itself, $ORIGIN is where the file really is
        // (the kernel hands ld.so the resolved path).
        let (self_path, exe_for_children) = match &exe {
            Some((e, p)) => (path.to_path_buf(), Some(((*e).clone(), p.clone()))),
            None => (real.clone(), Some((obj.clone(), real.clone()))),
        };
        for name in &obj.needed {
            // ld.so first reuses an object already loaded under that soname:
            // libc's DT_NEEDED ld-linux-x86-64.so.2 is the PT_INTERP loader.
            if self.loaded_soname(name) {
                continue;
            }
            let who = Requester {
                obj: &obj,
                path: self_path.clone(),
                exe: exe.as_ref().map(|(e, p)| (*e, p.clone())),
            };
            let found = self.find(name, &who)?;
            let by = path.to_path_buf();
            let (e, p) = exe_for_children.as_ref().expect("set above");
            self.walk(&found, Reason::Needed { by }, Some((e, p.clone())))?;
        }
        Ok(())
    }

    fn loaded_soname(&self, name: &str) -> bool {
        self.closure.files.iter().any(|f| {
            self.parsed
                .get(&f.real)
                .is_some_and(|o| o.soname.as_deref() == Some(name))
        })
    }

    fn has_soname_prefix(&self, prefix: &str) -> Option<ElfFile> {
        self.closure
            .files
            .iter()
            .find(|f| {
                f.path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(prefix))
            })
            .cloned()
    }

    /// Adds a dlopen'd file with its own closure, or only a note when it or
    /// something it needs is missing: a program runs without its plugins.
    fn try_extra(&mut self, path: &Path, why: &'static str) {
        let saved = (self.closure.clone(), self.paths.clone());
        if let Err(e) = self.walk(path, Reason::Dlopened { why }, None) {
            (self.closure, self.paths) = saved;
            self.closure
                .notes
                .push(format!("left out {} ({why}): {e}", path.display()));
        }
    }

    fn add_dlopened(&mut self) {
        let pthread = self.parsed.values().any(|o| o.uses_pthread)
            || self.has_soname_prefix("libpthread.so").is_some();
        if pthread && let Some(libc) = self.has_soname_prefix("libc.so.") {
            let obj = self.parsed.get(&libc.real).cloned();
            if let Some(obj) = obj {
                let who = Requester {
                    obj: &obj,
                    path: libc.path.clone(),
                    exe: None,
                };
                match self.find("libgcc_s.so.1", &who) {
                    Ok(p) => self.try_extra(
                        &p,
                        "glibc loads it to unwind on pthread_cancel/pthread_exit",
                    ),
                    Err(e) => self
                        .closure
                        .notes
                        .push(format!("left out libgcc_s.so.1: {e}")),
                }
            }
        }
        if let Some(crypto) = self.has_soname_prefix("libcrypto.so.3") {
            let dir = crypto.real.parent().unwrap_or(Path::new("/"));
            let legacy = dir.join("ossl-modules/legacy.so");
            if inroot::exists(self.root, &legacy) {
                self.try_extra(
                    &legacy,
                    "OpenSSL's legacy provider (old ciphers and hashes)",
                );
            }
        }
        if let Some(cs) = self.has_soname_prefix("libcryptsetup.so.") {
            let dir = cs.real.parent().unwrap_or(Path::new("/"));
            for plugin in inroot::glob(self.root, &dir.join("cryptsetup/libcryptsetup-token-*.so"))
            {
                self.try_extra(&plugin, "libcryptsetup token plugin");
            }
        }
    }
}

/// Everything `programs` (absolute paths inside `root`) need to run from an
/// image built of the root's files: the programs, their loader, the
/// libraries they need transitively, and the dlopen'd extras that exist.
pub fn closure(root: &Path, programs: &[&Path]) -> Result<Closure, ElfError> {
    let mut w = Walker {
        root,
        ld_conf: ldconf::library_dirs(root),
        closure: Closure::default(),
        paths: HashSet::new(),
        parsed: HashMap::new(),
    };
    for p in programs {
        w.walk(p, Reason::Requested, None)?;
    }
    w.add_dlopened();
    Ok(w.closure)
}

#[cfg(test)]
mod tests;

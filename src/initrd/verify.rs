//! "Can this image unlock this root and activate this VG?" Answered from the
//! image alone: cryptsetup and every library it loads, the kernel modules of
//! the cipher unless the image's modules.builtin says they are built in, the
//! module index modprobe reads, the flavour's hook and its configuration
//! naming the UUID, and lvm for the VG.

use std::collections::{HashMap, HashSet};

use goblin::elf::Elf;
use serde::Serialize;

use super::elf::inroot::fnmatch;
use super::flavour::{self, Flavour, Settings};
use super::image::Image;
use super::inimage;
use super::kmod::{self, normalize};

/// One thing the unlock needs, and what is wrong with it if anything.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub item: String,
    /// None when present.
    pub missing: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub flavour: String,
    pub kver: Option<String>,
    pub luks_uuid: String,
    pub vg: String,
    pub findings: Vec<Finding>,
}

impl Verdict {
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.missing.is_none())
    }

    pub fn missing(&self) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(|f| f.missing.is_some())
    }

    pub fn to_json(&self) -> String {
        #[derive(Serialize)]
        struct J<'a> {
            ok: bool,
            #[serde(flatten)]
            v: &'a Verdict,
        }
        serde_json::to_string_pretty(&J {
            ok: self.ok(),
            v: self,
        })
        .unwrap_or_default()
    }

    pub fn to_text(&self) -> String {
        let mut s = format!(
            "flavour {}, kernel {}: ",
            self.flavour,
            self.kver.as_deref().unwrap_or("unknown")
        );
        if self.ok() {
            s += &format!(
                "can unlock LUKS UUID {} and activate VG {}\n",
                self.luks_uuid, self.vg
            );
        } else {
            s += &format!(
                "CANNOT unlock LUKS UUID {} and activate VG {}; missing:\n",
                self.luks_uuid, self.vg
            );
            for f in self.missing() {
                s += &format!("  - {}: {}\n", f.item, f.missing.as_deref().unwrap_or(""));
            }
        }
        s
    }
}

const BIN_DIRS: &[&str] = &["sbin", "usr/sbin", "bin", "usr/bin"];
const LIB_DIRS: &[&str] = &[
    "lib/x86_64-linux-gnu",
    "usr/lib/x86_64-linux-gnu",
    "lib/aarch64-linux-gnu",
    "usr/lib/aarch64-linux-gnu",
    "lib/i386-linux-gnu",
    "usr/lib/i386-linux-gnu",
    "lib64",
    "usr/lib64",
    "lib",
    "usr/lib",
];

fn find_program(img: &Image, name: &str) -> Option<String> {
    BIN_DIRS
        .iter()
        .map(|d| format!("{d}/{name}"))
        .find(|p| inimage::read(img, p).is_some())
}

/// Libraries (and the loader) `program` loads that the image lacks.
fn missing_libraries(img: &Image, program: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let mut seen = HashSet::new();
    let mut todo = vec![(program.to_string(), program.to_string())];
    while let Some((path, by)) = todo.pop() {
        let Some(f) = inimage::read(img, &path) else {
            missing.push(format!("{path} (needed by {by})"));
            continue;
        };
        let Ok(elf) = Elf::parse(&f.data) else {
            missing.push(format!("{path} is not a readable ELF file"));
            continue;
        };
        if let Some(interp) = elf.interpreter
            && seen.insert(interp.to_string())
        {
            todo.push((interp.to_string(), path.clone()));
        }
        let origin = String::from_utf8_lossy(super::path::parent(&f.name)).into_owned();
        let mut dirs: Vec<String> = elf
            .runpaths
            .iter()
            .chain(elf.rpaths.iter())
            .flat_map(|r| r.split(':'))
            .map(|d| d.replace("$ORIGIN", &origin).replace("${ORIGIN}", &origin))
            .collect();
        dirs.extend(LIB_DIRS.iter().map(|d| d.to_string()));
        for lib in &elf.libraries {
            if !seen.insert(lib.to_string()) {
                continue;
            }
            match dirs
                .iter()
                .map(|d| format!("{}/{lib}", d.trim_start_matches('/')))
                .find(|p| inimage::read(img, p).is_some())
            {
                Some(p) => todo.push((p, path.clone())),
                None => missing.push(format!("{lib} (needed by /{path})")),
            }
        }
    }
    missing
}

/// The image's module index for one kernel.
struct ImageModules {
    base: String,
    /// module name -> (rel path, deps' rel paths), from modules.dep.
    dep: HashMap<String, (String, Vec<String>)>,
    builtin: HashSet<String>,
    aliases: Vec<(String, String)>,
    builtin_aliases: HashMap<String, String>,
}

fn module_name(rel: &str) -> String {
    let file = rel.rsplit('/').next().unwrap_or(rel);
    normalize(file.split(".ko").next().unwrap_or(file))
}

impl ImageModules {
    fn load(img: &Image, kver: &str) -> Self {
        let base = format!("lib/modules/{kver}");
        let read = |f: &str| inimage::text(img, &format!("{base}/{f}")).unwrap_or_default();
        let dep = read("modules.dep")
            .lines()
            .filter_map(|l| {
                let (m, d) = l.split_once(':')?;
                Some((
                    module_name(m),
                    (
                        m.to_string(),
                        d.split_whitespace().map(str::to_string).collect(),
                    ),
                ))
            })
            .collect();
        let builtin = read("modules.builtin").lines().map(module_name).collect();
        let aliases = read("modules.alias")
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                match (w.next(), w.next(), w.next()) {
                    (Some("alias"), Some(a), Some(m)) => Some((normalize(a), normalize(m))),
                    _ => None,
                }
            })
            .collect();
        let builtin_aliases = inimage::read(img, &format!("{base}/modules.builtin.modinfo"))
            .map(|f| f.data)
            .unwrap_or_default()
            .split(|b| *b == 0)
            .filter_map(|e| {
                let e = std::str::from_utf8(e).ok()?;
                let (m, a) = e.split_once(".alias=")?;
                Some((normalize(a), normalize(m)))
            })
            .collect();
        ImageModules {
            base,
            dep,
            builtin,
            aliases,
            builtin_aliases,
        }
    }

    /// None when the image can load (or has built in) `want`.
    fn problem(&self, img: &Image, want: &str) -> Option<String> {
        let n = normalize(want);
        let mods: Vec<&String> = if self.dep.contains_key(&n) {
            vec![&n]
        } else if self.builtin.contains(&n) || self.builtin_aliases.contains_key(&n) {
            return None;
        } else {
            let m: Vec<&String> = self
                .aliases
                .iter()
                .filter(|(p, _)| fnmatch(p.as_bytes(), n.as_bytes()))
                .map(|(_, m)| m)
                .collect();
            if m.iter().any(|m| self.builtin.contains(*m)) {
                return None;
            }
            m.into_iter()
                .filter(|m| self.dep.contains_key(*m))
                .collect()
        };
        if mods.is_empty() {
            return Some(format!(
                "module {want} is neither in the image's modules.dep nor built in"
            ));
        }
        for m in mods {
            let (rel, deps) = &self.dep[m];
            for f in std::iter::once(rel).chain(deps) {
                if inimage::read(img, &format!("{}/{f}", self.base)).is_none() {
                    return Some(format!("{want}: /{}/{f} is missing", self.base));
                }
            }
        }
        None
    }
}

fn finding(item: impl Into<String>, missing: Option<String>) -> Finding {
    Finding {
        item: item.into(),
        missing,
    }
}

/// Everything the image needs to unlock `s`'s container (cipher `cipher`)
/// and activate its VG, each present or not.
pub fn verify(img: &Image, s: &Settings, cipher: &str, flavour: Option<Flavour>) -> Verdict {
    let flavour = flavour.unwrap_or_else(|| flavour::detect(img));
    let mut findings = Vec::new();
    for (prog, why) in [
        ("cryptsetup", "opens the LUKS container"),
        ("lvm", "activates the volume group"),
    ] {
        match find_program(img, prog) {
            None => findings.push(finding(
                prog,
                Some(format!(
                    "no {prog} in /sbin, /usr/sbin, /bin or /usr/bin ({why})"
                )),
            )),
            Some(p) => {
                findings.push(finding(prog, None));
                let libs = missing_libraries(img, &p);
                findings.push(finding(
                    format!("{prog} libraries"),
                    (!libs.is_empty()).then(|| libs.join(", ")),
                ));
            }
        }
    }
    let kver = super::inject::image_kver(img);
    match &kver {
        None => findings.push(finding(
            "kernel modules",
            Some(
                "the image has no single /lib/modules/KVER to load dm-crypt and the cipher from"
                    .into(),
            ),
        )),
        Some(k) => {
            let mods = ImageModules::load(img, k);
            if inimage::read(img, &format!("{}/modules.dep.bin", mods.base)).is_none() {
                findings.push(finding(
                    "module index",
                    Some(format!(
                        "/{}/modules.dep.bin is missing (modprobe reads only it)",
                        mods.base
                    )),
                ));
            }
            for w in kmod::crypt_wants(cipher).iter().filter(|w| w.required) {
                findings.push(finding(
                    format!("module {}", w.name),
                    mods.problem(img, &w.name),
                ));
            }
        }
    }
    for c in flavour::check(flavour, img, s) {
        findings.push(finding(c.item, c.problem));
    }
    Verdict {
        flavour: flavour.name().to_string(),
        kver,
        luks_uuid: s.luks_uuid.clone(),
        vg: s.vg.clone(),
        findings,
    }
}

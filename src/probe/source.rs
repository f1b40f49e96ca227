//! Where the probe's raw facts come from. The real machine, or a recording of
//! one: `luksify probe --record FILE` saves every file read and command output,
//! and the same probe code replays it in tests, so fixtures captured on real
//! systems exercise the real parsing path.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use crate::sys::process::Cmd;

pub trait Source {
    /// A file's content, or None when it does not exist or cannot be read.
    fn read(&mut self, path: &str) -> Option<String>;
    /// Names of the entries in a directory (sorted), empty when it does not exist.
    fn list(&mut self, dir: &str) -> Vec<String>;
    /// The canonical path a symlink resolves to.
    fn canonical(&mut self, path: &str) -> Option<String>;
    /// Runs a read-only command and returns its exit code and stdout.
    fn run(&mut self, argv: &[&str]) -> Result<CommandRecord>;
    /// What the boot engine sees of the target mounted at `root` (see
    /// [`crate::probe::TargetOs::boot_view`]); None where nothing is mounted
    /// for real, as in a replay.
    fn boot_view(&mut self, root: &str, vg: &str, lv: &str) -> Option<Vec<super::FsAccess>> {
        let _ = (root, vg, lv);
        None
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRecord {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// The live machine.
pub struct RealSource;

impl Source for RealSource {
    fn boot_view(&mut self, root: &str, vg: &str, lv: &str) -> Option<Vec<super::FsAccess>> {
        // The looks do not depend on the UUID, only on what is installed.
        let uuid = "00000000-0000-4000-8000-000000000000";
        let req = crate::boot::BootRequest {
            luks_uuid: uuid.into(),
            mapper_name: format!("luks-{uuid}"),
            vg: vg.into(),
            root_lv: lv.into(),
            flavour: None,
            initrd_path: None,
            discard: false,
        };
        let (_, looks) = crate::boot::target_fs::recording(|| {
            crate::boot::plan_boot_changes(Path::new(root), &req)
        });
        Some(looks)
    }

    fn read(&mut self, path: &str) -> Option<String> {
        std::fs::read(path)
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    fn list(&mut self, dir: &str) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn canonical(&mut self, path: &str) -> Option<String> {
        std::fs::canonicalize(path)
            .ok()
            .map(|p| p.to_string_lossy().into_owned())
    }

    fn run(&mut self, argv: &[&str]) -> Result<CommandRecord> {
        let (prog, args) = argv.split_first().ok_or_else(|| anyhow!("empty command"))?;
        let out = Cmd::new(prog).args(args).output()?;
        Ok(CommandRecord {
            code: out.code.unwrap_or(-1),
            stdout: out.stdout_str(),
            stderr: out.stderr,
        })
    }
}

/// Everything a probe read, keyed by path or command line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub files: BTreeMap<String, Option<String>>,
    pub dirs: BTreeMap<String, Vec<String>>,
    pub links: BTreeMap<String, Option<String>>,
    pub commands: BTreeMap<String, CommandRecord>,
}

impl Recording {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading probe recording {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not a luksify probe recording", path.display()))
    }
}

/// Wraps a source and writes down everything read through it.
pub struct Recorder<S> {
    pub inner: S,
    pub recording: Recording,
}

impl<S: Source> Source for Recorder<S> {
    fn boot_view(&mut self, root: &str, vg: &str, lv: &str) -> Option<Vec<super::FsAccess>> {
        self.inner.boot_view(root, vg, lv)
    }

    fn read(&mut self, path: &str) -> Option<String> {
        let v = self.inner.read(path);
        self.recording.files.insert(path.into(), v.clone());
        v
    }

    fn list(&mut self, dir: &str) -> Vec<String> {
        let v = self.inner.list(dir);
        self.recording.dirs.insert(dir.into(), v.clone());
        v
    }

    fn canonical(&mut self, path: &str) -> Option<String> {
        let v = self.inner.canonical(path);
        self.recording.links.insert(path.into(), v.clone());
        v
    }

    fn run(&mut self, argv: &[&str]) -> Result<CommandRecord> {
        let v = self.inner.run(argv)?;
        self.recording.commands.insert(argv.join(" "), v.clone());
        Ok(v)
    }
}

/// Answers from a recording; anything the recording lacks is absent, and a
/// command it lacks is an error, so a replay cannot silently probe the host.
pub struct Replay(pub Recording);

impl Source for Replay {
    fn read(&mut self, path: &str) -> Option<String> {
        self.0.files.get(path).cloned().flatten()
    }

    fn list(&mut self, dir: &str) -> Vec<String> {
        self.0.dirs.get(dir).cloned().unwrap_or_default()
    }

    fn canonical(&mut self, path: &str) -> Option<String> {
        self.0.links.get(path).cloned().flatten()
    }

    fn run(&mut self, argv: &[&str]) -> Result<CommandRecord> {
        let key = argv.join(" ");
        self.0
            .commands
            .get(&key)
            .cloned()
            .ok_or_else(|| anyhow!("the recording has no output for `{key}`"))
    }
}

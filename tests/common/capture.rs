//! Turns a VM capture (vm-tests/fixtures/<state>/, see its README) into a
//! probe Recording, so the real probe code replays what a real guest showed.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use luksify::probe::Snapshot;
use luksify::probe::collect::collect;
use luksify::probe::source::{CommandRecord, Recording, Replay};

pub fn dir(state: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("vm-tests/fixtures")
        .join(state)
}

fn read(p: &Path) -> Option<String> {
    fs::read_to_string(p).ok()
}

pub fn recording(state: &str) -> Recording {
    let d = dir(state);
    let mut r = Recording::default();
    let codes: BTreeMap<String, i32> = read(&d.join("exit-codes"))
        .expect("exit-codes")
        .lines()
        .filter_map(|l| l.rsplit_once(' '))
        .map(|(f, c)| (f.to_string(), c.parse().unwrap()))
        .collect();
    for line in read(&d.join("commands")).expect("commands").lines() {
        let (file, cmd) = line.split_once('\t').expect("file TAB command");
        r.commands.insert(
            cmd.to_string(),
            CommandRecord {
                code: codes[file],
                stdout: read(&d.join(file)).unwrap_or_default(),
                stderr: read(&d.join(format!("{file}.stderr"))).unwrap_or_default(),
            },
        );
    }
    r.files
        .insert("/proc/self/mountinfo".into(), read(&d.join("mountinfo")));
    let sys = d.join("sys/block");
    let mut names: Vec<String> = fs::read_dir(&sys)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    r.dirs.insert("/sys/block".into(), names.clone());
    for name in names {
        let base = format!("/sys/block/{name}");
        let local = sys.join(&name);
        r.links.insert(
            base.clone(),
            read(&local.join("readlink-f")).map(|s| s.trim().to_string()),
        );
        r.dirs.insert(
            format!("{base}/slaves"),
            read(&local.join("slaves.ls"))
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.is_empty())
                .map(String::from)
                .collect(),
        );
        let mut children = Vec::new();
        for e in walk(&local) {
            let rel = e
                .strip_prefix(&local)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == "readlink-f" || rel == "slaves.ls" {
                continue;
            }
            r.files.insert(format!("{base}/{rel}"), read(&e));
            if let Some((child, _)) = rel.split_once('/')
                && child.starts_with(&name)
                && !children.contains(&child.to_string())
            {
                children.push(child.to_string());
            }
        }
        children.sort();
        r.dirs.insert(base, children);
    }
    r
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(d).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The probe's view of a captured state (without looking inside the target).
pub fn snapshot(state: &str) -> Snapshot {
    collect(&mut Replay(recording(state)), false).expect("probe replays the capture")
}

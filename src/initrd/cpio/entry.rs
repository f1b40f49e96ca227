//! One archive member as the image model keeps it.

use std::ops::Range;

use super::newc::{Header, TRAILER};

pub const S_IFMT: u32 = 0o170000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFLNK: u32 = 0o120000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Char,
    Block,
    Fifo,
    Socket,
    Unknown,
}

impl Kind {
    pub fn of_mode(mode: u32) -> Kind {
        match mode & S_IFMT {
            S_IFREG => Kind::File,
            S_IFDIR => Kind::Dir,
            S_IFLNK => Kind::Symlink,
            0o020000 => Kind::Char,
            0o060000 => Kind::Block,
            0o010000 => Kind::Fifo,
            0o140000 => Kind::Socket,
            _ => Kind::Unknown,
        }
    }
}

/// Where an entry's bytes live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Read from the image: the whole record (header to padding) and its data,
    /// as ranges into the owning segment's decompressed bytes. Written back
    /// verbatim while untouched.
    Original {
        record: Range<usize>,
        data: Range<usize>,
    },
    /// Made in memory: file content or symlink target.
    New(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The name exactly as stored (not normalized, may be any bytes).
    pub name: Vec<u8>,
    pub header: Header,
    pub body: Body,
}

impl Entry {
    pub fn kind(&self) -> Kind {
        Kind::of_mode(self.header.mode)
    }

    pub fn is_trailer(&self) -> bool {
        self.name == TRAILER
    }

    /// In newc only the last link of a hard-link set carries the data.
    pub fn is_hard_link(&self) -> bool {
        self.kind() == Kind::File && self.header.nlink > 1
    }

    pub fn name_lossy(&self) -> String {
        String::from_utf8_lossy(&self.name).into_owned()
    }
}

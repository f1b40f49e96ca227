//! Thin typed doors to the outside world. Nothing in here decides anything.

pub mod atomic_file;
pub mod luks;
pub mod process;
pub mod secret;

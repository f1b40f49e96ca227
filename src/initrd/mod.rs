//! placeholder
pub mod elf;
pub mod kmod;

//! luksify: move an existing LVM root onto LUKS without reinstalling.
//!
//! Data flows one way: [`probe`] looks at the machine and produces a
//! [`probe::Snapshot`]; [`plan`] turns a snapshot and the person's choices into a
//! [`plan::Plan`] (or refuses); [`exec`] renders or runs that plan. [`sys`] holds
//! the thin doors to the outside world, [`initrd`] and [`boot`] the engines for
//! initramfs images and boot configuration.

pub mod app;
pub mod boot;
pub mod cli;
pub mod exec;
pub mod initrd;
pub mod plan;
pub mod probe;
pub mod sys;
pub mod wizard;

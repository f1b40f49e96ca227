//! QEMU harness: the proof that a migrated machine boots.

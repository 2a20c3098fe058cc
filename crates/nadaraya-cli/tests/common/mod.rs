//! What the command's integration tests share: the binary and fresh temporary folders.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// `nadaraya` with `args` (the subcommand first), ready for more.
pub fn nadaraya(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_nadaraya"));
    c.args(args);
    c
}

/// `nadaraya` with `args`, run to completion.
pub fn run(args: &[&str]) -> Output {
    nadaraya(args).output().unwrap()
}

/// A fresh, empty temporary folder `nadaraya-TAG-PID-N` (`N` counts the calls).
pub fn scratch(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("nadaraya-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A file `name` holding `text`, in a fresh [`scratch`] folder.
pub fn file(tag: &str, name: &str, text: &str) -> PathBuf {
    let p = scratch(tag).join(name);
    std::fs::write(&p, text).unwrap();
    p
}

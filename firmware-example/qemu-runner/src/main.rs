//! Host side of the firmware example.
//!
//! `qemu-runner [--timeout SECS] [--machine NAME] [--icount SHIFT] ELF` starts
//! `qemu-system-arm` on `ELF` with semihosting on stdout, decodes the defmt frames it prints,
//! and exits with QEMU's exit code. A hang (no exit within the timeout) exits 124, a malformed
//! defmt frame exits 3: `defmt-print` would exit 0 in both cases.
//!
//! `qemu-runner size ELF` prints the Berkeley-style `text data bss` footprint of `ELF`.

use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use defmt_decoder::{DecodeError, Table};
use defmt_parser::Level;
use object::{Object, ObjectSection, SectionFlags, SectionKind};

/// Exit code for a run that did not finish in time (as `timeout(1)`).
const EXIT_TIMEOUT: u8 = 124;
/// Exit code for a malformed defmt frame or a usage error.
const EXIT_MALFORMED: u8 = 3;

struct Options {
    timeout: Duration,
    machine: String,
    icount: Option<String>,
    elf: String,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: qemu-runner [--timeout SECS] [--machine NAME] [--icount SHIFT] ELF\n       \
         qemu-runner size ELF"
    );
    ExitCode::from(EXIT_MALFORMED)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("size") {
        return match args.get(1) {
            Some(elf) => size(elf),
            None => usage(),
        };
    }
    let mut opts = Options {
        timeout: Duration::from_secs(
            std::env::var("QEMU_RUNNER_TIMEOUT")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(60),
        ),
        machine: std::env::var("QEMU_MACHINE").unwrap_or_else(|_| "mps2-an386".into()),
        icount: std::env::var("QEMU_ICOUNT").ok().filter(|s| !s.is_empty()),
        elf: String::new(),
    };
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--timeout" => match it.next().and_then(|s| s.parse().ok()) {
                Some(s) => opts.timeout = Duration::from_secs(s),
                None => return usage(),
            },
            "--machine" => match it.next() {
                Some(m) => opts.machine = m,
                None => return usage(),
            },
            "--icount" => match it.next() {
                Some(s) => opts.icount = Some(s),
                None => return usage(),
            },
            _ if opts.elf.is_empty() && !a.starts_with("--") => opts.elf = a,
            _ => return usage(),
        }
    }
    if opts.elf.is_empty() {
        return usage();
    }
    run(&opts)
}

fn run(opts: &Options) -> ExitCode {
    let elf = match std::fs::read(&opts.elf) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("qemu-runner: cannot read {}: {e}", opts.elf);
            return ExitCode::from(EXIT_MALFORMED);
        }
    };
    let table = match Table::parse(&elf) {
        Ok(Some(t)) => t,
        Ok(None) => {
            eprintln!("qemu-runner: {} has no defmt table", opts.elf);
            return ExitCode::from(EXIT_MALFORMED);
        }
        Err(e) => {
            eprintln!("qemu-runner: bad defmt table in {}: {e}", opts.elf);
            return ExitCode::from(EXIT_MALFORMED);
        }
    };

    let mut cmd = Command::new("qemu-system-arm");
    cmd.args(["-machine", &opts.machine, "-nographic", "-monitor", "none"])
        .args([
            "-serial",
            "null",
            "-semihosting-config",
            "enable=on,target=native",
        ]);
    if let Some(shift) = &opts.icount {
        cmd.args(["-icount", &format!("shift={shift},align=off,sleep=off")]);
    }
    cmd.args(["-kernel", &opts.elf])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "qemu-runner: cannot start qemu-system-arm ({e}); install it with \
                 `apt-get install -y --no-install-recommends qemu-system-arm`"
            );
            return ExitCode::from(EXIT_MALFORMED);
        }
    };
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let deadline = Instant::now() + opts.timeout;
    let mut decoder = table.new_stream_decoder();
    let out = std::io::stdout();
    let mut out = out.lock();
    let mut failure: Option<u8> = None;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(bytes) => {
                decoder.received(&bytes);
                loop {
                    match decoder.decode() {
                        Ok(frame) => {
                            let prefix = match frame.level() {
                                Some(Level::Error) => "ERROR ",
                                Some(Level::Warn) => "WARN  ",
                                _ => "",
                            };
                            let _ = writeln!(out, "{prefix}{}", frame.display_message());
                        }
                        Err(DecodeError::UnexpectedEof) => break,
                        Err(DecodeError::Malformed) => {
                            eprintln!("qemu-runner: malformed defmt frame");
                            failure = Some(EXIT_MALFORMED);
                            break;
                        }
                    }
                }
                if failure.is_some() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                eprintln!(
                    "qemu-runner: timeout: {} did not exit within {} s",
                    opts.elf,
                    opts.timeout.as_secs()
                );
                failure = Some(EXIT_TIMEOUT);
                break;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = out.flush();
    if let Some(code) = failure {
        let _ = child.kill();
        let _ = child.wait();
        return ExitCode::from(code);
    }
    // stdout closed: QEMU is exiting; it still gets the rest of the timeout to do so.
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let code = status.code().unwrap_or(1);
                return ExitCode::from(u8::try_from(code).unwrap_or(1));
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                eprintln!("qemu-runner: timeout waiting for QEMU to exit");
                return ExitCode::from(EXIT_TIMEOUT);
            }
        }
    }
}

/// Berkeley-style footprint: `text` is every allocated read-only section (code, vector table,
/// constants), `data` every allocated writable section with contents (it also occupies flash
/// for its initial values), `bss` every allocated section without contents.
fn size(path: &str) -> ExitCode {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("qemu-runner: cannot read {path}: {e}");
            return ExitCode::from(EXIT_MALFORMED);
        }
    };
    let file = match object::File::parse(&*bytes) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("qemu-runner: {path} is not an object file: {e}");
            return ExitCode::from(EXIT_MALFORMED);
        }
    };
    let (mut text, mut data, mut bss) = (0u64, 0u64, 0u64);
    for s in file.sections() {
        let SectionFlags::Elf { sh_flags } = s.flags() else {
            continue;
        };
        const SHF_WRITE: u64 = 1;
        const SHF_ALLOC: u64 = 2;
        if sh_flags & SHF_ALLOC == 0 {
            continue;
        }
        if matches!(s.kind(), SectionKind::UninitializedData) {
            bss += s.size();
        } else if sh_flags & SHF_WRITE != 0 {
            data += s.size();
        } else {
            text += s.size();
        }
    }
    println!("text={text} data={data} bss={bss}");
    ExitCode::SUCCESS
}

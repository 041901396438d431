//! OpenPGP messages (public-key or symmetric, binary or armored), decrypted by GnuPG's `gpg` as
//! a stream: the ciphertext on its stdin, the plaintext from its stdout, its status lines
//! (`--status-fd`) on stderr telling a key that is not the file's from a damaged file.
//!
//! Each run has a private home (`--homedir`, removed after, its agent stopped) holding only the
//! one secret key; a passphrase reaches gpg through a pipe (`--passphrase-fd`), never a command
//! line or a file. GnuPG rather than an OpenPGP crate: it is what the teams' backups were made
//! with, it is one Debian package, and the crates that read every OpenPGP message (sequoia,
//! rpgp) add minutes to a first build on two cores.

use std::io::{self, BufRead, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

use super::{DecryptError, Key, KeyError, Material, StreamError};
use crate::secret::Secret;

/// A private GnuPG home, its agent stopped when it is dropped.
struct Home(tempfile::TempDir);

impl Home {
    /// A fresh home, private to one decryption and removed with it; its path short, as
    /// gpg-agent's socket path must fit in a sockaddr_un.
    fn new() -> io::Result<Self> {
        tempfile::Builder::new().prefix("pgdrill-gpg").tempdir_in(std::env::temp_dir()).map(Home)
    }

    /// `gpg` in batch mode in this home, status lines on stderr.
    fn gpg(&self) -> Command {
        let mut command = Command::new("gpg");
        command
            .arg("--homedir")
            .arg(self.0.path())
            // Not --quiet: it silences status lines (NO_SECKEY) that say why a key does not open.
            .args(["--batch", "--no-tty", "--status-fd", "2", "--no-permission-warning"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }
}

impl Drop for Home {
    fn drop(&mut self) {
        if self.0.path().join("S.gpg-agent").exists() {
            let _ = Command::new("gpgconf")
                .arg("--homedir")
                .arg(self.0.path())
                .args(["--kill", "gpg-agent"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Runs `command` with `input` on its stdin; its status and stdout, stderr.
fn run(mut command: Command, input: &[u8]) -> io::Result<(bool, String, String)> {
    let mut child = command.spawn()?;
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output()?;
    let _ = feeder.join();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Ok((output.status.success(), text(&output.stdout), text(&output.stderr)))
}

/// The primary fingerprints of the secret keys in `secret` (read, not imported).
pub(super) fn fingerprints(secret: &Secret, from: &str) -> Result<Vec<String>, KeyError> {
    let home = Home::new().map_err(KeyError::Gpg)?;
    let mut command = home.gpg();
    command.args(["--with-colons", "--import-options", "show-only", "--import"]);
    let (ok, listing, said) = run(command, secret.expose().as_bytes()).map_err(KeyError::Gpg)?;
    let mut fingerprints = Vec::new();
    let mut primary = false;
    for line in listing.lines() {
        let fields: Vec<&str> = line.split(':').collect();
        match fields.first() {
            Some(&"sec") => primary = true,
            Some(&"fpr") if primary => {
                fingerprints.extend(fields.get(9).map(|f| (*f).to_owned()));
                primary = false;
            }
            _ => primary = false,
        }
    }
    if !ok || fingerprints.is_empty() {
        return Err(KeyError::OpenPgp { from: from.to_owned(), said: last_words(&said) });
    }
    Ok(fingerprints)
}

/// What an OpenPGP message is encrypted for, from its first bytes, when no key is given.
pub(super) fn describe(mut raw: Box<dyn BufRead + Send>) -> String {
    let mut head = Vec::new();
    let _ = (&mut raw).take(64 * 1024).read_to_end(&mut head);
    let said = Home::new().and_then(|home| {
        let mut command = home.gpg();
        command.args(["--pinentry-mode", "cancel", "--decrypt"]);
        run(command, &head)
    });
    match said {
        Ok((_, _, status)) => for_whom(&status),
        Err(_) => "OpenPGP".into(),
    }
}

/// "OpenPGP for key IDs A, B", "OpenPGP for a passphrase (symmetric)", from gpg's status lines.
fn for_whom(status: &str) -> String {
    let ids = key_ids(status);
    let symmetric = status.contains("[GNUPG:] NEED_PASSPHRASE_SYM");
    match (ids.is_empty(), symmetric) {
        (false, true) => format!("OpenPGP for key IDs {} and a passphrase", ids.join(", ")),
        (false, false) => format!("OpenPGP for key IDs {}", ids.join(", ")),
        (true, true) => "OpenPGP for a passphrase (symmetric)".into(),
        (true, false) => "OpenPGP".into(),
    }
}

/// The key IDs a message is encrypted to (`[GNUPG:] ENC_TO <id> ...`).
fn key_ids(status: &str) -> Vec<String> {
    status
        .lines()
        .filter_map(|l| l.strip_prefix("[GNUPG:] ENC_TO ")?.split_whitespace().next())
        .map(String::from)
        .collect()
}

/// gpg's last human line (not a status line).
fn last_words(stderr: &str) -> String {
    let line = stderr.lines().rev().find(|l| l.starts_with("gpg: ") && !l.contains("block_filter"));
    line.map(|l| l.trim_start_matches("gpg: ").to_owned()).unwrap_or_else(|| "no reason given".into())
}

/// The plaintext of the OpenPGP message read from `raw`, decrypted by gpg with `key`.
pub(super) fn open(raw: Box<dyn BufRead + Send>, key: &Key) -> Result<Box<dyn Read + Send>, DecryptError> {
    let home = Home::new().map_err(DecryptError::Gpg)?;
    let mut command = home.gpg();
    let passphrase = match &key.material {
        Material::OpenPgp { key: secret, unlock } => {
            let mut import = home.gpg();
            import.arg("--import");
            let (ok, _, said) = run(import, secret.expose().as_bytes()).map_err(DecryptError::Gpg)?;
            if !ok {
                return Err(DecryptError::NotForKey { key: key.public.clone(), why: last_words(&said) });
            }
            // A key with no passphrase given must not ask for one: gpg fails at once ("No
            // pinentry") instead of waiting for an answer.
            if unlock.is_none() {
                command.args(["--pinentry-mode", "error"]);
            }
            unlock.as_ref()
        }
        Material::Passphrase(secret) => Some(secret),
        Material::Unopened(why) => {
            return Err(DecryptError::NotForKey { key: key.public.clone(), why: why.clone() });
        }
        Material::Age(_) => {
            return Err(DecryptError::WrongKind {
                key: key.public.clone(),
                envelope: "an OpenPGP message, not an age file".into(),
            });
        }
    };
    let passphrase_pipe = match passphrase {
        Some(secret) => Some(give_passphrase(&mut command, secret).map_err(DecryptError::Gpg)?),
        None => None,
    };
    command.arg("--decrypt");
    let mut child = command.spawn().map_err(DecryptError::Gpg)?;
    drop(passphrase_pipe);
    let mut stdin = child.stdin.take().expect("piped");
    let mut raw = raw;
    let feeder = std::thread::spawn(move || io::copy(&mut raw, &mut stdin).map(drop));
    let mut err = child.stderr.take().expect("piped");
    let stderr = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    let stdout = child.stdout.take().expect("piped");
    let passphrase = matches!(key.material, Material::Passphrase(_));
    let unlocked = matches!(&key.material, Material::OpenPgp { unlock: Some(_), .. });
    Ok(Box::new(GpgStream {
        child,
        stdout,
        feeder: Some(feeder),
        stderr: Some(stderr),
        _home: home,
        key: key.public.clone(),
        passphrase,
        unlocked,
        plaintext: 0,
    }))
}

/// Gives gpg `secret` on a pipe (`--pinentry-mode loopback --passphrase-fd N`), never on its
/// command line nor in a file; the pipe's read end, to drop once gpg started.
fn give_passphrase(command: &mut Command, secret: &Secret) -> io::Result<io::PipeReader> {
    let (reader, mut writer) = io::pipe()?;
    writer.write_all(secret.expose().as_bytes())?;
    drop(writer);
    let fd = reader.as_raw_fd();
    command.args(["--pinentry-mode", "loopback"]).arg("--passphrase-fd").arg(fd.to_string());
    // SAFETY: fcntl is async-signal-safe; it only clears close-on-exec on the pipe's read end,
    // open until gpg started, so that gpg inherits it.
    unsafe {
        command.pre_exec(move || {
            let reader = std::os::fd::BorrowedFd::borrow_raw(fd);
            Ok(rustix::io::fcntl_setfd(reader, rustix::io::FdFlags::empty())?)
        });
    }
    Ok(reader)
}

/// gpg's plaintext; at its end, gpg's verdict.
struct GpgStream {
    child: Child,
    stdout: ChildStdout,
    feeder: Option<JoinHandle<io::Result<()>>>,
    stderr: Option<JoinHandle<String>>,
    _home: Home,
    key: String,
    passphrase: bool,
    /// A secret key given with the passphrase that unlocks it.
    unlocked: bool,
    plaintext: u64,
}

impl Read for GpgStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.stdout.read(buf)?;
        if n > 0 || buf.is_empty() {
            self.plaintext += n as u64;
            return Ok(n);
        }
        let Some(stderr) = self.stderr.take() else { return Ok(0) };
        let status = self.child.wait()?;
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
        let said = stderr.join().unwrap_or_default();
        if status.success() && said.contains("[GNUPG:] DECRYPTION_OKAY") && !said.contains("[GNUPG:] BADMDC") {
            return Ok(0);
        }
        Err(self.verdict(&said).into_io())
    }
}

impl GpgStream {
    /// Why gpg failed, from its status lines.
    fn verdict(&self, said: &str) -> StreamError {
        let key = self.key.clone();
        let opened = said.contains("[GNUPG:] DECRYPTION_KEY") || said.contains("[GNUPG:] DECRYPTION_INFO");
        let symmetric = said.contains("[GNUPG:] NEED_PASSPHRASE_SYM");
        let ids = key_ids(said);
        if said.contains("No pinentry") {
            let why =
                "the key is protected by a passphrase: give it as key_passphrase_env or key_passphrase_file".into();
            return StreamError::Key(DecryptError::NotForKey { key, why });
        }
        if self.unlocked && said.contains("Bad passphrase") {
            let why = "its key passphrase (key_passphrase_env or key_passphrase_file) does not unlock it".into();
            return StreamError::Key(DecryptError::NotForKey { key, why });
        }
        if said.contains("BAD_PASSPHRASE") {
            let why = "wrong passphrase (the message's session key does not open with it)".into();
            return StreamError::Key(DecryptError::NotForKey { key, why });
        }
        if self.passphrase && !symmetric {
            let envelope = format!("encrypted with {}, not with a passphrase", for_whom(said));
            return StreamError::Key(DecryptError::WrongKind { key, envelope });
        }
        let no_key = said.contains("[GNUPG:] NO_SECKEY") || said.contains("decryption failed: No secret key");
        if !self.passphrase && no_key && !said.contains("[GNUPG:] DECRYPTION_KEY") {
            let why = if ids.is_empty() {
                format!("the file is {}, not for this key", for_whom(said))
            } else {
                format!(
                    "the file is encrypted for key IDs {}, none of them this key's (it is for another recipient)",
                    ids.join(", ")
                )
            };
            return StreamError::Key(DecryptError::NotForKey { key, why });
        }
        if said.contains("problem reading source")
            || said.contains("unexpected EOF")
            || (!opened && self.plaintext == 0)
        {
            return StreamError::Truncated;
        }
        StreamError::Damaged { why: format!("gpg: {}", last_words(said)), plaintext: self.plaintext }
    }
}

impl Drop for GpgStream {
    fn drop(&mut self) {
        // Stopped early (a verify that found what it needed): gpg is not left running.
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_lines_say_for_whom() {
        let status = "[GNUPG:] ENC_TO 6C45AB8871A54D5B 18 0\ngpg: encrypted with ECDH key\n[GNUPG:] NO_SECKEY 6C45AB8871A54D5B\n";
        assert_eq!(super::for_whom(status), "OpenPGP for key IDs 6C45AB8871A54D5B");
        assert_eq!(super::for_whom("[GNUPG:] NEED_PASSPHRASE_SYM 9 3 2\n"), "OpenPGP for a passphrase (symmetric)");
        assert_eq!(
            super::last_words("gpg: one\n[GNUPG:] X\ngpg: decryption failed: No secret key\n"),
            "decryption failed: No secret key"
        );
    }
}

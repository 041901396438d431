//! Watching a folder of this machine from outside while a drill runs: every name created under
//! it, at any depth, seen by inotify. A folder is watched before its listing is read, so no name
//! created in it is missed, however soon after the folder itself; an overflowed queue is said,
//! never taken for silence.

use std::collections::{BTreeSet, HashMap};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

/// What a watch saw.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// Every name created under the folder (files and folders, without their path).
    pub names: BTreeSet<String>,
    /// Events were lost: the kernel's queue overflowed.
    pub overflowed: bool,
}

/// A running watch of a folder and everything made under it, until [`Watch::stop`].
pub(crate) struct Watch {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Seen>,
}

impl Watch {
    /// Watches `root` (which exists) and every folder made under it.
    pub(crate) fn start(root: &Path) -> Watch {
        // SAFETY: inotify_init1 takes flags only.
        let fd = unsafe { libc::inotify_init1(libc::IN_CLOEXEC | libc::IN_NONBLOCK) };
        assert!(fd >= 0, "inotify: {}", std::io::Error::last_os_error());
        let mut watcher = Watcher { fd, dirs: HashMap::new(), seen: Seen::default() };
        watcher.add(root);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopping.load(Ordering::SeqCst) {
                watcher.read(100);
            }
            watcher.read(0);
            // SAFETY: the descriptor is this watcher's.
            unsafe { libc::close(watcher.fd) };
            watcher.seen
        });
        Watch { stop, thread }
    }

    /// Stops watching (what is queued is read first) and says what was seen.
    pub(crate) fn stop(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the watching thread")
    }
}

struct Watcher {
    fd: i32,
    /// Watch descriptors and the folders they watch.
    dirs: HashMap<i32, PathBuf>,
    seen: Seen,
}

impl Watcher {
    /// Watches `dir`, then records what it already holds (and watches its folders in turn).
    fn add(&mut self, dir: &Path) {
        let c = CString::new(dir.as_os_str().as_bytes()).unwrap();
        let mask = libc::IN_CREATE | libc::IN_MOVED_TO | libc::IN_ONLYDIR;
        // SAFETY: a C string and a descriptor of this watcher's.
        let wd = unsafe { libc::inotify_add_watch(self.fd, c.as_ptr(), mask) };
        if wd < 0 {
            // Gone already, or not a folder: nothing more can be made in it.
            return;
        }
        self.dirs.insert(wd, dir.to_owned());
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            self.seen.names.insert(entry.file_name().to_string_lossy().into_owned());
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                self.add(&entry.path());
            }
        }
    }

    /// Reads the events queued, waiting up to `timeout_ms` for the first.
    fn read(&mut self, timeout_ms: i32) {
        let mut poll = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd of this watcher's.
        if unsafe { libc::poll(&mut poll, 1, timeout_ms) } <= 0 {
            return;
        }
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            // SAFETY: reads into a buffer of the length given.
            let n = unsafe { libc::read(self.fd, buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                return;
            }
            let mut at = 0usize;
            while at < n as usize {
                // SAFETY: the kernel writes whole events; the header is read unaligned.
                let event: libc::inotify_event = unsafe { std::ptr::read_unaligned(buffer[at..].as_ptr().cast()) };
                let name_at = at + std::mem::size_of::<libc::inotify_event>();
                let name = &buffer[name_at..name_at + event.len as usize];
                let name = String::from_utf8_lossy(name.split(|b| *b == 0).next().unwrap_or_default()).into_owned();
                at = name_at + event.len as usize;
                if event.mask & libc::IN_Q_OVERFLOW != 0 {
                    self.seen.overflowed = true;
                }
                if name.is_empty() {
                    continue;
                }
                let dir = self.dirs.get(&event.wd).cloned();
                self.seen.names.insert(name.clone());
                if event.mask & libc::IN_ISDIR != 0
                    && let Some(dir) = dir
                {
                    self.add(&dir.join(name));
                }
            }
        }
    }
}

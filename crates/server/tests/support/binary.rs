//! Starting real processes for black-box tests: the `counterbook-server` binary (`RunningServer`,
//! which waits for its `counterbook-server listening on http://…` line), its admin CLI
//! (`run_admin`), and Google's Firestore emulator (`start_group`, also the primitive under
//! both). Every process runs in its own process group, and the whole group is killed when its
//! guard is dropped, also when a test panics, so nothing a test starts outlives it.
//!
//! Output: everything a process prints before it is ready is kept and shown if it never gets
//! ready; afterwards its lines go to the test's stderr (captured by the test harness and shown
//! for a failing test), and the pipes keep being drained so a process never blocks on them.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The server binary built for these tests.
pub const SERVER_BINARY: &str = env!("CARGO_BIN_EXE_counterbook-server");
/// Google's Firestore emulator as the Cloud SDK installs it.
pub const EMULATOR: &str =
    "/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud_firestore_emulator";
/// The server's first line of output, before its base URL.
pub const LISTENING_PREFIX: &str = "counterbook-server listening on ";
/// How long the server may take to print its address: a ceiling, not a wait.
const SERVER_START_LIMIT: Duration = Duration::from_secs(60);

/// A process in its own process group; the whole group is killed when this is dropped.
pub struct ProcessGroup {
    child: Child,
    what: String,
    /// Set once the process has been waited for (it exited or was killed on purpose).
    reaped: bool,
}

impl ProcessGroup {
    /// The process id (also the process group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL to the whole group, then waits: no shutdown, no flush, no checkpoint.
    pub fn kill_hard(mut self) {
        self.kill_group();
    }

    /// SIGTERM to the process (a graceful shutdown), then waits for it to exit.
    pub fn terminate(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -TERM {}", self.child.id());
        let exit = self.child.wait().expect("waiting for the process");
        self.reaped = true;
        exit
    }

    fn kill_group(&mut self) {
        if self.reaped {
            return;
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
        self.reaped = true;
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// Starts `program` in a new process group and returns once a line of its output (stdout or
/// stderr) contains `ready`, with that line. Panics, after killing the group, if the program
/// exits or stays silent past `limit`.
pub fn start_group(
    what: &str,
    program: &str,
    arguments: &[String],
    ready: &str,
    limit: Duration,
) -> (ProcessGroup, String) {
    let (group, line, _) = start_group_with_output(what, program, arguments, ready, limit);
    (group, line)
}

/// Like `start_group`, also returning the lines printed before the ready line.
pub fn start_group_with_output(
    what: &str,
    program: &str,
    arguments: &[String],
    ready: &str,
    limit: Duration,
) -> (ProcessGroup, String, Vec<String>) {
    let mut child = Command::new(program)
        .args(arguments)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start {what} ({program}): {error}"));
    let (lines, received) = mpsc::channel::<String>();
    let streams = [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ];
    let group = ProcessGroup {
        child,
        what: what.to_owned(),
        reaped: false,
    };
    for stream in streams {
        let lines = lines.clone();
        let what = group.what.clone();
        std::thread::spawn(move || {
            let mut ready_seen = false;
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if ready_seen {
                    eprintln!("[{what}] {line}");
                } else if lines.send(line.clone()).is_err() {
                    // Startup is over: the receiver is gone.
                    ready_seen = true;
                    eprintln!("[{what}] {line}");
                }
            }
        });
    }
    drop(lines);
    let mut output = Vec::new();
    loop {
        match received.recv_timeout(limit) {
            Ok(line) if line.contains(ready) => return (group, line, output),
            Ok(line) => output.push(line),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                drop(group);
                panic!(
                    "{what} did not get ready within {limit:?}:\n{}",
                    output.join("\n")
                )
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                drop(group);
                panic!("{what} exited before it was ready:\n{}", output.join("\n"))
            }
        }
    }
}

/// The base URL in the server's startup line.
pub fn listening_url(line: &str) -> Option<&str> {
    let (_, url) = line.split_once(LISTENING_PREFIX)?;
    Some(url.trim())
}

/// The real server binary, serving on a free loopback port.
pub struct RunningServer {
    pub group: ProcessGroup,
    /// `http://127.0.0.1:PORT`.
    pub base_url: String,
    /// What the server printed before its listening line (its setup code, if it has one).
    pub startup_output: Vec<String>,
}

impl RunningServer {
    /// `counterbook-server serve --addr 127.0.0.1:0 --data DIR` followed by `arguments`
    /// (`--dev`, or `--project P`, `--app DIST`, …), once it has printed its address.
    pub fn start(data_directory: &Path, arguments: &[&str]) -> RunningServer {
        let mut all_arguments: Vec<String> = vec![
            "serve".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--data".into(),
            data_directory.display().to_string(),
        ];
        all_arguments.extend(arguments.iter().map(|argument| argument.to_string()));
        let (group, line, startup_output) = start_group_with_output(
            "counterbook-server",
            SERVER_BINARY,
            &all_arguments,
            LISTENING_PREFIX,
            SERVER_START_LIMIT,
        );
        let base_url = listening_url(&line)
            .unwrap_or_else(|| panic!("unexpected startup line {line:?}"))
            .to_owned();
        RunningServer {
            group,
            base_url,
            startup_output,
        }
    }

    /// A dev-mode server (`--dev`: no authentication).
    pub fn start_dev(data_directory: &Path) -> RunningServer {
        RunningServer::start(data_directory, &["--dev"])
    }

    /// `127.0.0.1:PORT`, for raw TCP.
    pub fn address(&self) -> &str {
        self.base_url.trim_start_matches("http://")
    }

    /// The server process's id.
    pub fn id(&self) -> u32 {
        self.group.id()
    }

    /// SIGKILL, then waits.
    pub fn kill_hard(self) {
        self.group.kill_hard();
    }

    /// SIGTERM, then the exit status.
    pub fn terminate(self) -> ExitStatus {
        self.group.terminate()
    }
}

/// Runs the admin CLI (`shop create …`, `user add …`) on `data_directory` with `stdin` as its
/// input, and asserts that it succeeded.
pub fn run_admin(data_directory: &Path, arguments: &[&str], stdin: Option<&str>) {
    let mut child = Command::new(SERVER_BINARY)
        .args(arguments)
        .arg("--data")
        .arg(data_directory)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the admin CLI");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{arguments:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A TCP port that was free a moment ago (for the emulator, which cannot bind port 0).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The peak resident memory of a process so far (`VmHWM`), in KiB.
pub fn peak_resident_kib(process_id: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{process_id}/status"))
        .expect("reading /proc/PID/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

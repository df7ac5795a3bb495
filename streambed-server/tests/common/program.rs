//! The `streambed-server` program run as a child process, shared by the tests of the
//! binary: each used to start it, wait for its "listening on" line and keep its stderr in
//! a copy of its own.

use std::{
    io::{BufRead, BufReader},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

pub const PROGRAM: &str = env!("CARGO_BIN_EXE_streambed-server");

/// The program, running until dropped, with every line it has logged on stderr.
pub struct Program {
    pub child: Child,
    pub address: SocketAddr,
    lines: Arc<Mutex<Vec<String>>>,
    /// Lines `wait_for` has gone past.
    read: usize,
}

impl Program {
    /// The program with `args` on a free loopback port, over an in-memory log with one
    /// worker thread; returns once it listens.
    pub fn start(args: &[&str]) -> Self {
        let mut command = streambed_test::process::command(PROGRAM);
        command
            .args(["--listen", "127.0.0.1:0", "--backend", "memory"])
            .args(["--worker-threads", "1"])
            .args(args);
        Self::spawn(command)
    }

    /// Runs `command` (the program with all its flags) and returns once it listens.
    pub fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = Vec::new();
        let address = loop {
            let line = stderr
                .next()
                .unwrap_or_else(|| panic!("the program exited before listening:\n{seen:#?}"))
                .unwrap();
            // The address may be followed by more words, such as "(HTTPS)".
            let listening = line
                .split_once("listening on ")
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .map(|address| address.parse::<SocketAddr>().unwrap());
            seen.push(line);
            if let Some(address) = listening {
                break address;
            }
        };
        let read = seen.len();
        let lines = Arc::new(Mutex::new(seen));
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in stderr.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            address,
            lines,
            read,
        }
    }

    /// `path` on the program over plain HTTP.
    pub fn endpoint(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// `path` on the program over HTTPS, named as its test certificate names it.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.address.port())
    }

    pub fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Every line logged so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Every line logged so far, as one text.
    pub fn output(&self) -> String {
        self.lines().join("\n")
    }

    pub fn line_count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }

    /// The next line, after those this has returned before, that contains `text`
    /// (panics after 20 s).
    pub fn wait_for(&mut self, text: &str) -> String {
        let started = Instant::now();
        loop {
            {
                let lines = self.lines.lock().unwrap();
                if let Some(found) = lines[self.read..].iter().position(|l| l.contains(text)) {
                    self.read += found + 1;
                    return lines[self.read - 1].clone();
                }
                assert!(
                    started.elapsed() < Duration::from_secs(20),
                    "no line with {text:?}; logged:\n{}",
                    lines[self.read..].join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Waits until stderr has a line for which `wanted` holds, and returns every line
    /// (panics after 10 s).
    pub async fn lines_until(&self, wanted: impl Fn(&str) -> bool) -> Vec<String> {
        let started = Instant::now();
        loop {
            let lines = self.lines();
            if lines.iter().any(|line| wanted(line)) {
                return lines;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no such line on stderr:\n{}",
                lines.join("\n")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Sends `signal` (such as "-HUP") to the program.
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.pid()])
            .status()
            .unwrap();
        assert!(sent.success());
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

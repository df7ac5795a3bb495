//! The footprint of the edge build of the service after ingesting 10,000 readings from
//! 1,000 devices: its peak heap, its resident memory and the size of its binary. Run with
//! `cargo bench -p iot-service --bench rss`.
//!
//! Builds `iot-service` with the `edge` profile (opt-level "z", LTO, panic = "abort") and
//! the feature `heap-stats` (a counting global allocator), starts it on a temporary commit
//! log, sends the readings over UDP, waits until the last one is served over HTTP, then
//! reads the heap from `GET /api/heap` and the process's VmRSS and VmHWM.
//!
//! `IOT_SERVICE_BINARY=path` measures that binary instead (built with `heap-stats`), and
//! `IOT_SERVICE_RUNNER=program` runs it through an emulator: `scripts/edge-bench` measures
//! the `mipsel-unknown-linux-musl` build under `qemu-mipsel-static` this way. Under an
//! emulator the resident size is the emulator's, so only the heap is reported.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const READINGS: u32 = 10_000;
const DEVICES: u64 = 1_000;

/// Readings sent before the bench waits for the service to have taken them in: few enough
/// that a socket buffer holds them all, so that none is dropped however slow the service.
const PACE: u32 = 100;

fn main() {
    // `cargo bench` passes flags such as `--bench`; this program takes none.
    let binary = match std::env::var_os("IOT_SERVICE_BINARY") {
        Some(path) => PathBuf::from(path),
        None => build_edge_binary(),
    };
    let runner = std::env::var("IOT_SERVICE_RUNNER")
        .ok()
        .filter(|r| !r.is_empty());
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    println!(
        "binary: {} ({size} bytes, {:.2} MiB){}",
        binary.display(),
        size as f64 / 1048576.0,
        runner
            .as_deref()
            .map(|r| format!(", run under {r}"))
            .unwrap_or_default()
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut child = streambed_test::process::through(runner.as_deref(), &binary)
        .args(["--cl-root-path", dir.path().to_str().unwrap()])
        .args(["--http-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut http, mut udp): (Option<SocketAddr>, Option<SocketAddr>) = (None, None);
    while http.is_none() || udp.is_none() {
        let line = lines.next().expect("service output").unwrap();
        if let Some(a) = line.strip_prefix("HTTP listening on http://") {
            http = a.parse().ok();
        } else if let Some(a) = line.strip_prefix("UDP listening on ") {
            udp = a.parse().ok();
        }
    }
    let (http, udp) = (http.unwrap(), udp.unwrap());
    let native = runner.is_none();
    if native {
        println!("idle:            {}", memory(child.id()));
    }
    println!("idle:            {}", heap(http));

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    for i in 0..READINGS {
        let device = u64::from(i) % DEVICES;
        let datagram = postcard::to_allocvec(&(device, i)).unwrap();
        socket.send_to(&datagram, udp).unwrap();
        if i % PACE == PACE - 1 || i == READINGS - 1 {
            let deadline = Instant::now() + Duration::from_secs(60);
            while !served(http, device, i) {
                assert!(Instant::now() < deadline, "reading {i} never arrived");
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    }
    println!("ingested {READINGS} readings in {:?}", start.elapsed());
    if native {
        println!("after ingest:    {}", memory(child.id()));
    }
    println!("after ingest:    {}", heap(http));
    let _ = child.kill();
    let _ = child.wait();
    let on_disk: u64 = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.metadata().ok())
        .map(|m| m.len())
        .sum();
    println!("commit log on disk: {on_disk} bytes");

    // UDP may drop datagrams: count what the log really took in.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = streambed_logged::FileLog::new(dir.path());
    let offsets = runtime.block_on(streambed::commit_log::CommitLog::offsets(
        &log,
        "device-events".into(),
        0,
    ));
    let recorded = offsets.map_or(0, |o| o.end_offset + 1);
    println!("readings recorded in the log: {recorded} of {READINGS}");
}

/// Builds the service as a router runs it: the `edge` profile, linked statically. A
/// dynamically linked build also keeps the shared C library's pages (about 1.4 MiB of
/// glibc, libm and the loader on x86_64 Linux) in its resident set; a static one keeps
/// only the parts it calls, as the musl build for a router does.
fn build_edge_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let host = host_triple();
    let rustflags = streambed_test::process::target_variable(&host, "RUSTFLAGS");
    let output = Command::new(cargo)
        .args(["build", "--profile", "edge", "--target", &host])
        .args(["-p", "iot-service", "--bin", "iot-service"])
        .args(["--features", "heap-stats", "--message-format", "json"])
        // Only the target's units: build scripts and macros stay dynamic.
        .env(rustflags, "-C target-feature=+crt-static")
        .stderr(Stdio::inherit())
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "the edge build failed");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .rev()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo names the executable")
}

/// The triple of the machine this bench runs on, as rustc names it.
fn host_triple() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = Command::new(rustc).arg("-vV").output().expect("rustc runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .expect("rustc -vV names the host")
        .trim()
        .to_string()
}

fn served(http: SocketAddr, device: u64, reading: u32) -> bool {
    get(http, &format!("/api/database/events?id={device}"))
        .is_some_and(|body| body.contains(&format!("{{\"TemperatureRead\":{reading}}}")))
}

/// The body of the answer to `GET path`, or `None` when there is none.
fn get(http: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(http).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let mut response = String::new();
    stream.write_all(request.as_bytes()).ok()?;
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The service's heap, now and at its peak, from `GET /api/heap`.
fn heap(http: SocketAddr) -> String {
    let body = get(http, "/api/heap").expect("the service answers /api/heap (heap-stats)");
    let stats: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let kib = |name: &str| stats[name].as_u64().expect("a byte count") as f64 / 1024.0;
    format!(
        "heap {:.0} KiB (peak {:.0} KiB)",
        kib("current_bytes"),
        kib("peak_bytes")
    )
}

fn memory(pid: u32) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|line| line.starts_with(name))
            .map(|line| line[name.len()..].trim().to_string())
            .unwrap_or_else(|| "unknown".to_string())
    };
    format!("VmRSS {} (peak VmHWM {})", field("VmRSS:"), field("VmHWM:"))
}

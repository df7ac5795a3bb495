//! Resident memory of the edge build of the service after ingesting 10,000 readings, and
//! the size of its binary. Run with `cargo bench -p iot-service --bench rss`.
//!
//! Builds `iot-service` with the `edge` profile (opt-level "z", LTO, panic = "abort"),
//! starts it on a temporary commit log, sends readings from 1,000 devices over UDP, waits
//! until the last one is served over HTTP, then reads the process's VmRSS and VmHWM.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

const READINGS: u32 = 10_000;
const DEVICES: u64 = 1_000;

fn main() {
    // `cargo bench` passes flags such as `--bench`; this program takes none.
    let binary = build_edge_binary();
    let size = std::fs::metadata(&binary).map(|m| m.len()).unwrap_or(0);
    println!(
        "edge binary: {} ({:.2} MiB)",
        binary.display(),
        size as f64 / 1048576.0
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut child = Command::new(&binary)
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
    println!("idle:            {}", memory(child.id()));

    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let start = Instant::now();
    for i in 0..READINGS {
        let device = u64::from(i) % DEVICES;
        let datagram = postcard::to_allocvec(&(device, i)).unwrap();
        socket.send_to(&datagram, udp).unwrap();
        if i % 100 == 99 {
            // Let the single-threaded service drain its socket buffer.
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let last_device = u64::from(READINGS - 1) % DEVICES;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !served(http, last_device, READINGS - 1) {
        assert!(Instant::now() < deadline, "the last reading never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    println!("ingested {READINGS} readings in {:?}", start.elapsed());
    println!("after ingest:    {}", memory(child.id()));
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

fn build_edge_binary() -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = Command::new(cargo)
        .args([
            "build",
            "--profile",
            "edge",
            "-p",
            "iot-service",
            "--bin",
            "iot-service",
        ])
        .args(["--message-format", "json"])
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

fn served(http: SocketAddr, device: u64, reading: u32) -> bool {
    let Ok(mut stream) = TcpStream::connect(http) else {
        return false;
    };
    let request = format!(
        "GET /api/database/events?id={device} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    );
    let mut response = String::new();
    if stream.write_all(request.as_bytes()).is_err()
        || stream.read_to_string(&mut response).is_err()
    {
        return false;
    }
    response.contains(&format!("{{\"TemperatureRead\":{reading}}}"))
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

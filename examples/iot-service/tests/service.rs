//! Starts the service binary, sends it readings over UDP, queries them over HTTP, and
//! restarts it on the same commit log to see the same state rebuilt.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::{SocketAddr, TcpStream, UdpSocket},
    path::Path,
    process::{Child, Stdio},
    time::{Duration, Instant},
};

struct Service {
    child: Child,
    http: SocketAddr,
    udp: SocketAddr,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(root: &Path) -> Service {
    let mut child = streambed_test::process::command(env!("CARGO_BIN_EXE_iot-service"))
        .args(["--cl-root-path", root.to_str().unwrap()])
        .args(["--http-addr", "127.0.0.1:0", "--udp-addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut http, mut udp) = (None, None);
    while http.is_none() || udp.is_none() {
        let line = lines
            .next()
            .expect("the service exited before listening")
            .unwrap();
        if let Some(address) = line.strip_prefix("HTTP listening on http://") {
            http = Some(address.parse().unwrap());
        } else if let Some(address) = line.strip_prefix("UDP listening on ") {
            udp = Some(address.parse().unwrap());
        }
    }
    Service {
        child,
        http: http.unwrap(),
        udp: udp.unwrap(),
    }
}

fn get(address: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let mut stream = TcpStream::connect(address).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = &response[response.find("\r\n\r\n").unwrap() + 4..];
    (status, serde_json::from_str(body).unwrap())
}

fn temperatures(service: &Service, id: u64) -> Vec<u64> {
    let (status, body) = get(service.http, &format!("/api/database/events?id={id}"));
    assert_eq!(status, 200, "{body}");
    body.as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1]["TemperatureRead"].as_u64().unwrap())
        .collect()
}

/// Polls until the device has `expected`: UDP delivery is asynchronous.
fn await_temperatures(service: &Service, id: u64, expected: &[u64]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let got = temperatures(service, id);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "device {id}: expected {expected:?}, got {got:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(service: &Service, readings: &[(u64, u32)]) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for reading in readings {
        let datagram = postcard::to_allocvec(reading).unwrap();
        socket.send_to(&datagram, service.udp).unwrap();
        // Loopback UDP can drop datagrams when a receive buffer fills; pace them.
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn readings_are_served_and_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path());
    let readings: Vec<(u64, u32)> = (0..15).map(|i| (1, 20 + i)).chain([(2, 5)]).collect();
    send(&service, &readings);
    // Only the latest ten readings of a device are kept.
    let device_1: Vec<u64> = (25..35).collect();
    await_temperatures(&service, 1, &device_1);
    await_temperatures(&service, 2, &[5]);
    assert!(temperatures(&service, 3).is_empty());

    // Garbage datagrams are ignored without disturbing the service.
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(&[0xff; 40], service.udp).unwrap();
    socket.send_to(&[], service.udp).unwrap();
    let before: Vec<_> = [1, 2]
        .map(|id| get(service.http, &format!("/api/database/events?id={id}")))
        .into();
    drop(service);

    // The rebuilt state is the same to the last digit of every timestamp.
    let restarted = start(dir.path());
    let after: Vec<_> = [1, 2]
        .map(|id| get(restarted.http, &format!("/api/database/events?id={id}")))
        .into();
    assert_eq!(after, before);
    assert_eq!(temperatures(&restarted, 1), device_1);
    send(&restarted, &[(2, 6)]);
    await_temperatures(&restarted, 2, &[5, 6]);
}

#[test]
fn bad_queries_get_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    let service = start(dir.path());
    let (status, body) = get(service.http, "/api/database/events");
    assert_eq!(status, 400);
    assert_eq!(body["error"], "an id is required");
    let (status, body) = get(service.http, "/api/database/events?id=abc");
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().contains("whole number"));
}

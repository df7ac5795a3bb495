//! The server under load and abuse: many connections, slow and stalled clients, hostile
//! bodies and requests that would make it hold state per name. Every loop here is bounded
//! and stops by itself; memory is measured from /proc, of the server process where the
//! test runs the binary.

mod common;

use std::{
    net::SocketAddr,
    ops::Deref,
    time::{Duration, Instant},
};

use common::{
    program::{Program, PROGRAM},
    TestServer,
};
use futures_util::StreamExt;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use streambed::commit_log::{CommitLog, ProducerRecord, Topic};
use streambed_server::{memory::MemoryLog, ServerConfig};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    task::JoinSet,
};

/// Lets this process (and the servers it starts) hold a few thousand sockets.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: both calls only read or write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        let wanted = 8192.min(limit.rlim_max);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
}

/// Whether the server's resident memory is its own. Under an emulator (`scripts/edge-test`
/// runs these tests under qemu-mipsel) it is the emulator's, whose cache of translated
/// code grows with every new path the server takes: a memory bound tested there would
/// measure qemu, so those tests say so and check nothing.
fn resident_memory_is_the_servers() -> bool {
    match streambed_test::process::runner() {
        Some(runner) => {
            eprintln!("not measured: under {runner}, VmRSS is the emulator's");
            false
        }
        None => true,
    }
}

/// A `VmRSS`/`VmHWM`-style line of /proc/<pid>/status, in KiB.
fn memory_kib(pid: &str, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// The server binary, started on a free loopback port over a file log in a temporary
/// directory; its stderr lines are kept for inspection. Killed when dropped.
struct ServerProcess {
    program: Program,
    _root: tempfile::TempDir,
}

/// Flags that turn off the per-client quotas, for tests of one client's heavy use.
const UNLIMITED: &[&str] = &["--rate-limit", "0", "--max-streams-per-principal", "0"];

impl ServerProcess {
    fn start(extra_args: &[&str]) -> Self {
        raise_open_file_limit();
        let root = tempfile::tempdir().unwrap();
        let mut command = streambed_test::process::command(PROGRAM);
        command
            .args(["--listen", "127.0.0.1:0", "--worker-threads", "2"])
            .arg("--root-path")
            .arg(root.path())
            .args(extra_args);
        Self {
            program: Program::spawn(command),
            _root: root,
        }
    }
}

impl Deref for ServerProcess {
    type Target = Program;

    fn deref(&self) -> &Program {
        &self.program
    }
}

/// Sends one raw request on a new connection and reads the whole answer (the server
/// closes after it: the request says `Connection: close`).
async fn raw_exchange(address: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    answer
}

fn status_of(answer: &[u8]) -> u16 {
    let text = String::from_utf8_lossy(answer);
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .unwrap_or_else(|| panic!("not an HTTP answer: {text:?}"));
    status.parse().unwrap()
}

fn record(topic: &str, key: u64, value: Vec<u8>) -> ProducerRecord {
    ProducerRecord {
        topic: Topic::from(topic),
        headers: vec![],
        timestamp: None,
        key,
        value,
        partition: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_connections_open_at_once_are_all_served() {
    raise_open_file_limit();
    let config = ServerConfig {
        max_connections: 1100,
        ..ServerConfig::default()
    };
    let server = TestServer::start(MemoryLog::new(), config).await;
    let started = Instant::now();
    let mut connections = Vec::with_capacity(1000);
    for _ in 0..1000 {
        connections.push(TcpStream::connect(server.address).await.unwrap());
    }
    // Every connection is open before the first request is sent: all 1,000 are served
    // concurrently, none waits for another to close.
    let mut clients = JoinSet::new();
    for (i, mut stream) in connections.into_iter().enumerate() {
        clients.spawn(async move {
            let request = format!(
                "GET /topics/c{i}/partitions/0/offsets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let mut answer = Vec::new();
            stream.read_to_end(&mut answer).await.unwrap();
            status_of(&answer)
        });
    }
    let answered = tokio::time::timeout(Duration::from_secs(30), join_all(clients))
        .await
        .expect("not every connection answered within 30 s");
    assert_eq!(answered.len(), 1000);
    assert!(answered.iter().all(|&status| status == 404), "{answered:?}");
    eprintln!(
        "1,000 concurrent connections served in {:?}",
        started.elapsed()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_sending_headers_byte_by_byte_are_cut_off_without_starving_others() {
    let config = ServerConfig {
        header_read_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    };
    let server = TestServer::start(MemoryLog::new(), config).await;
    let address = server.address;
    let mut slow = JoinSet::new();
    for i in 0..100 {
        slow.spawn(async move {
            let mut stream = TcpStream::connect(address).await.unwrap();
            let started = Instant::now();
            let header = format!("GET /topics/s{i}/partitions/0/offsets HTTP/1.1\r\nX-Slow: ");
            let mut bytes = header.bytes().chain(std::iter::repeat(b'a'));
            let mut answer = [0; 512];
            // One byte every 50 ms, for at most 10 s: the headers never end.
            while started.elapsed() < Duration::from_secs(10) {
                let byte = [bytes.next().unwrap()];
                if stream.write_all(&byte).await.is_err() {
                    return Some(started.elapsed());
                }
                tokio::select! {
                    read = stream.read(&mut answer) => {
                        if matches!(read, Ok(0) | Err(_)) {
                            return Some(started.elapsed());
                        }
                    }
                    _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                }
            }
            None
        });
    }
    // A client that connects and sends nothing at all holds no slot for long either.
    let mut silent = TcpStream::connect(address).await.unwrap();

    let client = Client::new();
    let mut slowest = Duration::ZERO;
    for i in 0..20 {
        let asked = Instant::now();
        let response = client
            .get(server.endpoint(&format!("/topics/n{i}/partitions/0/offsets")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        slowest = slowest.max(asked.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        slowest < Duration::from_millis(900),
        "a request among slow clients took {slowest:?}"
    );

    while let Some(closed_after) = slow.join_next().await {
        let closed_after = closed_after
            .unwrap()
            .expect("a slow client kept its connection for 10 s");
        assert!(
            closed_after >= Duration::from_millis(900) && closed_after < Duration::from_secs(6),
            "cut off after {closed_after:?}"
        );
    }
    let mut nothing = [0; 16];
    let read = tokio::time::timeout(Duration::from_secs(6), silent.read(&mut nothing))
        .await
        .expect("a silent connection stayed open");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    server.stop().await;
}

#[tokio::test]
async fn a_body_declared_larger_than_the_limit_gets_413_without_being_sent() {
    let log = MemoryLog::new();
    let server = TestServer::start(log.clone(), ServerConfig::default()).await;
    // The client sends only the headers: the server answers without waiting for a GiB.
    let answer = raw_exchange(
        server.address,
        b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\
          Content-Type: application/json\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&answer), 413);
    assert!(String::from_utf8_lossy(&answer).contains("larger than 1048576 bytes"));

    // A body just over the limit, sent in full, is refused too and nothing is written.
    let body = format!(
        "{{\"records\": [{{\"topic\": \"t\", \"key\": 0, \"value\": \"{}\"}}]}}",
        "A".repeat(1024 * 1024)
    );
    let response = common::post(&server, "/topics/t", body).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_and_deeply_nested_json_get_400_and_the_server_carries_on() {
    let log = MemoryLog::new();
    let server = TestServer::start(log.clone(), ServerConfig::default()).await;
    let client = Client::new();
    let nested_arrays = "[".repeat(100_000).into_bytes();
    let nested_objects = "{\"a\":".repeat(50_000).into_bytes();
    let nested_value = format!(
        "{{\"records\": [{{\"topic\": \"t\", \"key\": 0, \"value\": {}}}]}}",
        "[".repeat(100_000)
    )
    .into_bytes();
    let mut invalid_topic = b"{\"records\": [{\"topic\": \"t".to_vec();
    invalid_topic.extend_from_slice(b"\xff\xfe\"");
    invalid_topic.extend_from_slice(b", \"key\": 0, \"value\": \"YQ==\"}]}");
    let mut invalid_consumer = b"{\"subscriptions\": [{\"topic\": \"".to_vec();
    invalid_consumer.extend_from_slice(b"\xc3\x28\"}]}");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("/topics/t", nested_arrays.clone()),
        ("/topics/t", nested_objects.clone()),
        ("/topics/t", nested_value),
        ("/topics/t", invalid_topic),
        ("/topics/t", b"\xff\xfe\xfd".to_vec()),
        ("/consumers/g", nested_arrays),
        ("/consumers/g", nested_objects),
        ("/consumers/g", invalid_consumer),
    ];
    for (path, body) in cases {
        let shown = String::from_utf8_lossy(&body[..body.len().min(40)]).into_owned();
        let response = client
            .post(server.endpoint(path))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path} {shown}");
        let reply: Value = response.json().await.unwrap();
        assert_eq!(reply["error_code"], 400, "{reply}");
    }

    // Invalid UTF-8 in the path, percent-encoded or raw, and in a header.
    for request in [
        &b"GET /topics/%FF%FE/partitions/0/offsets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        b"GET /topics/\xff\xfe/partitions/0/offsets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        b"GET /topics/t/partitions/0/offsets HTTP/1.1\r\nHost: x\r\nX-Bad: \xff\xfe\r\nConnection: close\r\n\r\n",
        b"POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Length: \xff\r\nConnection: close\r\n\r\n",
    ] {
        let answer = raw_exchange(server.address, request).await;
        let status = status_of(&answer);
        assert!(
            (400..500).contains(&status) || status == 404,
            "{}",
            String::from_utf8_lossy(&answer)
        );
    }

    let response = client
        .get(server.endpoint("/topics/t/partitions/0/offsets"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
    server.stop().await;
}

#[tokio::test]
async fn a_consumer_naming_50000_subscriptions_or_offsets_gets_one_400_and_no_log_lines() {
    // The body timeout raised: under an emulator, beside the other tests (a thousand live
    // consumers among them), 4 MB took more than a minute to arrive, and this test is about
    // what follows.
    let body_timeout = format!("{}s", 60 * streambed_test::process::slowdown());
    let server = ServerProcess::start(&[
        "--max-body-size",
        "4194304",
        "--body-read-timeout",
        &body_timeout,
    ]);
    let client = Client::new();
    let subscriptions: Vec<Value> = (0..50_000)
        .map(|i| json!({"topic": format!("t{i}")}))
        .collect();
    let offsets: Vec<Value> = (0..50_000)
        .map(|i| json!({"topic": "t", "partition": 1, "offset": i}))
        .collect();
    let same_topic: Vec<Value> = (0..50_000).map(|_| json!({"topic": "t"})).collect();
    let cases = [
        (
            json!({"subscriptions": subscriptions}),
            "at most 64 subscriptions; this one names 50000",
        ),
        (
            json!({"subscriptions": [{"topic": "t"}], "offsets": offsets}),
            "at most 64 offsets; this one names 50000",
        ),
        (
            json!({"subscriptions": same_topic[..64]}),
            "\"t\" is subscribed to more than once",
        ),
        (
            json!({"subscriptions": same_topic}),
            "at most 64 subscriptions",
        ),
    ];
    // Quick natively; under an emulator (tens of times slower, and slower still on a busy
    // machine) sending and reading 4 MB of JSON alone can take a minute. Work per entry
    // that grew with the entries' count squared (billions of steps) would still take far
    // longer there.
    let bound = match streambed_test::process::runner() {
        Some(_) => Duration::from_secs(300),
        None => Duration::from_secs(5),
    };
    let lines_before = server.line_count();
    for (consumer, message) in cases {
        let asked = Instant::now();
        let response = client
            .post(server.endpoint("/consumers/g"))
            .json(&consumer)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let reply: Value = response.json().await.unwrap();
        assert!(
            reply["message"].as_str().unwrap().contains(message),
            "{reply}"
        );
        assert!(
            asked.elapsed() < bound,
            "refused only after {:?}",
            asked.elapsed()
        );
    }
    assert_eq!(server.line_count(), lines_before);
    let peak = memory_kib(&server.pid(), "VmHWM:");
    eprintln!("server peak RSS after 50,000-entry consumers: {peak} KiB");
}

/// Splits `names` in four and runs `client` on each quarter at once, answering what each
/// quarter's client answered: the memory tests' load comes from four connections.
async fn in_four_clients<F, Fut>(names: std::ops::Range<usize>, client: F) -> Vec<Fut::Output>
where
    F: Fn(std::ops::Range<usize>) -> Fut,
    Fut: std::future::Future + Send + 'static,
    Fut::Output: Send + 'static,
{
    let per_client = names.len() / 4;
    let mut clients = JoinSet::new();
    for c in 0..4 {
        let start = names.start + c * per_client;
        clients.spawn(client(start..start + per_client));
    }
    join_all(clients).await
}

/// What every task of `tasks` answered, in the order they ended; a task's panic fails the
/// test.
async fn join_all<T: 'static>(mut tasks: JoinSet<T>) -> Vec<T> {
    let mut answers = Vec::new();
    while let Some(answer) = tasks.join_next().await {
        answers.push(answer.unwrap());
    }
    answers
}

/// Sends `GET …/offsets` for every name over one keep-alive connection, `window`
/// requests at a time, and counts the answers with status 404.
async fn offsets_of_unknown_topics(
    address: SocketAddr,
    names: std::ops::Range<usize>,
    window: usize,
) -> usize {
    let mut stream = TcpStream::connect(address).await.unwrap();
    let mut not_found = 0;
    let mut requests = Vec::new();
    let mut buffer = vec![0; 64 * 1024];
    let names: Vec<usize> = names.collect();
    for batch in names.chunks(window) {
        requests.clear();
        for i in batch {
            requests.extend_from_slice(
                format!("GET /topics/abuse-{i}/partitions/0/offsets HTTP/1.1\r\nHost: x\r\n\r\n")
                    .as_bytes(),
            );
        }
        stream.write_all(&requests).await.unwrap();
        // Counts status lines, keeping a tail in case one straddles two reads.
        let mut answered = 0;
        let mut carried = Vec::new();
        while answered < batch.len() {
            let read = stream.read(&mut buffer).await.unwrap();
            assert_ne!(read, 0, "the server closed the connection");
            carried.extend_from_slice(&buffer[..read]);
            let mut consumed = 0;
            while let Some(at) = find(&carried[consumed..], b"HTTP/1.1 ") {
                let start = consumed + at;
                if carried.len() < start + 12 {
                    break;
                }
                answered += 1;
                if &carried[start + 9..start + 12] == b"404" {
                    not_found += 1;
                }
                consumed = start + 12;
            }
            let keep = consumed.max(carried.len().saturating_sub(11));
            carried.drain(..keep);
        }
    }
    not_found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_the_offsets_of_30000_distinct_topics_leaves_the_server_memory_bounded() {
    if !resident_memory_is_the_servers() {
        return;
    }
    // 30,000 requests (one per name) keep this test short in debug builds; kept for ever,
    // their state would be about 40 MB. The subscription test below names 100,000.
    // Quotas off: this is about the log's state, not about one client's share of it.
    let server = ServerProcess::start(UNLIMITED);
    let (pid, address) = (server.pid(), server.address);
    let sweep = |from: usize, to: usize| async move {
        in_four_clients(from..to, |names| {
            offsets_of_unknown_topics(address, names, 250)
        })
        .await
        .into_iter()
        .sum::<usize>()
    };
    // A first sweep lets allocator arenas and buffers reach their working size.
    assert_eq!(sweep(0, 4_000).await, 4_000);
    let before = memory_kib(&pid, "VmRSS:");
    let started = Instant::now();
    assert_eq!(sweep(4_000, 34_000).await, 30_000);
    let elapsed = started.elapsed();
    let after = memory_kib(&pid, "VmRSS:");
    eprintln!(
        "30,000 distinct topics asked for in {elapsed:?} ({:.0} requests/s); server RSS \
         {before} KiB before, {after} KiB after",
        30_000.0 / elapsed.as_secs_f64()
    );
    assert!(
        after < before + 8 * 1024,
        "the server grew from {before} KiB to {after} KiB"
    );
}

/// Opens one consumer stream per batch of 50 names (`sub-<i>`), reads its response
/// headers and leaves.
async fn subscribe_and_leave(address: SocketAddr, names: std::ops::Range<usize>) {
    let names: Vec<usize> = names.collect();
    let mut buffer = vec![0; 4096];
    for batch in names.chunks(50) {
        let subscriptions: Vec<Value> = batch
            .iter()
            .map(|i| json!({"topic": format!("sub-{i}")}))
            .collect();
        let body = json!({ "subscriptions": subscriptions }).to_string();
        let request = format!(
            "POST /consumers/g HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut head = Vec::new();
        while find(&head, b"\r\n\r\n").is_none() {
            let read = stream.read(&mut buffer).await.unwrap();
            assert_ne!(read, 0, "the server closed the stream");
            head.extend_from_slice(&buffer[..read]);
        }
        assert_eq!(status_of(&head), 200);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribing_to_100000_distinct_topics_then_leaving_leaves_the_server_memory_bounded() {
    if !resident_memory_is_the_servers() {
        return;
    }
    let server = ServerProcess::start(UNLIMITED);
    let pid = server.pid();
    let sweep = |from: usize, to: usize| {
        in_four_clients(from..to, |names| subscribe_and_leave(server.address, names))
    };
    sweep(0, 10_000).await;
    let before = memory_kib(&pid, "VmRSS:");
    let started = Instant::now();
    sweep(10_000, 110_000).await;
    let elapsed = started.elapsed();
    let after = memory_kib(&pid, "VmRSS:");
    eprintln!(
        "100,000 distinct topics subscribed to (2,000 consumers of 50) in {elapsed:?}; server \
         RSS {before} KiB before, {after} KiB after"
    );
    assert!(
        after < before + 16 * 1024,
        "the server grew from {before} KiB to {after} KiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_live_consumers_each_receive_every_record() {
    raise_open_file_limit();
    let root = tempfile::tempdir().unwrap();
    let log = streambed_logged::FileLog::new(root.path());
    let config = ServerConfig {
        max_connections: 1100,
        ..ServerConfig::default()
    };
    let server = TestServer::start(log.clone(), config).await;
    let client = Client::new();
    let mut responses = Vec::with_capacity(1000);
    for i in 0..1000 {
        let response = client
            .post(server.endpoint(&format!("/consumers/g{i}")))
            .json(&json!({"subscriptions": [{"topic": "live"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        responses.push(response);
    }
    const RECORDS: u64 = 20;
    let started = Instant::now();
    let mut consumers = JoinSet::new();
    for response in responses {
        consumers.spawn(async move {
            let mut stream = response.bytes_stream();
            let mut pending = Vec::new();
            let mut offsets = Vec::new();
            while (offsets.len() as u64) < RECORDS {
                let chunk = stream.next().await.expect("stream ended").unwrap();
                pending.extend_from_slice(&chunk);
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if line.len() > 1 {
                        let record: Value = serde_json::from_slice(&line).unwrap();
                        offsets.push(record["offset"].as_u64().unwrap());
                    }
                }
            }
            offsets
        });
    }
    for key in 0..RECORDS {
        log.produce(record("live", key, key.to_be_bytes().to_vec()))
            .await
            .unwrap();
    }
    let received = tokio::time::timeout(Duration::from_secs(40), join_all(consumers))
        .await
        .expect("not every consumer got every record within 40 s");
    let expected: Vec<u64> = (0..RECORDS).collect();
    assert_eq!(received.len(), 1000);
    assert!(received.iter().all(|offsets| *offsets == expected));
    eprintln!(
        "{RECORDS} records delivered to each of 1,000 consumers in {:?}; test process peak \
         RSS {} KiB",
        started.elapsed(),
        memory_kib("self", "VmHWM:")
    );
    server.stop().await;
}

/// Opens a consumer stream with a tiny receive buffer and never reads it.
async fn stalled_consumer(address: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(address).await.unwrap();
    let body = br#"{"subscriptions": [{"topic": "big"}]}"#;
    let request = format!(
        "POST /consumers/stalled HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_disconnected_and_its_slot_freed() {
    let log = MemoryLog::new();
    // 32 MiB of records: far more than the socket buffers between server and client.
    const RECORDS: u64 = 64;
    for key in 0..RECORDS {
        log.produce(record("big", key, vec![b'x'; 512 * 1024]))
            .await
            .unwrap();
    }
    let config = ServerConfig {
        write_timeout: Duration::from_secs(1),
        max_connections: 2,
        // Idle keep-alive connections keep their slots for the whole test.
        header_read_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    };
    let server = TestServer::start(log, config).await;
    let mut stalled = [
        stalled_consumer(server.address).await,
        stalled_consumer(server.address).await,
    ];

    // Both slots are held by stalled consumers. Each client below gets its own connection
    // and keeps it, so the second is served only once the server has given up on both.
    let asked = Instant::now();
    let clients = [Client::new(), Client::new()];
    for client in &clients {
        let response = tokio::time::timeout(
            Duration::from_secs(20),
            client
                .get(server.endpoint("/topics/big/partitions/0/offsets"))
                .send(),
        )
        .await
        .expect("a stalled consumer kept its slot")
        .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.bytes().await.unwrap();
    }
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "served after {waited:?}"
    );
    eprintln!("both stalled consumers cut off within {waited:?}");

    // What reaches a stalled client once it reads again is what sat in the buffers when
    // it was cut off, then the end of the connection: far less than the whole topic.
    for (n, stream) in stalled.iter_mut().enumerate() {
        let mut received = 0;
        let mut buffer = vec![0; 256 * 1024];
        let ended = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                match stream.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(read) => received += read,
                }
            }
        })
        .await;
        assert!(
            ended.is_ok(),
            "stalled consumer {n} was never closed ({received} bytes received)"
        );
        assert!(
            received < 16 * 1024 * 1024,
            "a stalled consumer still received {received} bytes"
        );
        eprintln!("stalled consumer cut off after receiving {received} bytes");
    }
    server.stop().await;
}

#[tokio::test]
async fn a_body_that_stops_short_gets_408_once_the_body_timeout_passes_and_appends_nothing() {
    let config = ServerConfig {
        body_read_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let log = MemoryLog::new();
    let server = TestServer::start(log.clone(), config).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    let body = r#"{"records":[{"topic":"t","headers":[],"timestamp":null,"key":1,"value":"dg==","partition":0}]}"#;
    let head = format!(
        "POST /topics/t HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    // The headers and half the body, then nothing.
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let started = Instant::now();
    let mut answer = vec![0; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
        .await
        .expect("no answer within 10 s")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(250), "{answer}");
    assert_eq!(log.offsets(Topic::from("t"), 0).await, None);
}

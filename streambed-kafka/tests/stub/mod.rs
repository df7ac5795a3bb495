//! A hand-written HTTP/1.1 server for the client's tests: every byte it sends, and where
//! each response body chunk starts and ends, is up to the test.
#![allow(dead_code)]

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    task::JoinHandle,
};
use url::Url;

/// A request as the stub saw it.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub body: Vec<u8>,
}

pub async fn listen() -> (TcpListener, Url) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = server_url(listener.local_addr().unwrap());
    (listener, url)
}

pub fn server_url(address: SocketAddr) -> Url {
    Url::parse(&format!("http://{address}")).unwrap()
}

/// Reads one request (head, then a body of Content-Length bytes); `None` at end of input.
pub async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buffer = Vec::new();
    let head_end = loop {
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break end + 4;
        }
        let mut chunk = [0u8; 4096];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap().split(' ');
    let method = request_line.next().unwrap().to_owned();
    let path = request_line.next().unwrap().to_owned();
    let length: usize = lines
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(0, |(_, value)| value.trim().parse().unwrap());
    let mut body = buffer[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let read = stream.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..read]);
    }
    Some(Request { method, path, body })
}

/// Writes a whole JSON response and asks the client to close the connection.
pub async fn respond_json(stream: &mut TcpStream, status: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
}

/// A server that answers its first request with one JSON response, then stops.
pub async fn answer_once(status: &'static str, body: &'static str) -> (Url, JoinHandle<()>) {
    let (listener, url) = listen().await;
    let server = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        read_request(&mut stream).await.unwrap();
        respond_json(&mut stream, status, body).await;
    });
    (url, server)
}

/// Starts a chunked streaming response. The connection closes after it, so that each
/// connection of a test serves exactly one stream.
pub async fn start_stream(stream: &mut TcpStream) {
    stream
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    stream.flush().await.unwrap();
}

/// Sends one body chunk of a chunked response, exactly as given.
pub async fn send_chunk(stream: &mut TcpStream, data: &[u8]) {
    let mut frame = format!("{:x}\r\n", data.len()).into_bytes();
    frame.extend_from_slice(data);
    frame.extend_from_slice(b"\r\n");
    stream.write_all(&frame).await.unwrap();
    stream.flush().await.unwrap();
}

/// Ends a chunked response properly.
pub async fn end_stream(stream: &mut TcpStream) {
    stream.write_all(b"0\r\n\r\n").await.unwrap();
    stream.flush().await.unwrap();
}

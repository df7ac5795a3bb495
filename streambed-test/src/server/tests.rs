use std::{
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use futures_util::StreamExt;

use super::*;

fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// A GET under way of a server that answers with a [`Response::stream`]: the server, the
/// sender of the body, and the response as the client got it (its body still to come).
async fn streaming_get() -> (Server, BodySender, reqwest::Response) {
    let (body_tx, bodies) = std::sync::mpsc::channel();
    let body_tx = Mutex::new(body_tx);
    let server = http(move |_| {
        let (response, body) = Response::stream(StatusCode::OK);
        lock(&body_tx).send(body).unwrap();
        async move { response }
    });
    let response = get(&client(), &server.url()).await;
    let body = bodies.recv().unwrap();
    (server, body, response)
}

/// The answer to a GET of `url`, which must come.
async fn get(client: &reqwest::Client, url: &str) -> reqwest::Response {
    client.get(url).send().await.unwrap()
}

/// The body of a GET of `url`, which must answer.
async fn get_text(client: &reqwest::Client, url: &str) -> String {
    get(client, url).await.text().await.unwrap()
}

/// The body chunks of a GET of the server's root, as the client received them.
async fn received_chunks(server: &Server) -> Vec<reqwest::Result<Vec<u8>>> {
    get(&client(), &server.url())
        .await
        .bytes_stream()
        .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
        .collect()
        .await
}

#[tokio::test]
async fn answers_several_requests_on_one_connection() {
    static CALLS: AtomicUsize = AtomicUsize::new(0);
    let server = http(|request| async move {
        CALLS.fetch_add(1, Ordering::SeqCst);
        Response::new(StatusCode::OK).text(request.uri().path())
    });
    let client = client();
    for path in ["a", "b", "c"] {
        let response = get(&client, &format!("{}{path}", server.url())).await;
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        assert_eq!(response.text().await.unwrap(), format!("/{path}"));
    }
    assert_eq!(CALLS.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn hands_the_request_body_and_headers_to_the_handler() {
    let server = http(|request| async move {
        let token = request
            .headers()
            .get("x-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body = String::from_utf8(request.into_body()).unwrap();
        Response::json(&serde_json::json!({ "token": token, "body": body }))
    });
    let reply: serde_json::Value = client()
        .post(server.url())
        .header("x-token", "t1")
        .body("payload")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply,
        serde_json::json!({ "token": "t1", "body": "payload" })
    );
}

#[tokio::test]
async fn reads_a_chunked_request_body() {
    let server =
        http(|request| async move { Response::new(StatusCode::OK).bytes(request.into_body()) });
    let pieces = futures_util::stream::iter(vec![
        Ok::<_, std::io::Error>("hel".to_string()),
        Ok("lo".to_string()),
    ]);
    let response = client()
        .post(server.url())
        .body(reqwest::Body::wrap_stream(pieces))
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "hello");
}

#[tokio::test]
async fn delivers_chunks_where_the_test_split_them() {
    let server = http(|_| async {
        Response::new(StatusCode::OK)
            .chunks(["{\"a\"", ":1}{", "\"b\":2}"], Duration::from_millis(20))
    });
    let chunks: Vec<Vec<u8>> = received_chunks(&server)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        chunks,
        vec![b"{\"a\"".to_vec(), b":1}{".to_vec(), b"\"b\":2}".to_vec()]
    );
}

#[tokio::test]
async fn a_pause_between_chunks_delays_the_next_chunk() {
    let pause = Duration::from_millis(150);
    let server =
        http(move |_| async move { Response::new(StatusCode::OK).chunks(["a", "b", "c"], pause) });
    let started = std::time::Instant::now();
    let chunks = received_chunks(&server).await;
    assert_eq!(chunks.len(), 3);
    assert!(started.elapsed() >= 2 * pause, "{:?}", started.elapsed());
}

#[tokio::test]
async fn chunks_then_cut_delivers_the_chunks_then_breaks_the_body() {
    let server = http(|_| async {
        Response::new(StatusCode::OK).chunks_then(
            ["first", "", "second"],
            Duration::ZERO,
            AfterChunks::Cut,
        )
    });
    let chunks = received_chunks(&server).await;
    assert_eq!(chunks.len(), 3, "{chunks:?}");
    assert_eq!(chunks[0].as_ref().unwrap(), b"first");
    assert_eq!(chunks[1].as_ref().unwrap(), b"second");
    assert!(chunks[2].is_err());
}

#[tokio::test]
async fn chunks_then_hold_open_delivers_every_chunk_and_never_ends_the_body() {
    let server = http(|_| async {
        Response::new(StatusCode::OK).chunks_then(
            ["first", "second"],
            Duration::ZERO,
            AfterChunks::HoldOpen,
        )
    });
    let response = get(&client(), &server.url()).await;
    let mut stream = response.bytes_stream();
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"first");
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"second");
    let after = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(after.is_err(), "the body went on: {after:?}");
}

#[tokio::test]
async fn a_slow_handler_delays_the_answer_and_not_the_server() {
    let server = http(|request| async move {
        if request.uri().path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        Response::new(StatusCode::OK).text("quick")
    });
    let client = client();
    let slow = client.get(format!("{}slow", server.url())).send();
    let quick = client.get(server.url()).send();
    tokio::select! {
        _ = slow => panic!("the slow answer came first"),
        quick = quick => assert_eq!(quick.unwrap().text().await.unwrap(), "quick"),
    }
}

#[tokio::test]
async fn streams_chunks_as_the_test_sends_them_and_ends_when_the_sender_drops() {
    let (_server, body, response) = streaming_get().await;
    let mut stream = response.bytes_stream();
    assert!(body.send(&b"first"[..]));
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"first");
    assert!(body.send(&b"second"[..]));
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"second");
    drop(body);
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn abort_cuts_the_stream_and_the_client_sees_an_error() {
    let (_server, body, response) = streaming_get().await;
    let mut stream = response.bytes_stream();
    body.send(&b"partial"[..]);
    assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"partial");
    body.abort();
    assert!(matches!(stream.next().await, Some(Err(_))));
}

#[tokio::test]
async fn body_sender_notices_a_client_that_hangs_up() {
    let (_server, body, response) = streaming_get().await;
    drop(response);
    tokio::time::timeout(Duration::from_secs(5), body.closed())
        .await
        .expect("the server notices the client hung up");
    assert!(!body.send(&b"late"[..]));
}

#[tokio::test]
async fn drop_connection_gives_the_client_an_error() {
    let server = http(|_| async { Response::drop_connection() });
    assert!(client().get(server.url()).send().await.is_err());
}

#[tokio::test]
async fn stopping_closes_open_connections_and_the_port_can_be_reused() {
    let (server, _body, response) = streaming_get().await;
    let addr = server.addr();
    let mut stream = response.bytes_stream();
    server.stop();
    assert!(matches!(stream.next().await, Some(Err(_)) | None));
    assert!(client()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .is_err());

    let again = http_on(addr, |_| async {
        Response::new(StatusCode::OK).text("back")
    })
    .unwrap();
    assert_eq!(get_text(&client(), &again.url()).await, "back");
}

#[tokio::test]
async fn https_serves_a_certificate_the_client_can_trust() {
    let server = https(|_| async { Response::new(StatusCode::OK).text("secure") });
    let certificate = streambed::read_pem(server.certificate_pem().unwrap().as_bytes())
        .await
        .unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(certificate)
        .build()
        .unwrap();
    assert_eq!(get_text(&client, &server.url()).await, "secure");
    // Without trusting it, the same request fails verification.
    assert!(reqwest::Client::new()
        .get(server.url())
        .send()
        .await
        .is_err());
}

#[test]
#[should_panic(expected = "test server handler panicked: boom")]
fn a_handler_panic_fails_the_test_when_the_server_drops() {
    let runtime = crate::runtime::current_thread();
    let server = http(|_| async { panic!("boom") });
    let status = runtime.block_on(async { get(&client(), &server.url()).await.status() });
    assert_eq!(status, reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    drop(server);
}

#[test]
#[should_panic(expected = "request beyond the script: GET /again")]
fn a_request_beyond_the_script_fails_the_test_when_the_server_drops() {
    let runtime = crate::runtime::current_thread();
    let script = Script::new([Response::new(StatusCode::OK)]);
    let server = http(script.handler());
    runtime.block_on(async {
        let client = client();
        let first = get(&client, &server.url()).await;
        assert_eq!(first.status(), reqwest::StatusCode::OK);
        let again = get(&client, &format!("{}again", server.url())).await;
        assert_eq!(again.status(), reqwest::StatusCode::INTERNAL_SERVER_ERROR);
    });
    assert_eq!(script.requests().len(), 1);
    drop(server);
}

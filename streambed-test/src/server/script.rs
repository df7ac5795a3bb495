//! A handler that answers from a list fixed in advance, in order, or by the request's
//! number, and keeps every request it was asked: the setup of a test that checks both what
//! a client sent and how it took each answer (a refusal, a cut, a retry), without a
//! hand-written handler each time.

use std::{
    collections::VecDeque,
    fmt,
    future::{ready, Ready},
    sync::{Arc, Mutex},
};

use super::{lock, Request, Response};

/// Answers the n-th request with the n-th [`Response`] given (or with `answer(n)`, see
/// [`answering`](Self::answering)), and records the requests.
///
/// A request beyond the last answer panics in the handler, which fails the test when the
/// [`Server`](super::Server) drops: a client that asks more than the test expects is caught.
///
/// ```
/// use streambed_test::server::{self, Method, Response, Script, StatusCode};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let script = Script::new([
///     Response::drop_connection(),
///     Response::new(StatusCode::OK).text("second time lucky"),
/// ]);
/// let server = server::http(script.handler());
/// let client = reqwest::Client::new();
/// assert!(client.post(server.url()).body("hi").send().await.is_err());
/// let answer = client.post(server.url()).body("hi").send().await.unwrap();
/// assert_eq!(answer.text().await.unwrap(), "second time lucky");
///
/// let requests = script.requests();
/// assert_eq!(requests.len(), 2);
/// assert_eq!(requests[1].method(), Method::POST);
/// assert_eq!(requests[1].body(), b"hi");
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Script {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Debug)]
struct Shared {
    answers: Answers,
    requests: Vec<Request>,
}

enum Answers {
    Listed(VecDeque<Response>),
    Numbered(Box<dyn Fn(usize) -> Response + Send + Sync>),
}

impl fmt::Debug for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answers::Listed(answers) => f.debug_tuple("Listed").field(answers).finish(),
            Answers::Numbered(_) => f.write_str("Numbered"),
        }
    }
}

impl Script {
    /// A script of `answers`, given out in this order.
    pub fn new<I: IntoIterator<Item = Response>>(answers: I) -> Self {
        Self::with(Answers::Listed(answers.into_iter().collect()))
    }

    /// A script that answers the n-th request (from 0) with `answer(n)`, however many
    /// come: for a test of how often a client retries.
    ///
    /// ```
    /// use streambed_test::server::{self, Response, Script, StatusCode};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let script = Script::answering(|n| match n {
    ///     0 | 1 => Response::new(StatusCode::SERVICE_UNAVAILABLE),
    ///     _ => Response::new(StatusCode::OK),
    /// });
    /// let server = server::http(script.handler());
    /// let client = reqwest::Client::new();
    /// let mut statuses = Vec::new();
    /// for _ in 0..3 {
    ///     statuses.push(client.get(server.url()).send().await.unwrap().status());
    /// }
    /// assert_eq!(statuses, [503, 503, 200]);
    /// assert_eq!(script.requests().len(), 3);
    /// # }
    /// ```
    pub fn answering(answer: impl Fn(usize) -> Response + Send + Sync + 'static) -> Self {
        Self::with(Answers::Numbered(Box::new(answer)))
    }

    fn with(answers: Answers) -> Self {
        Self {
            shared: Arc::new(Mutex::new(Shared {
                answers,
                requests: Vec::new(),
            })),
        }
    }

    /// The handler to start a server with ([`http`](super::http()),
    /// [`http_on`](super::http_on), [`https`](super::https)); every clone of the script
    /// shares its answers and requests.
    pub fn handler(&self) -> impl Fn(Request) -> Ready<Response> + Send + Sync + 'static {
        let shared = Arc::clone(&self.shared);
        move |request: Request| {
            let mut shared = lock(&shared);
            let number = shared.requests.len();
            let answer = match &mut shared.answers {
                Answers::Listed(answers) => answers.pop_front(),
                Answers::Numbered(answer) => Some(answer(number)),
            };
            let Some(answer) = answer else {
                let asked = format!("{} {}", request.method(), request.uri());
                drop(shared);
                panic!("request beyond the script: {asked}");
            };
            shared.requests.push(request);
            ready(answer)
        }
    }

    /// Copies of the requests answered so far, in order (their extensions left out).
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared).requests.iter().map(copy).collect()
    }

    /// How many answers have not been asked for yet; `usize::MAX` for a script that is
    /// [`answering`](Self::answering) by number, which never runs out.
    pub fn remaining(&self) -> usize {
        match &lock(&self.shared).answers {
            Answers::Listed(answers) => answers.len(),
            Answers::Numbered(_) => usize::MAX,
        }
    }
}

fn copy(request: &Request) -> Request {
    let mut copy = Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    copy
}

//! Attaches the connection's [`Peer`] to every request it carries.
//!
//! A wrapper rather than a router layer: it is built once per connection, and adding a
//! layer to the router there would rebuild every route for every client.

use std::task::{Context, Poll};

use axum::{extract::Request, Router};
use tower_service::Service;

use crate::principal::Peer;

/// The router, serving one connection whose client is `peer`.
#[derive(Clone)]
pub(crate) struct WithPeer {
    router: Router,
    peer: Peer,
}

impl WithPeer {
    pub(crate) fn new(router: Router, peer: Peer) -> Self {
        Self { router, peer }
    }

    /// The client this connection serves.
    pub(crate) fn peer(&self) -> &Peer {
        &self.peer
    }
}

impl<B> Service<hyper::Request<B>> for WithPeer
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = <Router as Service<Request>>::Response;
    type Error = <Router as Service<Request>>::Error;
    type Future = <Router as Service<Request>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Service::<Request>::poll_ready(&mut self.router, cx)
    }

    fn call(&mut self, request: hyper::Request<B>) -> Self::Future {
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(self.peer.clone());
        self.router
            .call(Request::from_parts(parts, axum::body::Body::new(body)))
    }
}

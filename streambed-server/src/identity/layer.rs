//! The identity layer of the router: every request gets its [`Principal`] in its
//! extensions before any handler runs, or is refused.
//!
//! Added to the router only when identities are on, so that a server without them pays
//! nothing per request. A service of its own rather than `axum::middleware::from_fn`,
//! whose per-request plumbing (a boxed inner service and a second boxed future) cost as
//! much as the authentication itself: this one boxes one future, and a token found in the
//! cache is answered without waiting.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    extract::Request,
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Router,
};
use tower_layer::Layer;
use tower_service::Service;

use super::{Identities, Unauthenticated};
use crate::{api::ApiError, principal::Peer};

/// `router` with every request authenticated by `identities` first.
pub(crate) fn authenticated(router: Router, identities: Identities) -> Router {
    router.layer(Authenticated(Arc::new(identities)))
}

/// Wraps each route in [`Authenticate`].
#[derive(Clone)]
struct Authenticated(Arc<Identities>);

impl<S> Layer<S> for Authenticated {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            identities: Arc::clone(&self.0),
        }
    }
}

/// A route that runs only for requests with a principal.
#[derive(Clone)]
struct Authenticate<S> {
    inner: S,
    identities: Arc<Identities>,
}

impl<S> Service<Request> for Authenticate<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The service made ready by `poll_ready` serves this request; a clone stays for the
        // next (tower's rule for services moved into their future).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(authenticate(Arc::clone(&self.identities), inner, request))
    }
}

async fn authenticate<S>(
    identities: Arc<Identities>,
    mut inner: S,
    mut request: Request,
) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let peer = request.extensions().get::<Peer>();
    let address = peer.map(|peer| peer.address);
    match identities.authenticate(request.headers(), peer).await {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            inner.call(request).await
        }
        Err(refusal) => {
            match &refusal {
                Unauthenticated::Unavailable(why) => {
                    log::warn!("cannot check the token of a client at {address:?}: {why}")
                }
                other => log::debug!("client at {address:?} refused: {other}"),
            }
            Ok(refused(refusal))
        }
    }
}

/// The answer to a request without a principal: 401 with the challenge RFC 6750 asks
/// for, or 503 when the token could not be checked.
fn refused(refusal: Unauthenticated) -> Response {
    let challenge = match &refusal {
        Unauthenticated::Missing => "Bearer",
        Unauthenticated::Malformed(_) => "Bearer error=\"invalid_request\"",
        Unauthenticated::Refused => "Bearer error=\"invalid_token\"",
        Unauthenticated::Unavailable(_) => {
            let mut response = ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the token cannot be checked now; try again",
            )
            .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
    };
    let mut response = ApiError::new(StatusCode::UNAUTHORIZED, refusal.to_string()).into_response();
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    response
}

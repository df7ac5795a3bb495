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
    net::{IpAddr, Ipv4Addr},
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
use crate::{
    api::{ApiError, Guards},
    audit,
    principal::Peer,
};

/// What the layer needs: how to identify, and the guards that count, limit and audit the
/// requests it refuses (which never reach the handlers that do so for the others).
struct Gate {
    identities: Identities,
    guards: Arc<Guards>,
}

/// `router` with every request authenticated by `identities` first.
pub(crate) fn authenticated(router: Router, identities: Identities, guards: Arc<Guards>) -> Router {
    router.layer(Authenticated(Arc::new(Gate { identities, guards })))
}

/// Wraps each route in [`Authenticate`].
#[derive(Clone)]
struct Authenticated(Arc<Gate>);

impl<S> Layer<S> for Authenticated {
    type Service = Authenticate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Authenticate {
            inner,
            gate: Arc::clone(&self.0),
        }
    }
}

/// A route that runs only for requests with a principal.
#[derive(Clone)]
struct Authenticate<S> {
    inner: S,
    gate: Arc<Gate>,
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
        Box::pin(authenticate(Arc::clone(&self.gate), inner, request))
    }
}

async fn authenticate<S>(
    gate: Arc<Gate>,
    mut inner: S,
    mut request: Request,
) -> Result<Response, Infallible>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    let peer = request.extensions().get::<Peer>();
    let address = peer.map(|peer| peer.address);
    // Without a principal, a client is its address: failures are limited per address.
    let ip = address.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |address| address.ip());
    // A new token costs a call to the store: none for an address that keeps failing (a
    // token kept from before still passes, so its owner is not barred by a neighbour's
    // failures behind the same address).
    let mut barred = None;
    let may_verify = || match gate.guards.may_fail_identity(ip) {
        Ok(()) => true,
        Err(over) => {
            barred = Some(over);
            false
        }
    };
    let identified = gate
        .identities
        .authenticate(request.headers(), peer, may_verify)
        .await;
    if let Some(over) = barred {
        return Ok(over.into_response());
    }
    match identified {
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
            // Charged even when the store failed: random tokens must not call a store that
            // is down without end either.
            if let Err(over) = gate.guards.failed_identity(ip) {
                return Ok(over.into_response());
            }
            // The store's failure is not the client's: not a refusal, not audited.
            if !matches!(refusal, Unauthenticated::Unavailable(_)) {
                gate.guards.unauthenticated();
                audit::unidentified(&audit::Unidentified {
                    peer: address,
                    method: request.method().as_str(),
                    path: request.uri().path(),
                    reason: refusal.label(),
                    status: StatusCode::UNAUTHORIZED.as_u16(),
                });
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

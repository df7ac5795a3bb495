//! The identity layer of the router: every request gets its [`Principal`] in its
//! extensions before any handler runs, or is refused.
//!
//! Added to the router only when identities are on, so that a server without them pays
//! nothing per request.

use std::{
    net::{IpAddr, Ipv4Addr},
    sync::Arc,
};

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};

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
    router.layer(middleware::from_fn_with_state(
        Arc::new(Gate { identities, guards }),
        authenticate,
    ))
}

async fn authenticate(State(gate): State<Arc<Gate>>, mut request: Request, next: Next) -> Response {
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
        return over.into_response();
    }
    match identified {
        Ok(principal) => {
            request.extensions_mut().insert(principal);
            next.run(request).await
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
                return over.into_response();
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
            refused(refusal)
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

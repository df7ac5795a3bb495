//! The identity layer of the router: every request gets its [`Principal`] in its
//! extensions before any handler runs, or is refused.
//!
//! Added to the router only when identities are on, so that a server without them pays
//! nothing per request.

use std::sync::Arc;

use axum::{
    extract::{Request, State},
    http::{header, HeaderValue, StatusCode},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    Router,
};

use super::{Identities, Unauthenticated};
use crate::{api::ApiError, principal::Peer};

/// `router` with every request authenticated by `identities` first.
pub(crate) fn authenticated(router: Router, identities: Identities) -> Router {
    router.layer(middleware::from_fn_with_state(
        Arc::new(identities),
        authenticate,
    ))
}

async fn authenticate(
    State(identities): State<Arc<Identities>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<Peer>();
    let address = peer.map(|peer| peer.address);
    match identities.authenticate(request.headers(), peer).await {
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

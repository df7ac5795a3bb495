//! Who a request acts for, and what the connection it arrived on tells about its client.
//!
//! These types are the contract between the layers of the server: the connection code
//! (plain TCP or TLS) attaches a [`Peer`] to every request; the identity layer turns a
//! bearer token or the peer's client certificate into a [`Principal`] and attaches that;
//! permissions, quotas, audit and metrics read them from the request's extensions. Keeping
//! them here, below every layer, means no layer imports another to learn who is asking.

use std::{fmt, net::SocketAddr, sync::Arc};

/// An authenticated identity: the user of a token or the subject of a client certificate.
///
/// Cheap to clone (a shared string), so every layer may keep its own copy.
///
/// ```
/// use streambed_server::principal::Principal;
///
/// let sensor = Principal::new("farm-a-sensor-7");
/// assert_eq!(sensor.as_str(), "farm-a-sensor-7");
/// assert_eq!(sensor.to_string(), "farm-a-sensor-7");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(Arc<str>);

impl Principal {
    /// A principal of this name.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }

    /// The principal's name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the connection a request arrived on tells about the client; attached to every
/// request's extensions by the server before any handler or layer sees it.
///
/// ```
/// use streambed_server::principal::{Peer, Principal};
///
/// let peer = Peer::new("192.0.2.7:40000".parse().unwrap());
/// assert!(peer.certificate_principal.is_none());
/// let peer = peer.with_certificate_principal(Principal::new("gateway"));
/// assert_eq!(peer.certificate_principal.unwrap().as_str(), "gateway");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// The client's address, as the TCP connection reports it.
    pub address: SocketAddr,
    /// With mutual TLS, the subject of the client certificate the server verified.
    pub certificate_principal: Option<Principal>,
}

impl Peer {
    /// A peer at `address` that showed no client certificate.
    pub fn new(address: SocketAddr) -> Self {
        Self {
            address,
            certificate_principal: None,
        }
    }

    /// The same peer, identified by a verified client certificate.
    pub fn with_certificate_principal(mut self, principal: Principal) -> Self {
        self.certificate_principal = Some(principal);
        self
    }
}

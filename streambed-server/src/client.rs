//! Whom a request counts against: its principal, or the client's IP address when identities
//! are off.
//!
//! Quotas, audit and provenance all need one answer to "who is this?"; deriving it in one
//! place keeps them from disagreeing (a rate limit keyed by IP but an audit line naming a
//! principal would hide who was throttled).

use std::{
    fmt,
    net::{IpAddr, Ipv4Addr},
};

use axum::http::Extensions;

use crate::principal::{Peer, Principal};

/// The principal a request acts for or, without one, the IP address it came from (the port
/// is left out: one host opening many connections is still one client).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    Principal(Principal),
    Address(IpAddr),
}

impl ClientKey {
    /// The key of a request, from the [`Principal`] the identity layer attached or else the
    /// [`Peer`] every connection attaches.
    pub(crate) fn of(extensions: &Extensions) -> Self {
        if let Some(principal) = extensions.get::<Principal>() {
            return Self::Principal(principal.clone());
        }
        // Every request served by `Server` has a peer; a router driven without one (as in
        // unit tests) counts as a single anonymous client.
        let address = extensions
            .get::<Peer>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |peer| peer.address.ip());
        Self::Address(address)
    }
}

impl fmt::Display for ClientKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Principal(principal) => f.write_str(principal.as_str()),
            Self::Address(address) => write!(f, "{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_principal_wins_over_the_peer_address() {
        let mut extensions = Extensions::new();
        extensions.insert(Peer::new("192.0.2.7:4000".parse().unwrap()));
        assert_eq!(
            ClientKey::of(&extensions),
            ClientKey::Address("192.0.2.7".parse().unwrap())
        );
        extensions.insert(Principal::new("sensor"));
        assert_eq!(
            ClientKey::of(&extensions),
            ClientKey::Principal(Principal::new("sensor"))
        );
    }

    #[test]
    fn connections_from_one_host_on_different_ports_are_one_client() {
        let key = |address: &str| {
            let mut extensions = Extensions::new();
            extensions.insert(Peer::new(address.parse().unwrap()));
            ClientKey::of(&extensions)
        };
        assert_eq!(key("192.0.2.7:4000"), key("192.0.2.7:4001"));
    }
}

//! What a failed try says about the request (never left, may have reached the server,
//! answered "try later", or cannot be cured by trying again): the one place that reads
//! reqwest's errors and statuses for the retry policy, so both clients agree on it.

use std::error::Error;

use reqwest::StatusCode;

/// The answers that say "not now, try again later", each with whether the server surely
/// did not act on the request (so that even a request that must not act twice may be
/// sent again). The one list every client retries by.
///
/// Only 503 says the request was not processed. A 502 or 504 comes from a gateway whose
/// server failed to answer in time or properly, possibly after acting (appending records):
/// resending a produce after it could append the records twice.
const TEMPORARY: [(StatusCode, bool); 6] = [
    (StatusCode::REQUEST_TIMEOUT, false),
    (StatusCode::TOO_MANY_REQUESTS, false),
    (StatusCode::INTERNAL_SERVER_ERROR, false),
    (StatusCode::BAD_GATEWAY, false),
    (StatusCode::SERVICE_UNAVAILABLE, true),
    (StatusCode::GATEWAY_TIMEOUT, false),
];

/// How one try of a request failed, as far as retrying it is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TryFailure {
    /// No connection could be made: the request never left.
    Unreachable,
    /// The connection broke or timed out after the request may have reached the server.
    Lost,
    /// The server answered a status of the temporary list ([`TryFailure::of_status`]).
    Answered(StatusCode),
}

impl TryFailure {
    /// What an error of reqwest says about the request; `None` when no retry cures it:
    /// the request could not even be built (a URL or body reqwest refuses), or TLS
    /// refused the server's certificate ([`refused_certificate`] says why), which
    /// reqwest reports as a connection failure like an unreachable server.
    ///
    /// ```
    /// use streambed::http::TryFailure;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // Nothing listens on port 1 of the loopback address.
    /// let error = reqwest::get("http://127.0.0.1:1/").await.unwrap_err();
    /// assert_eq!(TryFailure::of_error(&error), Some(TryFailure::Unreachable));
    /// let error = reqwest::get("no-scheme").await.unwrap_err();
    /// assert_eq!(TryFailure::of_error(&error), None);
    /// # }
    /// ```
    pub fn of_error(error: &reqwest::Error) -> Option<Self> {
        if error.is_builder() || certificate_error(error).is_some() {
            None
        } else if error.is_connect() {
            Some(Self::Unreachable)
        } else {
            Some(Self::Lost)
        }
    }

    /// `Some` when `status` says "try again later" (408, 429, 500, 502, 503, 504); `None`
    /// for every other answer, which retrying would not change.
    ///
    /// ```
    /// use reqwest::StatusCode;
    /// use streambed::http::TryFailure;
    ///
    /// assert_eq!(
    ///     TryFailure::of_status(StatusCode::SERVICE_UNAVAILABLE),
    ///     Some(TryFailure::Answered(StatusCode::SERVICE_UNAVAILABLE))
    /// );
    /// assert_eq!(TryFailure::of_status(StatusCode::NOT_FOUND), None);
    /// ```
    pub fn of_status(status: StatusCode) -> Option<Self> {
        TEMPORARY
            .iter()
            .any(|(temporary, _)| *temporary == status)
            .then_some(Self::Answered(status))
    }

    /// Whether the request may have reached the server and been acted on.
    pub(super) fn may_have_acted(self) -> bool {
        match self {
            Self::Unreachable => false,
            Self::Lost => true,
            Self::Answered(status) => !TEMPORARY
                .iter()
                .any(|(temporary, unprocessed)| *temporary == status && *unprocessed),
        }
    }

    /// Whether the request may have reached the server at all.
    pub(super) fn was_sent(self) -> bool {
        self != Self::Unreachable
    }
}

/// Why TLS refused the server's certificate (unknown issuer, expired, another name...),
/// or why the server refused ours (mutual TLS: a fatal certificate alert, such as an
/// unknown CA or a certificate required but not shown), when that is what `error` is: a
/// failure that no retry cures and that the clients report at once, naming the URL.
/// `None` for any other error.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let error = reqwest::get("http://127.0.0.1:1/").await.unwrap_err();
/// assert_eq!(streambed::http::refused_certificate(&error), None);
/// # }
/// ```
pub fn refused_certificate(error: &reqwest::Error) -> Option<String> {
    certificate_error(error).map(|error| error.to_string())
}

/// The rustls certificate error in `error`'s chain of causes. rustls's error reaches
/// reqwest inside `io::Error`s (tokio-rustls wraps it, hyper-rustls wraps that again),
/// whose `source()` skips the error they wrap, so the chain goes through their insides.
fn certificate_error<'a>(error: &'a (dyn Error + 'static)) -> Option<&'a rustls::Error> {
    let mut link = Some(error);
    while let Some(current) = link {
        match current.downcast_ref() {
            Some(tls @ rustls::Error::InvalidCertificate(_)) => return Some(tls),
            Some(tls @ rustls::Error::AlertReceived(alert)) if refuses_certificate(*alert) => {
                return Some(tls)
            }
            _ => {}
        }
        link = match current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(wrapped) => Some(wrapped),
            None => current.source(),
        };
    }
    None
}

/// Whether a peer sending `alert` says it refuses our certificate (RFC 8446 §6.2).
fn refuses_certificate(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as Alert;
    matches!(
        alert,
        Alert::BadCertificate
            | Alert::UnsupportedCertificate
            | Alert::CertificateRevoked
            | Alert::CertificateExpired
            | Alert::CertificateUnknown
            | Alert::UnknownCA
            | Alert::CertificateRequired
    )
}

#[cfg(test)]
mod tests {
    use std::{fmt, io};

    use rustls::{AlertDescription, CertificateError};

    use super::*;

    /// An error caused by another, as reqwest's errors are.
    #[derive(Debug)]
    struct Caused(Box<dyn Error + Send + Sync>);

    impl fmt::Display for Caused {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("error sending request")
        }
    }

    impl Error for Caused {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&*self.0)
        }
    }

    #[test]
    fn a_certificate_error_is_found_inside_the_io_error_that_carries_it() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let error = Caused(Box::new(io::Error::new(
            io::ErrorKind::InvalidData,
            tls.clone(),
        )));
        assert_eq!(certificate_error(&error), Some(&tls));
    }

    #[test]
    fn a_servers_alert_refusing_our_certificate_is_a_certificate_error() {
        for alert in [
            AlertDescription::UnknownCA,
            AlertDescription::CertificateRequired,
            AlertDescription::BadCertificate,
        ] {
            let tls = rustls::Error::AlertReceived(alert);
            let error = Caused(Box::new(io::Error::new(
                io::ErrorKind::InvalidData,
                tls.clone(),
            )));
            assert_eq!(certificate_error(&error), Some(&tls));
        }
    }

    #[test]
    fn other_tls_and_io_errors_are_not_certificate_errors() {
        for cause in [
            io::Error::new(
                io::ErrorKind::InvalidData,
                rustls::Error::AlertReceived(AlertDescription::HandshakeFailure),
            ),
            io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError),
            io::Error::from(io::ErrorKind::ConnectionRefused),
        ] {
            assert_eq!(certificate_error(&Caused(Box::new(cause))), None);
        }
    }

    #[test]
    fn only_503_lets_a_request_that_must_not_act_twice_be_resent() {
        for (status, _) in TEMPORARY {
            let failure = TryFailure::Answered(status);
            assert_eq!(
                failure.may_have_acted(),
                status != StatusCode::SERVICE_UNAVAILABLE,
                "{status}"
            );
        }
    }
}

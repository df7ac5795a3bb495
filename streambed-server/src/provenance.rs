//! Provenance: a header on every produced record naming who produced it, which readers can
//! trust because no client can set it.
//!
//! The server stamps each record of a produce request with a header of the configured name
//! whose value is the request's principal, or, when identities are off, the IP address the
//! request came from (the only identity the server then has). A request whose records
//! already carry a header of that name (compared ignoring ASCII case, so that no reader
//! comparing loosely can be fooled either) is refused with 400 rather than silently
//! rewritten: a client doing it is either misconfigured or forging, and both deserve to
//! hear it.

use streambed::commit_log::{Header, HeaderKey, ProducerRecord};

use crate::client::ClientKey;

/// The name of the header stamped on every produced record.
///
/// ```
/// use streambed_server::provenance::ProvenanceHeader;
///
/// let header = ProvenanceHeader::new("streambed-principal").unwrap();
/// assert_eq!(header.name(), "streambed-principal");
/// assert!(ProvenanceHeader::new("").is_err());
/// ```
#[derive(Clone, Debug, Eq, PartialEq)]
pub struct ProvenanceHeader(HeaderKey);

/// Why a header name cannot be the provenance header.
#[derive(Clone, Debug, Eq, PartialEq, thiserror::Error)]
pub enum ProvenanceHeaderError {
    /// The name is empty.
    #[error("the provenance header name is empty")]
    Empty,
    /// The name holds a character other than printable ASCII.
    #[error("the provenance header name {0:?} holds characters other than printable ASCII")]
    NotPrintable(String),
}

/// A produce request that set the provenance header itself.
#[derive(Debug, thiserror::Error)]
#[error("record {record} sets header {name:?}, which only the server may set")]
pub(crate) struct ForgedProvenance {
    record: usize,
    name: String,
}

impl ProvenanceHeader {
    /// A provenance header of this name: printable ASCII, not empty.
    pub fn new(name: impl Into<String>) -> Result<Self, ProvenanceHeaderError> {
        let name = name.into();
        if name.is_empty() {
            return Err(ProvenanceHeaderError::Empty);
        }
        if !name.chars().all(|c| c.is_ascii_graphic()) {
            return Err(ProvenanceHeaderError::NotPrintable(name));
        }
        Ok(Self(HeaderKey::from(name)))
    }

    /// The header's name.
    pub fn name(&self) -> &str {
        &self.0
    }

    /// Refuses records that carry the header already.
    pub(crate) fn check(&self, records: &[ProducerRecord]) -> Result<(), ForgedProvenance> {
        for (index, record) in records.iter().enumerate() {
            if let Some(header) = record
                .headers
                .iter()
                .find(|h| h.key.eq_ignore_ascii_case(&self.0))
            {
                return Err(ForgedProvenance {
                    record: index + 1,
                    name: header.key.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Adds the header naming `client` to `record`; [`check`](Self::check) has made sure
    /// it had none.
    pub(crate) fn stamp(&self, record: &mut ProducerRecord, client: &ClientKey) {
        let value = match client {
            ClientKey::Principal(principal) => principal.as_str().as_bytes().to_vec(),
            ClientKey::Address(address) => address.to_string().into_bytes(),
        };
        record.headers.push(Header {
            key: self.0.clone(),
            value,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::principal::Principal;
    use streambed::commit_log::Topic;

    fn record(headers: &[&str]) -> ProducerRecord {
        ProducerRecord {
            topic: Topic::from("t"),
            headers: headers
                .iter()
                .map(|key| Header {
                    key: HeaderKey::from(*key),
                    value: b"x".to_vec(),
                })
                .collect(),
            timestamp: None,
            key: 0,
            value: vec![],
            partition: 0,
        }
    }

    #[test]
    fn a_record_carrying_the_header_in_any_case_is_refused() {
        let header = ProvenanceHeader::new("streambed-principal").unwrap();
        assert!(header.check(&[record(&["other"])]).is_ok());
        let forged = header
            .check(&[record(&[]), record(&["other", "Streambed-Principal"])])
            .unwrap_err();
        assert_eq!(
            forged.to_string(),
            "record 2 sets header \"Streambed-Principal\", which only the server may set"
        );
    }

    #[test]
    fn the_stamp_names_the_principal_or_else_the_ip_address() {
        let header = ProvenanceHeader::new("by").unwrap();
        let mut stamped = record(&["other"]);
        header.stamp(
            &mut stamped,
            &ClientKey::Principal(Principal::new("sensor-7")),
        );
        assert_eq!(stamped.headers[1].key, "by");
        assert_eq!(stamped.headers[1].value, b"sensor-7");
        let mut stamped = record(&[]);
        header.stamp(
            &mut stamped,
            &ClientKey::Address("192.0.2.7".parse().unwrap()),
        );
        assert_eq!(stamped.headers[0].value, b"192.0.2.7");
    }

    #[test]
    fn names_that_are_empty_or_not_printable_are_refused() {
        assert_eq!(ProvenanceHeader::new(""), Err(ProvenanceHeaderError::Empty));
        assert!(matches!(
            ProvenanceHeader::new("a b"),
            Err(ProvenanceHeaderError::NotPrintable(_))
        ));
    }
}

//! The principal a verified client certificate names: its subject's common name, or, for a
//! subject without one, the whole subject as RFC 4514 writes it. The certificate is read by
//! `x509-cert` (RustCrypto's DER decoder), never by hand.

use x509_cert::{
    attr::AttributeTypeAndValue,
    der::{
        asn1::{
            Ia5StringRef, ObjectIdentifier, PrintableStringRef, TeletexStringRef, Utf8StringRef,
        },
        Decode, Tag, Tagged,
    },
    name::Name,
    Certificate,
};

use crate::principal::Principal;

/// The `commonName` attribute type (RFC 4519).
const COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");

/// The principal that the DER certificate `der` names, or `None` when it cannot be decoded
/// or its subject is empty.
pub(crate) fn principal(der: &[u8]) -> Option<Principal> {
    let certificate = Certificate::from_der(der).ok()?;
    let subject = &certificate.tbs_certificate.subject;
    if let Some(name) = common_name(subject) {
        return Some(Principal::new(name));
    }
    let whole = subject.to_string();
    (!whole.is_empty()).then(|| Principal::new(whole))
}

/// The subject's most specific common name (the last in the sequence, which RFC 4514
/// writes first), if it has one that is a non-empty string.
fn common_name(subject: &Name) -> Option<String> {
    subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|attribute| attribute.oid == COMMON_NAME)
        .filter_map(text)
        .rfind(|name| !name.is_empty())
        .map(str::to_owned)
}

/// The value of `attribute` if it is one of the string types a name is written in
/// (RFC 5280's `DirectoryString`, and IA5String, which some authorities use).
fn text(attribute: &AttributeTypeAndValue) -> Option<&str> {
    let value = &attribute.value;
    match value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::PrintableString => PrintableStringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::TeletexString => TeletexStringRef::try_from(value).ok().map(|s| s.as_str()),
        Tag::Ia5String => Ia5StringRef::try_from(value).ok().map(|s| s.as_str()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use streambed_test::pki::{DnType, TestCa};
    use tokio_rustls::rustls::pki_types::{pem::PemObject, CertificateDer};

    use super::*;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .to_vec()
    }

    #[test]
    fn the_principal_is_the_subjects_common_name() {
        let ca = TestCa::new("ca");
        let client = ca.client_with_subject(&[
            (DnType::CountryName, "NZ"),
            (DnType::OrganizationName, "Farm A"),
            (DnType::CommonName, "sensor-7"),
        ]);
        let principal = principal(&der(&client.certificate_pem)).unwrap();
        assert_eq!(principal.as_str(), "sensor-7");
    }

    #[test]
    fn a_subject_without_a_common_name_is_named_whole_in_rfc_4514_order() {
        let ca = TestCa::new("ca");
        let client = ca.client_with_subject(&[
            (DnType::CountryName, "NZ"),
            (DnType::OrganizationName, "Farm A"),
            (DnType::OrganizationalUnitName, "gateways"),
        ]);
        let principal = principal(&der(&client.certificate_pem)).unwrap();
        assert_eq!(principal.as_str(), "OU=gateways,O=Farm A,C=NZ");
    }

    #[test]
    fn a_common_name_with_non_ascii_text_is_kept_as_written() {
        let ca = TestCa::new("ca");
        let client = ca.client("capteur-élevage");
        let principal = principal(&der(&client.certificate_pem)).unwrap();
        assert_eq!(principal.as_str(), "capteur-élevage");
    }

    #[test]
    fn bytes_that_are_not_a_certificate_name_nobody() {
        assert_eq!(principal(b"not DER at all"), None);
        assert_eq!(principal(&[]), None);
    }
}

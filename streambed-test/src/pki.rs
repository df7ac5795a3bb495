//! Certificate authorities made at test time, so that TLS tests (HTTPS servers, mutual TLS
//! with client certificates) need no key material checked into the repository and never
//! expire.

use std::{fs, io, path::Path};

/// The kinds of subject attributes, for [`TestCa::client_with_subject`].
pub use rcgen::DnType;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DistinguishedName, ExtendedKeyUsagePurpose,
    IsCa, KeyPair, KeyUsagePurpose,
};

/// A certificate and its private key, both PEM-encoded.
///
/// ```
/// use streambed_test::pki::TestCa;
///
/// let dir = tempfile::tempdir().unwrap();
/// let sensor = TestCa::new("ca").client("sensor-7");
/// sensor.write(&dir.path().join("c.pem"), &dir.path().join("c.key")).unwrap();
/// assert!(sensor.identity_pem().ends_with(&sensor.key_pem));
/// ```
#[derive(Clone, Debug)]
pub struct Issued {
    /// The certificate (for a leaf, followed by nothing: the CA is trusted on its own).
    pub certificate_pem: String,
    /// The PKCS#8 private key.
    pub key_pem: String,
}

impl Issued {
    /// The certificate followed by the key, as `reqwest::Identity::from_pem` reads them.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.certificate_pem, self.key_pem)
    }

    /// Writes the certificate to `certificate` and the key to `key`.
    pub fn write(&self, certificate: &Path, key: &Path) -> io::Result<()> {
        fs::write(certificate, &self.certificate_pem)?;
        fs::write(key, &self.key_pem)
    }
}

/// A self-signed certificate authority that issues server and client certificates.
///
/// ```
/// use streambed_test::pki::TestCa;
///
/// let ca = TestCa::new("test CA");
/// let server = ca.server("localhost");
/// let client = ca.client("sensor-7");
/// assert!(ca.certificate_pem().starts_with("-----BEGIN CERTIFICATE-----"));
/// assert!(server.key_pem.contains("PRIVATE KEY"));
/// assert_ne!(client.certificate_pem, server.certificate_pem);
/// ```
pub struct TestCa {
    certificate: Certificate,
    key: KeyPair,
}

impl TestCa {
    /// A new authority whose subject's common name is `name`.
    pub fn new(name: &str) -> Self {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let certificate = params.self_signed(&key).expect("self-signed CA");
        Self { certificate, key }
    }

    /// The authority's own certificate, which clients or servers are told to trust.
    pub fn certificate_pem(&self) -> String {
        self.certificate.pem()
    }

    /// A server certificate for `host` (a DNS name or an IP address).
    pub fn server(&self, host: &str) -> Issued {
        let mut params = CertificateParams::new(vec![host.to_owned()]).expect("server names");
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        self.issue(params)
    }

    /// A client certificate whose subject's common name is `name`.
    pub fn client(&self, name: &str) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client names");
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    /// A client certificate with exactly the subject given (type, value pairs in order),
    /// for tests of subjects without a common name.
    pub fn client_with_subject(&self, subject: &[(DnType, &str)]) -> Issued {
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("client names");
        params.distinguished_name = DistinguishedName::new();
        for (kind, value) in subject {
            params.distinguished_name.push(kind.clone(), *value);
        }
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        self.issue(params)
    }

    fn issue(&self, params: CertificateParams) -> Issued {
        let key = KeyPair::generate().expect("leaf key");
        let certificate = params
            .signed_by(&key, &self.certificate, &self.key)
            .expect("signed certificate");
        Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

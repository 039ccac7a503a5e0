//! Certificates for mutual-TLS tests: a client CA issuing client certificates with a given
//! subject and SANs, and self-signed client certificates. PEM in, PEM out, as a client or an
//! operator would have them.

pub use rcgen::DnType;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};

/// A client certificate and its private key, PEM.
#[derive(Clone)]
pub struct ClientCert {
    pub cert_pem: String,
    pub key_pem: String,
    /// The certificate's DER.
    pub der: Vec<u8>,
}

impl ClientCert {
    /// Certificate and key in one PEM, as `reqwest::Identity::from_pem` and `curl --cert` take.
    pub fn identity_pem(&self) -> String {
        format!("{}{}", self.cert_pem, self.key_pem)
    }
}

/// What a client certificate says about its holder.
#[derive(Clone, Default)]
pub struct Subject {
    /// Attributes in the order written into the DER (RFC 4514 writes them reversed).
    pub dn: Vec<(DnType, String)>,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
    /// Valid from `not_before` to `not_after` (years); default: last year to ten years on.
    pub years: Option<(i32, i32)>,
}

impl Subject {
    /// A certificate whose DN is just `CN=cn`.
    pub fn cn(cn: &str) -> Self {
        Self { dn: vec![(DnType::CommonName, cn.into())], ..Default::default() }
    }
}

fn params(subject: &Subject) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    for (ty, value) in &subject.dn {
        p.distinguished_name.push(ty.clone(), value.clone());
    }
    for name in &subject.san_dns {
        p.subject_alt_names.push(SanType::DnsName(name.as_str().try_into().unwrap()));
    }
    for uri in &subject.san_uri {
        p.subject_alt_names.push(SanType::URI(uri.as_str().try_into().unwrap()));
    }
    let (from, to) = subject.years.unwrap_or_else(|| {
        let year = this_year();
        (year - 1, year + 10)
    });
    p.not_before = rcgen::date_time_ymd(from, 1, 1);
    p.not_after = rcgen::date_time_ymd(to, 1, 1);
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    p
}

/// The current year (by the system clock).
pub fn this_year() -> i32 {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    1970 + (secs / 31_556_952) as i32
}

/// A self-signed client certificate (`self_signed_tls_client_auth`).
pub fn self_signed(subject: &Subject) -> ClientCert {
    let key = KeyPair::generate().unwrap();
    let cert = params(subject).self_signed(&key).unwrap();
    ClientCert { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
}

/// A client CA (`mtls_client_ca_file`).
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.distinguished_name.push(DnType::CommonName, name);
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let year = this_year();
        p.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
        p.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
        Self { issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap() }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A client certificate issued by this CA.
    pub fn issue(&self, subject: &Subject) -> ClientCert {
        let key = KeyPair::generate().unwrap();
        let cert = params(subject).signed_by(&key, &self.issuer).unwrap();
        ClientCert { cert_pem: cert.pem(), key_pem: key.serialize_pem(), der: cert.der().to_vec() }
    }
}

use std::net::IpAddr;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use rcgen::DnType;
use rustls::pki_types::CertificateDer;
use tessera_testkit::pki::{Ca, ClientCert, Subject, self_signed, this_year};
use tessera_types::UnixTime;
use tessera_types::rfc8705::TlsClientSubject;

use super::*;

fn presented(c: &ClientCert) -> ClientCertificate {
    ClientCertificate::new(vec![CertificateDer::from(c.der.clone())]).unwrap()
}

fn now() -> UnixTime {
    UnixTime(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64)
}

fn settings_trusting(ca: &Ca) -> MtlsSettings {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, ca.pem()).unwrap();
    MtlsSettings::new(true).with_client_ca_file(&path).unwrap()
}

fn leaf_subject(c: &ClientCert) -> String {
    let der = CertificateDer::from(c.der.clone());
    let leaf = webpki::EndEntityCert::try_from(&der).unwrap();
    dn::render(leaf.subject()).unwrap()
}

/// A DER `Name`'s contents from (OID bytes, string tag, value) RDNs, in DER order.
fn name(rdns: &[(&[u8], u8, &str)]) -> Vec<u8> {
    fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
        assert!(contents.len() < 128);
        [&[tag, contents.len() as u8][..], contents].concat()
    }
    rdns.iter()
        .flat_map(|(oid, tag, value)| {
            let atv = tlv(0x30, &[tlv(0x06, oid), tlv(*tag, value.as_bytes())].concat());
            tlv(0x31, &atv)
        })
        .collect()
}

const C: &[u8] = &[0x55, 0x04, 0x06];
const O: &[u8] = &[0x55, 0x04, 0x0a];
const CN: &[u8] = &[0x55, 0x04, 0x03];
/// 1.2.840.113549.1.9.1, emailAddress: no RFC 4514 short name.
const EMAIL: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];

#[test]
fn rfc4514_2_a_subject_is_written_last_rdn_first_with_short_names_and_escapes() {
    let der = name(&[(C, 0x13, "SE"), (O, 0x0c, "Example, Inc."), (CN, 0x0c, "#billing+api ")]);
    assert_eq!(dn::render(&der).unwrap(), r"CN=\#billing\+api\ ,O=Example\, Inc.,C=SE");
    let der = name(&[(EMAIL, 0x16, "ops@example.org"), (CN, 0x0c, "a")]);
    assert_eq!(dn::render(&der).unwrap(), "CN=a,1.2.840.113549.1.9.1=ops@example.org");
    // §2.4: a value that is not a string is written as `#` and its BER encoding in hex.
    let der = name(&[(CN, 0x04, "ab")]);
    assert_eq!(dn::render(&der).unwrap(), "CN=#04026162");
    assert_eq!(dn::render(&der[..der.len() - 1]), None, "truncated");
}

#[test]
fn a_registered_dn_is_compared_in_the_form_a_certificate_is_written() {
    let want = Some("CN=svc,O=Example\\, Inc.".to_owned());
    assert_eq!(dn::normalize("CN=svc,O=Example\\, Inc."), want);
    assert_eq!(
        dn::normalize(" cn = svc , o=Example\\, Inc. "),
        want,
        "types are case-blind, spaces around separators go"
    );
    assert_eq!(dn::normalize("2.5.4.3=svc,OID.2.5.4.10=Example\\2C Inc."), want, "OIDs and hex escapes");
    assert_eq!(dn::normalize("CN=a+UID=b"), Some("CN=a+UID=b".to_owned()), "multi-valued RDN");
    assert_eq!(dn::normalize("CN=trailing\\ "), Some("CN=trailing\\ ".to_owned()), "an escaped trailing space stays");
    assert_eq!(dn::normalize("no equals sign"), None);
    assert_eq!(dn::normalize("=value"), None);
    assert_eq!(dn::normalize("CN=dangling\\"), None);
}

#[test]
fn rfc8705_2_1_a_ca_issued_certificate_with_the_registered_subject_passes() {
    let ca = Ca::new("Client CA");
    let mtls = settings_trusting(&ca);
    let cert = ca.issue(&Subject {
        dn: vec![(DnType::OrganizationName, "Example".into()), (DnType::CommonName, "billing".into())],
        san_dns: vec!["billing.example.org".into()],
        san_uri: vec!["spiffe://example.org/ns/prod/sa/billing".into()],
        years: None,
    });
    let c = presented(&cert);
    assert_eq!(leaf_subject(&cert), "O=Example,CN=billing", "as rcgen orders the DN");
    for subject in [
        TlsClientSubject::SubjectDn("O=Example,CN=billing".into()),
        TlsClientSubject::SubjectDn("o=Example, cn=billing".into()),
        TlsClientSubject::SanDns("billing.example.org".into()),
        TlsClientSubject::SanDns("BILLING.example.org".into()),
        TlsClientSubject::SanUri("spiffe://example.org/ns/prod/sa/billing".into()),
    ] {
        assert_eq!(mtls.check_tls_client_auth(&c, &subject, now()), Ok(()), "{subject}");
    }
    for subject in [
        TlsClientSubject::SubjectDn("CN=billing".into()),
        TlsClientSubject::SubjectDn("O=Example,CN=billing,C=SE".into()),
        TlsClientSubject::SubjectDn("CN=billing,O=Example".into()),
        TlsClientSubject::SubjectDn("O=example,CN=billing".into()),
        TlsClientSubject::SanDns("other.example.org".into()),
        TlsClientSubject::SanUri("spiffe://example.org/ns/prod/sa/billing/".into()),
        TlsClientSubject::SanUri("SPIFFE://example.org/ns/prod/sa/billing".into()),
    ] {
        assert!(
            matches!(mtls.check_tls_client_auth(&c, &subject, now()), Err(CertificateFailure::SubjectMismatch(_))),
            "{subject}"
        );
    }
}

#[test]
fn rfc8705_2_1_a_certificate_from_another_ca_expired_or_self_signed_is_untrusted() {
    let ca = Ca::new("Client CA");
    let mtls = settings_trusting(&ca);
    let subject = TlsClientSubject::SubjectDn("CN=billing".into());
    let other = Ca::new("Client CA").issue(&Subject::cn("billing"));
    assert!(matches!(
        mtls.check_tls_client_auth(&presented(&other), &subject, now()),
        Err(CertificateFailure::Untrusted(_))
    ));
    let own = self_signed(&Subject::cn("billing"));
    assert!(matches!(
        mtls.check_tls_client_auth(&presented(&own), &subject, now()),
        Err(CertificateFailure::Untrusted(_))
    ));
    let year = this_year();
    let expired = ca.issue(&Subject { years: Some((year - 3, year - 1)), ..Subject::cn("billing") });
    assert!(matches!(
        mtls.check_tls_client_auth(&presented(&expired), &subject, now()),
        Err(CertificateFailure::Untrusted(_))
    ));
    // The same certificate, judged at a time it was valid: the clock is the server's.
    let then = UnixTime((i64::from(year - 2) - 1970) * 31_556_952 + 200 * 86_400);
    assert_eq!(mtls.check_tls_client_auth(&presented(&expired), &subject, then), Ok(()));
    let fresh = ca.issue(&Subject::cn("billing"));
    assert_eq!(
        MtlsSettings::new(true).check_tls_client_auth(&presented(&fresh), &subject, now()),
        Err(CertificateFailure::NoClientCa)
    );
}

#[test]
fn a_ca_file_without_a_certificate_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    assert!(MtlsSettings::new(true).with_client_ca_file(&path).is_err());
    assert!(MtlsSettings::new(true).with_client_ca_file(&dir.path().join("absent.pem")).is_err());
}

#[test]
fn a_forwarded_certificate_counts_only_from_a_trusted_proxy() {
    let proxy: IpAddr = "10.0.0.5".parse().unwrap();
    let header = HeaderName::from_static("x-client-cert");
    let mtls = MtlsSettings {
        forwarded: Some(ForwardedCertificate { header: header.clone(), proxies: vec![proxy] }),
        ..MtlsSettings::new(false)
    };
    let forwarded = self_signed(&Subject::cn("behind-proxy"));
    let own = presented(&self_signed(&Subject::cn("proxy-itself")));
    let escaped: String = forwarded
        .cert_pem
        .bytes()
        .map(|b| if b.is_ascii_alphanumeric() { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(header, HeaderValue::from_str(&escaped).unwrap());
    let from_proxy = mtls.request_certificate(&headers, Some(proxy), Some(&own)).unwrap();
    assert_eq!(from_proxy.thumbprint(), presented(&forwarded).thumbprint());
    // Anyone else: the header is ignored, the connection's own certificate counts.
    let from_other = mtls.request_certificate(&headers, Some("10.0.0.6".parse().unwrap()), Some(&own)).unwrap();
    assert_eq!(from_other.thumbprint(), own.thumbprint());
    assert!(mtls.request_certificate(&headers, Some("10.0.0.6".parse().unwrap()), None).is_none());
    // A trusted proxy without the header, or with garbage in it: no certificate at all.
    assert!(mtls.request_certificate(&HeaderMap::new(), Some(proxy), Some(&own)).is_none());
    let mut garbage = HeaderMap::new();
    garbage.insert("x-client-cert", HeaderValue::from_static("%ZZnot-pem"));
    assert!(mtls.request_certificate(&garbage, Some(proxy), None).is_none());
    // With no forwarding configured, the header means nothing.
    let plain = MtlsSettings::new(true);
    assert!(plain.request_certificate(&headers, Some(proxy), None).is_none());
}

#[test]
fn rfc8705_2_2_registered_certificates_are_kept_as_thumbprints_and_keys_are_refused() {
    let a = self_signed(&Subject::cn("a"));
    let b = self_signed(&Subject::cn("b"));
    let both = format!("{}{}", a.cert_pem, b.cert_pem);
    let got = registered_thumbprints(both.as_bytes()).unwrap();
    assert_eq!(got, vec![presented(&a).thumbprint().clone(), presented(&b).thumbprint().clone()]);
    assert!(registered_thumbprints(a.identity_pem().as_bytes()).unwrap_err().contains("private key"));
    assert!(registered_thumbprints(b"nothing here").is_err());
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    assert!(registered_thumbprints(garbage.as_bytes()).is_err());
}

#[test]
fn rfc8705_2_2_inline_seed_certificates_are_checked_as_files_are() {
    use crate::admin::ClientSpec;
    use crate::client_keys::KeyBounds;
    let a = self_signed(&Subject::cn("a"));
    let b = self_signed(&Subject::cn("b"));
    let id = tessera_types::ClientId::new("svc").unwrap();
    let spec = |certs: Vec<String>| ClientSpec { tls_client_certs: certs, ..ClientSpec::new(id.clone()) };
    let bounds = KeyBounds::default();
    // Thumbprints only, in order, the same certificate given twice registered once.
    let tls = spec(vec![a.cert_pem.clone(), b.cert_pem.clone(), a.cert_pem.clone()]).tls();
    assert!(tls.is_given());
    let registered = tls.registration(&id, &bounds).unwrap();
    assert_eq!(registered.certificates, vec![presented(&a).thumbprint().clone(), presented(&b).thumbprint().clone()]);
    // A private key next to the certificate is refused, naming the entry.
    let leaked = spec(vec![a.cert_pem.clone(), b.identity_pem()]).tls().registration(&id, &bounds).unwrap_err();
    assert!(leaked.to_string().contains("tls_client_certs[1]: holds a private key"), "{leaked}");
    // Bounded as a file is: past limits.max_client_jwks_bytes before parsing.
    let small = KeyBounds { max_bytes: a.cert_pem.len() - 1, ..bounds };
    let big = spec(vec![a.cert_pem.clone()]).tls().registration(&id, &small).unwrap_err();
    assert!(big.to_string().contains("larger than"), "{big}");
    // And counted against limits.max_client_keys.
    let one = KeyBounds { max_keys: 1, ..bounds };
    assert!(spec(vec![a.cert_pem.clone(), b.cert_pem.clone()]).tls().registration(&id, &one).is_err());
    assert!(spec(vec!["no PEM here".into()]).tls().registration(&id, &bounds).is_err());
}

proptest! {
    #![proptest_config(tessera_testkit::proptest_config(256))]

    #[test]
    fn arbitrary_names_and_dn_strings_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200), text in ".{0,80}") {
        let _ = dn::render(&bytes);
        let _ = dn::normalize(&text);
        let _ = forwarded_chain(text.as_bytes());
    }

    #[test]
    fn a_rendered_subject_normalizes_to_itself(cn in "[ -~]{1,24}", o in "[ -~]{1,24}") {
        let c = self_signed(&Subject { dn: vec![(DnType::OrganizationName, o), (DnType::CommonName, cn)], ..Default::default() });
        let rendered = leaf_subject(&c);
        prop_assert_eq!(dn::normalize(&rendered), Some(rendered.clone()));
    }
}

//! RFC 8705 (OAuth 2.0 Mutual-TLS Client Authentication and Certificate-Bound Access Tokens):
//! the certificate thumbprint a token is bound to, the `cnf` claim that carries it, and how a
//! `tls_client_auth` client names the certificate subject it expects.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::InvalidValue;

/// `x5t#S256` (§3.1): the base64url (unpadded) SHA-256 of a certificate's DER encoding.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CertificateThumbprint(String);

impl CertificateThumbprint {
    /// From a SHA-256 digest of the DER certificate.
    pub fn from_sha256(digest: &[u8; 32]) -> Self {
        Self(base64url(digest))
    }

    /// Checks a thumbprint as written in a token, an introspection answer or the store:
    /// 43 base64url characters, the unpadded encoding of 32 bytes.
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let well_formed = s.len() == 43
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            // 256 bits in 43 characters leave the last one 2 bits of padding, always zero.
            && matches!(s.as_bytes()[42], b'A' | b'E' | b'I' | b'M' | b'Q' | b'U' | b'Y' | b'c' | b'g' | b'k' | b'o' | b's' | b'w' | b'0' | b'4' | b'8');
        if well_formed {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidValue {
                what: "x5t#S256",
                why: "expected the base64url SHA-256 of a certificate (43 characters)",
            })
        }
    }

    /// As written in `cnf` and the store.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

impl fmt::Debug for CertificateThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertificateThumbprint({})", self.0)
    }
}

impl fmt::Display for CertificateThumbprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for CertificateThumbprint {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CertificateThumbprint {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// The `cnf` (confirmation) claim (RFC 7800 §3.1), in tokens and introspection answers: what
/// the presenter of the token must also prove to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Confirmation {
    /// RFC 8705 §3.1: the certificate the token is bound to.
    #[serde(rename = "x5t#S256", skip_serializing_if = "Option::is_none", default)]
    pub x5t_s256: Option<CertificateThumbprint>,
    /// RFC 9449 §6.1: the key the token is bound to, as the base64url RFC 7638 SHA-256
    /// thumbprint of the DPoP proof key.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub jkt: Option<String>,
    /// Confirmation methods this crate does not know, kept so that a resource server can
    /// refuse a token bound in a way it cannot check rather than take it as unbound.
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl Confirmation {
    /// Bound to a client certificate.
    pub fn certificate(thumbprint: CertificateThumbprint) -> Self {
        Self { x5t_s256: Some(thumbprint), ..Default::default() }
    }

    /// Bound to a DPoP key (RFC 9449 §6.1), by its RFC 7638 SHA-256 thumbprint.
    pub fn dpop_key(jkt: impl Into<String>) -> Self {
        Self { jkt: Some(jkt.into()), ..Default::default() }
    }
}

/// `mtls_endpoint_aliases` (§5) in authorization server metadata: endpoints "that, when
/// present, an OAuth client intending to do mutual TLS uses in preference to the conventional
/// endpoints", for a server that asks for client certificates only on another host or port.
/// Members this crate does not use are ignored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct MtlsEndpointAliases {
    /// The token endpoint to use with a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint: Option<String>,
    /// The introspection endpoint to use with a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// The revocation endpoint to use with a client certificate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
}

/// How a `tls_client_auth` client's certificate is recognised (§2.1.2): exactly one of the
/// RFC 7591 metadata values, compared with what the certificate holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsClientSubject {
    /// `tls_client_auth_subject_dn`: the subject distinguished name, RFC 4514 string form.
    SubjectDn(String),
    /// `tls_client_auth_san_dns`: a dNSName SAN entry.
    SanDns(String),
    /// `tls_client_auth_san_uri`: a uniformResourceIdentifier SAN entry (a SPIFFE ID, say).
    SanUri(String),
}

impl TlsClientSubject {
    /// The RFC 7591 client metadata name.
    pub fn metadata_name(&self) -> &'static str {
        match self {
            Self::SubjectDn(_) => "tls_client_auth_subject_dn",
            Self::SanDns(_) => "tls_client_auth_san_dns",
            Self::SanUri(_) => "tls_client_auth_san_uri",
        }
    }

    /// The expected value.
    pub fn value(&self) -> &str {
        match self {
            Self::SubjectDn(v) | Self::SanDns(v) | Self::SanUri(v) => v,
        }
    }
}

impl fmt::Display for TlsClientSubject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.metadata_name(), self.value())
    }
}

/// What a client registered for mutual-TLS authentication: certificates of its own (§2.2,
/// by thumbprint: the certificate itself is public but only its hash is compared), or the
/// subject a CA-issued certificate must name (§2.1). Empty: the client does not use mTLS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TlsClientRegistration {
    /// `self_signed_tls_client_auth` certificates.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub certificates: Vec<CertificateThumbprint>,
    /// `tls_client_auth` subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<TlsClientSubject>,
}

impl TlsClientRegistration {
    /// Whether the client registered nothing for mTLS.
    pub fn is_empty(&self) -> bool {
        self.certificates.is_empty() && self.subject.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thumbprint_is_43_base64url_characters_of_32_bytes() {
        let t = CertificateThumbprint::from_sha256(&[0xff; 32]);
        assert_eq!(t.as_str().len(), 43);
        assert_eq!(CertificateThumbprint::parse(t.as_str()).unwrap(), t);
        // The RFC 4648 §10 vectors, through the same encoder.
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(b"fooba"), "Zm9vYmE");
        assert_eq!(base64url(b"foobar"), "Zm9vYmFy");
        assert!(CertificateThumbprint::parse(&t.as_str()[..42]).is_err());
        assert!(CertificateThumbprint::parse(&format!("{}=", &t.as_str()[..42])).is_err());
        // Non-zero padding bits: no 32-byte value encodes to this.
        assert!(CertificateThumbprint::parse(&format!("{}B", &t.as_str()[..42])).is_err());
    }

    #[test]
    fn rfc8705_3_1_cnf_is_written_with_the_x5t_s256_member() {
        let t = CertificateThumbprint::from_sha256(&[7; 32]);
        let v = serde_json::to_value(Confirmation::certificate(t.clone())).unwrap();
        assert_eq!(v, serde_json::json!({ "x5t#S256": t.as_str() }));
        let back: Confirmation = serde_json::from_value(v).unwrap();
        assert_eq!(back.x5t_s256, Some(t));
        assert!(serde_json::from_value::<Confirmation>(serde_json::json!({ "x5t#S256": "short" })).is_err());
    }

    #[test]
    fn rfc9449_6_1_cnf_jkt_is_typed_and_unknown_methods_are_kept() {
        let jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";
        let v = serde_json::to_value(Confirmation::dpop_key(jkt)).unwrap();
        assert_eq!(v, serde_json::json!({ "jkt": jkt }));
        let back: Confirmation = serde_json::from_value(serde_json::json!({ "jkt": jkt, "kid": "k" })).unwrap();
        assert_eq!((back.jkt.as_deref(), back.x5t_s256), (Some(jkt), None));
        assert_eq!(back.other.get("kid"), Some(&serde_json::json!("k")), "unknown members stay in other");
    }
}

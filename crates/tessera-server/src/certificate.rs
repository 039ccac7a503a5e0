//! Client certificates for mutual TLS (RFC 8705): the one a connection presented (or a
//! trusted proxy forwarded), its thumbprint, its subject in RFC 4514 form, and the checks
//! `tls_client_auth` makes against the configured client CAs.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use aws_lc_rs::digest;
use axum::http::{HeaderMap, HeaderName};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor};
use tessera_types::UnixTime;
use tessera_types::rfc8705::{CertificateThumbprint, TlsClientSubject};

/// The certificate chain a client presented, leaf first, with the leaf's thumbprint computed
/// once per connection. Cheap to clone (one per request).
#[derive(Clone)]
pub struct ClientCertificate {
    chain: Arc<[CertificateDer<'static>]>,
    thumbprint: CertificateThumbprint,
}

impl std::fmt::Debug for ClientCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClientCertificate({})", self.thumbprint)
    }
}

impl ClientCertificate {
    /// From a presented chain; `None` when it is empty.
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Option<Self> {
        let leaf = chain.first()?;
        let thumbprint = thumbprint(leaf);
        Some(Self { chain: chain.into(), thumbprint })
    }

    /// RFC 8705 §3.1 `x5t#S256` of the leaf.
    pub fn thumbprint(&self) -> &CertificateThumbprint {
        &self.thumbprint
    }

    fn leaf(&self) -> &CertificateDer<'static> {
        &self.chain[0]
    }

    /// The leaf's DER, for a resource server checking a certificate-bound token (RFC 8705
    /// §3) behind this listener.
    pub fn leaf_der(&self) -> &[u8] {
        self.leaf().as_ref()
    }
}

/// SHA-256 of a certificate's DER, base64url: RFC 8705 §3.1.
pub fn thumbprint(cert: &CertificateDer<'_>) -> CertificateThumbprint {
    let d = digest::digest(&digest::SHA256, cert.as_ref());
    CertificateThumbprint::from_sha256(d.as_ref().try_into().expect("SHA-256 is 32 bytes"))
}

/// Why a certificate was not accepted; logged, never shown to the client (who gets
/// `invalid_client` whatever the reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[allow(missing_docs)]
pub enum CertificateFailure {
    #[error("no client CA is configured (mtls_client_ca_file)")]
    NoClientCa,
    #[error("the certificate does not chain to a configured client CA: {0}")]
    Untrusted(String),
    #[error("the certificate does not carry the registered {0}")]
    SubjectMismatch(&'static str),
}

/// Mutual-TLS settings: the CAs `tls_client_auth` certificates must chain to and, behind a
/// TLS-terminating proxy, where the client certificate is forwarded.
#[derive(Debug, Clone, Default)]
pub struct MtlsSettings {
    anchors: Arc<Vec<TrustAnchor<'static>>>,
    /// The header a proxy forwards the client certificate in (URL-encoded PEM, as nginx's
    /// `$ssl_client_escaped_cert` and AWS ALB's `X-Amzn-Mtls-Clientcert`), and the proxy
    /// addresses it is believed from. Off by default: anyone could send the header.
    pub forwarded: Option<ForwardedCertificate>,
    /// Whether the listener speaks TLS (and so can see client certificates itself).
    pub listener_tls: bool,
}

/// A proxy's forwarded-certificate header, and the proxies trusted to set it.
#[derive(Debug, Clone)]
pub struct ForwardedCertificate {
    #[allow(missing_docs)]
    pub header: HeaderName,
    #[allow(missing_docs)]
    pub proxies: Vec<IpAddr>,
}

impl MtlsSettings {
    /// Reads the client CA file (PEM, one or more certificates). Fails closed: a file that
    /// holds no usable CA stops the server rather than silently refusing every client.
    pub fn with_client_ca_file(mut self, path: &Path) -> Result<Self, String> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| format!("{}: {e}", path.display()))?
            .collect::<Result<_, _>>()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("{}: no certificate", path.display()));
        }
        let anchors = certs
            .iter()
            .map(|c| webpki::anchor_from_trusted_cert(c).map(|a| a.to_owned()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("{}: not a CA certificate: {e:?}", path.display()))?;
        self.anchors = Arc::new(anchors);
        Ok(self)
    }

    /// No client CA yet; the listener speaks TLS or not.
    pub fn new(listener_tls: bool) -> Self {
        Self { listener_tls, ..Default::default() }
    }

    /// Whether clients can authenticate with `method` here, as discovery says: the mTLS
    /// methods need a certificate to reach the server (TLS or a trusted proxy), and
    /// `tls_client_auth` a client CA.
    pub fn offers(&self, method: tessera_types::ClientAuthMethod) -> bool {
        use tessera_types::ClientAuthMethod as M;
        let certificates = self.listener_tls || self.forwarded.is_some();
        match method {
            M::SelfSignedTlsClientAuth => certificates,
            M::TlsClientAuth => certificates && !self.anchors.is_empty(),
            _ => true,
        }
    }

    /// The certificate a request carries: forwarded by a trusted proxy, else the one its
    /// connection presented. From a trusted proxy only the header counts (the connection's
    /// certificate is the proxy's own); from anyone else the header is ignored.
    pub fn request_certificate(
        &self,
        headers: &HeaderMap,
        peer: Option<IpAddr>,
        connection: Option<&ClientCertificate>,
    ) -> Option<ClientCertificate> {
        match &self.forwarded {
            Some(f) if peer.is_some_and(|p| f.proxies.contains(&p)) => {
                headers.get(&f.header).and_then(|v| forwarded_chain(v.as_bytes()))
            }
            _ => connection.cloned(),
        }
    }

    /// RFC 8705 §2.1: the certificate chains to a configured client CA, is valid now and
    /// for client authentication, and carries the registered subject.
    pub fn check_tls_client_auth(
        &self,
        cert: &ClientCertificate,
        subject: &TlsClientSubject,
        now: UnixTime,
    ) -> Result<(), CertificateFailure> {
        if self.anchors.is_empty() {
            return Err(CertificateFailure::NoClientCa);
        }
        let leaf =
            webpki::EndEntityCert::try_from(cert.leaf()).map_err(|e| CertificateFailure::Untrusted(e.to_string()))?;
        let algs = rustls::crypto::aws_lc_rs::default_provider().signature_verification_algorithms;
        let time = rustls::pki_types::UnixTime::since_unix_epoch(std::time::Duration::from_secs(now.0.max(0) as u64));
        leaf.verify_for_usage(
            algs.all,
            &self.anchors,
            &cert.chain[1..],
            time,
            webpki::KeyUsage::client_auth(),
            None,
            None,
        )
        .map_err(|e| CertificateFailure::Untrusted(e.to_string()))?;
        // §2.1.2: exactly one of these metadata values is registered, compared with what the
        // certificate says.
        let matches = match subject {
            TlsClientSubject::SubjectDn(dn) => {
                let registered = dn::normalize(dn);
                registered.is_some() && dn::render(leaf.subject()) == registered
            }
            TlsClientSubject::SanDns(name) => leaf.valid_dns_names().any(|n| n.eq_ignore_ascii_case(name)),
            TlsClientSubject::SanUri(uri) => leaf.valid_uri_names().any(|u| u == uri),
        };
        if matches { Ok(()) } else { Err(CertificateFailure::SubjectMismatch(subject.metadata_name())) }
    }
}

/// A forwarded chain: URL-encoded PEM, leaf first. Anything unreadable is no certificate.
fn forwarded_chain(value: &[u8]) -> Option<ClientCertificate> {
    let pem = percent_decode(value)?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().ok()?;
    ClientCertificate::new(chain)
}

fn percent_decode(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        match v[i] {
            b'%' => {
                let hex = std::str::from_utf8(v.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Reads certificates registered for `self_signed_tls_client_auth` (RFC 8705 §2.2): PEM, one
/// or more, each an X.509 certificate; only their thumbprints are kept. A file that also
/// holds a private key is refused: whoever wrote it is about to leak the key.
pub fn registered_thumbprints(pem: &[u8]) -> Result<Vec<CertificateThumbprint>, String> {
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err("holds a private key; register the certificate only".into());
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(pem).collect::<Result<_, _>>().map_err(|e| format!("not PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate".into());
    }
    certs
        .iter()
        .map(|c| {
            webpki::EndEntityCert::try_from(c).map_err(|e| format!("not an X.509 certificate: {e}"))?;
            Ok(thumbprint(c))
        })
        .collect()
}

/// Distinguished names in the RFC 4514 string form, so a registered
/// `tls_client_auth_subject_dn` compares with a certificate's subject.
pub mod dn {
    /// RFC 4514 §3's short names; any other attribute is written by its dotted OID.
    const SHORT_NAMES: [(&str, &str); 9] = [
        ("2.5.4.3", "CN"),
        ("2.5.4.7", "L"),
        ("2.5.4.8", "ST"),
        ("2.5.4.10", "O"),
        ("2.5.4.11", "OU"),
        ("2.5.4.6", "C"),
        ("2.5.4.9", "STREET"),
        ("0.9.2342.19200300.100.1.25", "DC"),
        ("0.9.2342.19200300.100.1.1", "UID"),
    ];

    /// One DER TLV: tag, contents, rest. Definite lengths only (DER, X.690 §10.1).
    fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let (&tag, rest) = input.split_first()?;
        let (&first, rest) = rest.split_first()?;
        let (len, rest) = if first < 0x80 {
            (first as usize, rest)
        } else {
            let n = (first & 0x7f) as usize;
            if n == 0 || n > 4 || rest.len() < n {
                return None;
            }
            (rest[..n].iter().fold(0usize, |l, b| (l << 8) | *b as usize), &rest[n..])
        };
        (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
    }

    fn oid(contents: &[u8]) -> Option<String> {
        let (&first, rest) = contents.split_first()?;
        let mut parts = vec![u64::from(first / 40).min(2), u64::from(first) - 40 * u64::from(first / 40).min(2)];
        let mut n: u64 = 0;
        for &b in rest {
            n = n.checked_mul(128)? | u64::from(b & 0x7f);
            if b & 0x80 == 0 {
                parts.push(n);
                n = 0;
            }
        }
        Some(parts.iter().map(u64::to_string).collect::<Vec<_>>().join("."))
    }

    /// RFC 4514 §2.4: the characters escaped in a string value.
    fn escape(value: &str) -> String {
        let mut out = String::with_capacity(value.len());
        let last = value.chars().count().saturating_sub(1);
        for (i, c) in value.chars().enumerate() {
            let special = matches!(c, '"' | '+' | ',' | ';' | '<' | '>' | '\\')
                || (i == 0 && (c == '#' || c == ' '))
                || (i == last && c == ' ');
            if special {
                out.push('\\');
            }
            if c == '\0' {
                out.push_str("\\00");
            } else {
                out.push(c);
            }
        }
        out
    }

    fn value(tag: u8, contents: &[u8]) -> String {
        let text = match tag {
            // UTF8String, PrintableString, IA5String.
            0x0c | 0x13 | 0x16 => std::str::from_utf8(contents).ok().map(str::to_owned),
            // BMPString: UCS-2, big-endian.
            0x1e if contents.len() % 2 == 0 => {
                char::decode_utf16(contents.chunks(2).map(|p| u16::from_be_bytes([p[0], p[1]])))
                    .collect::<Result<String, _>>()
                    .ok()
            }
            _ => None,
        };
        match text {
            Some(t) => escape(&t),
            // §2.4: a value that is not a string is written as `#` and its BER encoding in hex.
            None => {
                let mut hex = format!("#{tag:02x}");
                let len = contents.len();
                if len < 0x80 {
                    hex.push_str(&format!("{len:02x}"));
                } else {
                    let bytes: Vec<u8> = len.to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
                    hex.push_str(&format!("{:02x}", 0x80 | bytes.len()));
                    bytes.iter().for_each(|b| hex.push_str(&format!("{b:02x}")));
                }
                contents.iter().for_each(|b| hex.push_str(&format!("{b:02x}")));
                hex
            }
        }
    }

    /// Renders a DER `Name`'s contents (a sequence of RDNs) per RFC 4514 §2: the last RDN
    /// first, `,` between RDNs, `+` between the attributes of one. `None` if malformed.
    pub fn render(mut name: &[u8]) -> Option<String> {
        let mut rdns = Vec::new();
        while !name.is_empty() {
            let (tag, mut set, rest) = tlv(name)?;
            if tag != 0x31 {
                return None;
            }
            name = rest;
            let mut attrs = Vec::new();
            while !set.is_empty() {
                let (tag, atv, rest) = tlv(set)?;
                if tag != 0x30 {
                    return None;
                }
                set = rest;
                let (tag, oid_bytes, atv_rest) = tlv(atv)?;
                if tag != 0x06 {
                    return None;
                }
                let (vtag, vcontents, _) = tlv(atv_rest)?;
                let oid = oid(oid_bytes)?;
                let ty = SHORT_NAMES.iter().find(|(o, _)| *o == oid).map_or(oid.clone(), |(_, n)| (*n).to_owned());
                attrs.push(format!("{ty}={}", value(vtag, vcontents)));
            }
            rdns.push(attrs.join("+"));
        }
        rdns.reverse();
        Some(rdns.join(","))
    }

    /// A registered DN in the form [`render`] writes: attribute types by their RFC 4514 short
    /// name in upper case, spaces around `,` `+` `=` dropped, escapes written the one way
    /// `render` writes them. `None` if it is not an RFC 4514 string.
    pub fn normalize(dn: &str) -> Option<String> {
        let mut out = String::new();
        // Only leading spaces go here: a trailing one may be escaped (`CN=a\\ `).
        let mut chars = dn.trim_start().chars().peekable();
        loop {
            // attributeType
            let mut ty = String::new();
            loop {
                match chars.next()? {
                    '=' => break,
                    c => ty.push(c),
                }
            }
            let ty = ty.trim();
            // §3: a keystring or a numericoid.
            if ty.is_empty() || !ty.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.') {
                return None;
            }
            let upper = ty.to_ascii_uppercase();
            let ty = if upper.starts_with("OID.") { upper[4..].to_owned() } else { upper };
            let ty = SHORT_NAMES.iter().find(|(o, _)| *o == ty).map_or(ty.clone(), |(_, n)| (*n).to_owned());
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            // attributeValue, up to an unescaped `,` or `+`; `\XX` escapes are UTF-8 bytes.
            let mut value = Vec::new();
            let mut escaped_tail = 0;
            let mut first_escaped = false;
            let mut separator = None;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        first_escaped |= value.is_empty();
                        let next = chars.next()?;
                        if next.is_ascii_hexdigit() {
                            let lo = chars.next()?;
                            value.push(u8::from_str_radix(&format!("{next}{lo}"), 16).ok()?);
                        } else {
                            let mut buf = [0; 4];
                            value.extend_from_slice(next.encode_utf8(&mut buf).as_bytes());
                        }
                        escaped_tail = value.len();
                    }
                    ',' | '+' => {
                        separator = Some(c);
                        break;
                    }
                    c => {
                        let mut buf = [0; 4];
                        value.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                    }
                }
            }
            let value = String::from_utf8(value).ok()?;
            // Unescaped trailing spaces are insignificant (§3); escaped ones are kept.
            let keep = value.trim_end().len().max(escaped_tail);
            let value = &value[..keep];
            if value.starts_with('#') && !first_escaped {
                out.push_str(&format!("{ty}={}", value.to_ascii_lowercase()));
            } else {
                out.push_str(&format!("{ty}={}", escape(value)));
            }
            match separator {
                Some(sep) => {
                    out.push(sep);
                    while chars.peek() == Some(&' ') {
                        chars.next();
                    }
                }
                None => return Some(out),
            }
        }
    }
}

#[cfg(test)]
#[path = "certificate_tests.rs"]
mod tests;

//! TLS: rustls with the aws-lc provider, HTTP/2 and HTTP/1.1 by ALPN, and a development
//! certificate made once per data directory.

use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Paths of a development certificate.
#[derive(Debug, Clone)]
pub struct DevCert {
    /// The development CA certificate: what clients trust (`curl --cacert`).
    pub ca: PathBuf,
    /// The server certificate chain.
    pub cert: PathBuf,
    /// The server private key (0600).
    pub key: PathBuf,
}

/// TLS set-up failures.
#[derive(Debug, thiserror::Error)]
#[error("TLS: {0}")]
pub struct TlsError(pub String);

fn tls_err(e: impl std::fmt::Display) -> TlsError {
    TlsError(e.to_string())
}

fn write_file(path: &Path, contents: &str, mode: u32) -> Result<(), TlsError> {
    let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(path).map_err(tls_err)?;
    f.write_all(contents.as_bytes()).map_err(tls_err)?;
    f.sync_all().map_err(tls_err)
}

/// Refuses a private file (TLS private key, key-encryption key) that group or others may
/// access: we fail closed rather than warn. The message names the fix.
pub fn check_private(path: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = fs::metadata(path).map_err(|e| e.to_string())?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "private key file is accessible by group or others (mode {mode:04o}); run `chmod 600 {}`",
            path.display()
        ));
    }
    Ok(())
}

/// Returns the development certificate in `data_dir/tls`, generating it the first time:
/// a CA valid for ten years whose private key is discarded once it has signed, and a server
/// certificate for `localhost`, `127.0.0.1` and `::1` signed by it.
pub fn dev_cert(data_dir: &Path) -> Result<DevCert, TlsError> {
    let dir = data_dir.join("tls");
    let paths = DevCert { ca: dir.join("dev-ca.pem"), cert: dir.join("dev-cert.pem"), key: dir.join("dev-key.pem") };
    if paths.ca.exists() && paths.cert.exists() && paths.key.exists() {
        return Ok(paths);
    }
    fs::create_dir_all(&dir).map_err(tls_err)?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(tls_err)?;
    ca_params.distinguished_name.push(DnType::CommonName, "Tessera development CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca_params);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().map_err(tls_err)?).map_err(tls_err)?;

    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()])
        .map_err(tls_err)?;
    params.distinguished_name.push(DnType::CommonName, "localhost");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    set_validity(&mut params);
    let key = KeyPair::generate().map_err(tls_err)?;
    let cert = params.signed_by(&key, &ca).map_err(tls_err)?;

    write_file(&paths.key, &key.serialize_pem(), 0o600)?;
    write_file(&paths.cert, &format!("{}{}", cert.pem(), ca.pem()), 0o644)?;
    write_file(&paths.ca, &ca.pem(), 0o644)?;
    Ok(paths)
}

/// Validity from the start of last year to ten years on (years are all an X.509 date needs
/// here, and rcgen takes them without another time crate).
fn set_validity(params: &mut CertificateParams) {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let year = 1970 + (secs / 31_556_952) as i32;
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

/// Asks every client for a certificate and accepts any, or none (RFC 8705 §2: "the TLS
/// handshake ... requests a client certificate"; whether one is required is up to the client's
/// registration). The handshake still proves the client holds the certificate's private key
/// (the CertificateVerify signature is checked here); what the certificate is worth — a
/// registered thumbprint, a chain to a client CA, a subject — is decided per client at the
/// endpoint, where `invalid_client` can be answered, not by aborting the handshake.
#[derive(Debug)]
struct OptionalClientCertificate {
    algs: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::server::danger::ClientCertVerifier for OptionalClientCertificate {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    // No CA names: clients that pick a certificate by the CAs the server names (Java, .NET)
    // would otherwise never offer a self-signed one.
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// A rustls server configuration from PEM files, offering h2 and http/1.1 and asking for an
/// optional client certificate (mutual TLS, RFC 8705).
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError(format!("{}: {e}", cert.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError(format!("{}: {e}", cert.display())))?;
    if certs.is_empty() {
        return Err(TlsError(format!("{}: no certificate", cert.display())));
    }
    check_private(key).map_err(|why| TlsError(format!("{}: {why}", key.display())))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError(format!("{}: {e}", key.display())))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let verifier = Arc::new(OptionalClientCertificate { algs: provider.signature_verification_algorithms });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

//! go-plugin's AutoMTLS, server side.
//!
//! Terraform generates a throw-away client certificate for every plugin it
//! starts and passes it as PEM in `PLUGIN_CLIENT_CERT`. The plugin answers
//! with a throw-away server certificate of its own (printed as unpadded
//! base64 DER in the handshake line), requires the client to present a
//! certificate and accepts only the one it was given.
//!
//! go-plugin's client certificate is self-signed, marked as a CA and uses an
//! ECDSA P-521 key. WebPKI path validation refuses a CA certificate used as
//! an end entity, so the verifier here *pins* the certificate instead: the
//! presented leaf must be byte-for-byte one of the PEM certificates (or, for
//! clients that send a leaf issued by the PEM certificate, chain to it through
//! WebPKI). The TLS handshake signature is always checked against the leaf's
//! key, so presenting the (public) certificate without its key fails. P-521
//! signatures need the aws-lc-rs crypto provider; ring lacks them, and a Go
//! client offered no scheme for its key silently sends no certificate.

use std::sync::Arc;

use base64::Engine as _;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use super::PluginError;

/// The host name in our certificate and the one go-plugin's client expects.
pub const SERVER_NAME: &str = "localhost";

/// How long our certificate is valid: go-plugin's 262 980 hours (30 years).
const VALIDITY: time::Duration = time::Duration::hours(262_980);

/// Our TLS identity and the configuration built around it.
pub struct ServerTls {
    /// The rustls server configuration (client certificate required, ALPN `h2`).
    pub config: Arc<rustls::ServerConfig>,
    /// Our leaf certificate, DER.
    pub cert_der: CertificateDer<'static>,
}

impl ServerTls {
    /// Builds the server side of AutoMTLS for the client certificate(s) in
    /// `client_cert_pem`.
    pub fn new(client_cert_pem: &str) -> Result<Self, PluginError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let pinned = parse_client_certs(client_cert_pem)?;
        let (cert_der, key) = generate_server_cert()?;
        let verifier = PinnedClientCertVerifier::new(pinned, provider.clone());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(PluginError::Tls)?
            .with_client_cert_verifier(Arc::new(verifier))
            .with_single_cert(vec![cert_der.clone()], key)
            .map_err(PluginError::Tls)?;
        config.alpn_protocols = vec![b"h2".to_vec()];
        Ok(Self {
            config: Arc::new(config),
            cert_der,
        })
    }

    /// Field 6 of the handshake line: our leaf DER in base64 without padding
    /// (go-plugin's `base64.RawStdEncoding`).
    pub fn cert_field(&self) -> String {
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(self.cert_der.as_ref())
    }
}

/// All certificates in a PEM bundle; at least one is required.
pub fn parse_client_certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, PluginError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PluginError::ClientCert(e.to_string()))?;
    if certs.is_empty() {
        return Err(PluginError::ClientCert(
            "PLUGIN_CLIENT_CERT holds no PEM certificate".into(),
        ));
    }
    Ok(certs)
}

/// A fresh self-signed ECDSA P-256 certificate for `localhost` (CN and DNS
/// SAN), valid from 30 s ago for 30 years, usable for server and client
/// authentication. Unlike go-plugin's it is not a CA: Go accepts a leaf that
/// is itself in the root pool, and so WebPKI clients can trust it too.
pub fn generate_server_cert(
) -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), PluginError> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(PluginError::CertGen)?;
    let mut params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_owned()])
        .map_err(PluginError::CertGen)?;
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, SERVER_NAME);
    name.push(rcgen::DnType::OrganizationName, "terraform-provider-ep");
    params.distinguished_name = name;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + VALIDITY;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.serial_number = Some(rcgen::SerialNumber::from_slice(&random_serial()));
    let cert = params.self_signed(&key).map_err(PluginError::CertGen)?;
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    Ok((cert.der().clone(), key_der))
}

/// 16 random bytes with the top bit cleared (a positive serial number).
fn random_serial() -> [u8; 16] {
    let mut bytes = [0u8; 16];
    // The serial only needs to be unique-ish; fall back to a fixed value if
    // the system RNG is unavailable rather than failing the handshake.
    if rustls::crypto::aws_lc_rs::default_provider()
        .secure_random
        .fill(&mut bytes)
        .is_err()
    {
        bytes = [0x42; 16];
    }
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    bytes
}

/// Accepts exactly the client certificates it was given (see module docs).
#[derive(Debug)]
pub struct PinnedClientCertVerifier {
    pinned: Vec<CertificateDer<'static>>,
    chained: Option<Arc<dyn ClientCertVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedClientCertVerifier {
    /// A verifier accepting `pinned` leaves, or leaves that chain to them.
    pub fn new(pinned: Vec<CertificateDer<'static>>, provider: Arc<CryptoProvider>) -> Self {
        let mut roots = RootCertStore::empty();
        let (added, _ignored) = roots.add_parsable_certificates(pinned.iter().cloned());
        let chained = if added > 0 {
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .ok()
        } else {
            None
        };
        Self {
            pinned,
            chained,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

impl ClientCertVerifier for PinnedClientCertVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // No hints: a Go client then offers its only certificate whatever its
        // issuer, as long as we accept its signature scheme.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if self
            .pinned
            .iter()
            .any(|p| p.as_ref() == end_entity.as_ref())
        {
            return Ok(ClientCertVerified::assertion());
        }
        match &self.chained {
            Some(chained) => chained
                .verify_client_cert(end_entity, intermediates, now)
                .map_err(|_| {
                    rustls::Error::InvalidCertificate(
                        rustls::CertificateError::ApplicationVerificationFailure,
                    )
                }),
            None => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_cert_field_is_unpadded_base64_of_der() {
        let pem = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])
            .map(|c| c.cert.pem())
            .unwrap_or_default();
        let tls = ServerTls::new(&pem);
        assert!(tls.is_ok(), "{:?}", tls.err());
        let Ok(tls) = tls else { return };
        let field = tls.cert_field();
        assert!(field.len() > 50);
        assert!(!field.contains('='));
        let decoded = base64::engine::general_purpose::STANDARD_NO_PAD.decode(&field);
        assert_eq!(decoded.ok().as_deref(), Some(tls.cert_der.as_ref()));
        assert_eq!(tls.config.alpn_protocols, vec![b"h2".to_vec()]);
    }

    #[test]
    fn verifier_offers_p521_and_rejects_strangers() {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let (ours, _) = generate_server_cert().unwrap_or_else(|e| panic!("{e}"));
        let (other, _) = generate_server_cert().unwrap_or_else(|e| panic!("{e}"));
        let v = PinnedClientCertVerifier::new(vec![ours.clone()], provider);
        assert!(v
            .supported_verify_schemes()
            .contains(&SignatureScheme::ECDSA_NISTP521_SHA512));
        assert!(v.verify_client_cert(&ours, &[], UnixTime::now()).is_ok());
        assert!(v.verify_client_cert(&other, &[], UnixTime::now()).is_err());
        assert!(v.client_auth_mandatory());
    }

    #[test]
    fn bad_pem_is_an_error() {
        assert!(parse_client_certs("").is_err());
        assert!(parse_client_certs("not a pem").is_err());
    }
}

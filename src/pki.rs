//! courier's private PKI: the CA the server creates on first start, its
//! server certificate, agent certificates signed from CSRs, and the rustls
//! configurations of both ends.
//!
//! Agents trust exactly one CA, pinned by the SHA-256 fingerprint that every
//! enrolment token carries; the server knows an agent by the fingerprint of
//! its client certificate, never by a name in a message. The server
//! certificate names `courier-server` and agents verify that name whatever
//! address they dial, so a server reached by IP, through NAT or under a new
//! DNS name needs no new certificate.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

/// The name in the server certificate that agents verify.
pub const SERVER_NAME: &str = "courier-server";

/// ring's TLS, with AES-128-GCM (SHA-256) preferred: both ends are
/// courier, and against AES-256-GCM (SHA-384) it encrypts content faster
/// and derives each session's keys with SHA-256, which the CPU computes in
/// hardware: a fan-out of gigabytes and check-ins of 50,000 agents both
/// feel it (docs/PERFORMANCE.md).
pub fn provider() -> Arc<CryptoProvider> {
    let mut p = rustls::crypto::ring::default_provider();
    p.cipher_suites
        .sort_by_key(|s| s.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    Arc::new(p)
}

/// Hex SHA-256 of a DER certificate: how CAs and agents are identified.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// Fingerprint of the first certificate in a PEM text.
pub fn fingerprint_pem(pem: &str) -> Result<String> {
    let der =
        CertificateDer::from_pem_slice(pem.as_bytes()).map_err(|e| anyhow!("certificate: {e}"))?;
    Ok(fingerprint(&der))
}

/// Writes a file readable by its owner only (keys, tokens).
pub fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o
        .open(&tmp)
        .with_context(|| format!("{}: cannot write", tmp.display()))?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))?;
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))
}

/// The server's CA and certificate, kept in `<data>/tls/`.
pub struct ServerPki {
    ca_key: KeyPair,
    ca_pem: String,
    ca_der: CertificateDer<'static>,
    server_chain: Vec<CertificateDer<'static>>,
    server_key_pem: String,
}

impl ServerPki {
    /// Loads the PKI from `dir`, creating CA and server certificate on first
    /// use.
    pub fn load_or_create(dir: &Path) -> Result<ServerPki> {
        crate::datadir::create_private_dir(dir)?;
        let (ca_key_p, ca_p) = (dir.join("ca.key"), dir.join("ca.pem"));
        let (srv_key_p, srv_p) = (dir.join("server.key"), dir.join("server.pem"));
        if !ca_p.exists() {
            let key = KeyPair::generate().context("CA key")?;
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            let mut suffix = [0u8; 4];
            getrandom::fill(&mut suffix).map_err(|e| anyhow!("random: {e}"))?;
            params.distinguished_name.push(
                DnType::CommonName,
                format!("courier CA {}", hex::encode(suffix)),
            );
            params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
            params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
            let cert = params.self_signed(&key)?;
            write_private(&ca_key_p, key.serialize_pem().as_bytes())?;
            write_private(&ca_p, cert.pem().as_bytes())?;
            // A new CA invalidates any server certificate left from before.
            let _ = std::fs::remove_file(&srv_p);
        }
        let ca_key = KeyPair::from_pem(&read(&ca_key_p)?).context("CA key")?;
        let ca_pem = read(&ca_p)?;
        let ca_der = CertificateDer::from_pem_slice(ca_pem.as_bytes())
            .map_err(|e| anyhow!("{}: {e}", ca_p.display()))?;
        if !srv_p.exists() {
            let issuer = Issuer::from_ca_cert_pem(&ca_pem, &ca_key)?;
            let key = KeyPair::generate()?;
            let mut params = CertificateParams::new(vec![SERVER_NAME.to_string()])?;
            params
                .distinguished_name
                .push(DnType::CommonName, SERVER_NAME);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            let cert = params.signed_by(&key, &issuer)?;
            write_private(&srv_key_p, key.serialize_pem().as_bytes())?;
            write_private(&srv_p, cert.pem().as_bytes())?;
        }
        let server_der = CertificateDer::from_pem_slice(read(&srv_p)?.as_bytes())
            .map_err(|e| anyhow!("{}: {e}", srv_p.display()))?;
        Ok(ServerPki {
            ca_key,
            ca_pem,
            server_chain: vec![server_der, ca_der.clone()],
            ca_der,
            server_key_pem: read(&srv_key_p)?,
        })
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    pub fn ca_fingerprint(&self) -> String {
        fingerprint(&self.ca_der)
    }

    /// Signs an agent's CSR as a client certificate for `name`. Only the
    /// public key is taken from the request; every other field is ours.
    /// Returns the certificate PEM and its fingerprint.
    pub fn sign_agent(&self, csr_pem: &str, name: &str) -> Result<(String, String)> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| anyhow!("invalid certificate request: {e}"))?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let mut serial = [0u8; 16];
        getrandom::fill(&mut serial).map_err(|e| anyhow!("random: {e}"))?;
        serial[0] &= 0x7f;
        params.serial_number = Some(serial.to_vec().into());
        let issuer = Issuer::from_ca_cert_pem(&self.ca_pem, &self.ca_key)?;
        let cert = params.signed_by(&csr.public_key, &issuer)?;
        Ok((cert.pem(), fingerprint(cert.der())))
    }

    /// TLS for the agent listener: our chain, and client certificates from
    /// our CA accepted but not required (enrolment comes without one; every
    /// other endpoint checks for it).
    pub fn server_config(&self) -> Result<rustls::ServerConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca_der.clone())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()?;
        let key = PrivateKeyDer::from_pem_slice(self.server_key_pem.as_bytes())
            .map_err(|e| anyhow!("server key: {e}"))?;
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.server_chain.clone(), key)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Stateless resumption tickets: an agent that checks in on a new
        // connection skips the full handshake and the certificate check
        // (the ticket carries its verified certificate), however many
        // agents there are.
        cfg.ticketer = rustls::crypto::ring::Ticketer::new()?;
        Ok(cfg)
    }
}

/// An agent's key and CSR, made before enrolment.
pub fn agent_key_and_csr(name: &str) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(DnType::CommonName, name);
    let csr = params.serialize_request(&key)?;
    Ok((key.serialize_pem(), csr.pem()?))
}

/// Verifies the server against one CA, always under [`SERVER_NAME`].
#[derive(Debug)]
struct CourierServerVerifier {
    /// Set when the CA is known (after enrolment).
    inner: Option<Arc<WebPkiServerVerifier>>,
    /// Set before enrolment: the CA is whichever certificate the server
    /// presents whose SHA-256 is this.
    pinned: Option<String>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for CourierServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = ServerName::try_from(SERVER_NAME)
            .map_err(|_| rustls::Error::General("server name".into()))?;
        if let Some(inner) = &self.inner {
            return inner.verify_server_cert(end_entity, intermediates, &name, ocsp_response, now);
        }
        let pin = self.pinned.as_deref().unwrap_or_default();
        let ca = intermediates
            .iter()
            .find(|c| fingerprint(c) == pin)
            .ok_or_else(|| {
                rustls::Error::General(
                    "the server's CA does not match the fingerprint in the token".into(),
                )
            })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let v = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        v.verify_server_cert(end_entity, intermediates, &name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// TLS for an agent that has not enrolled yet: trusts the CA whose
/// fingerprint the token carries, presents no certificate.
pub fn enrol_client_config(ca_fingerprint: &str) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let verifier = CourierServerVerifier {
        inner: None,
        pinned: Some(ca_fingerprint.to_ascii_lowercase()),
        provider: provider.clone(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth())
}

/// TLS for an enrolled agent: trusts its CA, presents its certificate.
pub fn agent_client_config(
    ca_pem: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<rustls::ClientConfig> {
    let provider = provider();
    let ca = CertificateDer::from_pem_slice(ca_pem.as_bytes()).map_err(|e| anyhow!("CA: {e}"))?;
    let mut roots = RootCertStore::empty();
    roots.add(ca)?;
    let inner =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build()?;
    let verifier = CourierServerVerifier {
        inner: Some(inner),
        pinned: None,
        provider: provider.clone(),
    };
    let cert = CertificateDer::from_pem_slice(cert_pem.as_bytes())
        .map_err(|e| anyhow!("certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| anyhow!("key: {e}"))?;
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(vec![cert], key)?)
}

/// Splits a token `ct1.<secret>.<ca fingerprint>` into its parts.
pub fn parse_token(token: &str) -> Result<(&str, &str)> {
    let mut parts = token.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("ct1"), Some(secret), Some(fp), None)
            if secret.len() >= 16
                && fp.len() == 64
                && fp.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            Ok((secret, fp))
        }
        _ => bail!(
            "malformed token: expected ct1.<secret>.<fingerprint> as printed by 'courier token create'"
        ),
    }
}

/// A fresh token secret and the token string that carries it.
pub fn new_token(ca_fingerprint: &str) -> Result<(String, String)> {
    let mut raw = [0u8; 18];
    getrandom::fill(&mut raw).map_err(|e| anyhow!("random: {e}"))?;
    let secret = hex::encode(raw);
    Ok((secret.clone(), format!("ct1.{secret}.{ca_fingerprint}")))
}

/// What the server stores of a token secret.
pub fn token_digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pki_is_created_once_and_signs_agents() {
        let t = tempfile::tempdir().unwrap();
        let a = ServerPki::load_or_create(t.path()).unwrap();
        let b = ServerPki::load_or_create(t.path()).unwrap();
        assert_eq!(a.ca_fingerprint(), b.ca_fingerprint());
        let (_key, csr) = agent_key_and_csr("pc-01").unwrap();
        let (cert, fp) = a.sign_agent(&csr, "pc-01").unwrap();
        assert!(cert.contains("BEGIN CERTIFICATE"));
        assert_eq!(fp.len(), 64);
        a.server_config().unwrap();
        assert!(a.sign_agent("garbage", "x").is_err());
    }

    #[test]
    fn tokens_round_trip() {
        let fp = "ab".repeat(32);
        let (secret, token) = new_token(&fp).unwrap();
        assert_eq!(parse_token(&token).unwrap(), (secret.as_str(), fp.as_str()));
        assert!(parse_token("ct1.short.abc").is_err());
        assert_ne!(token_digest(&secret), secret);
    }
}

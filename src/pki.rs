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
//!
//! Certificates expire: an agent's after [`AGENT_CERT_LIFETIME`] (it renews
//! it when a third is left), the server's after [`SERVER_CERT_LIFETIME`]
//! (re-issued from the CA when a third is left: agents pin the CA, not the
//! server certificate), the CA after [`CA_LIFETIME`] (not renewed).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use anyhow::{Context, Result, anyhow, bail};
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime as UnixTime_};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::time_provider::TimeProvider;
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};

use crate::clock::{Clock, UnixTime, rfc3339};

/// The name in the server certificate that agents verify.
pub const SERVER_NAME: &str = "courier-server";

const DAY: i64 = 86_400;

/// How long an agent certificate is valid. The agent renews it when less
/// than a third of that is left, so a stolen agent key works for a year at
/// most unless its thief keeps renewing it (docs/SECURITY.md).
pub const AGENT_CERT_LIFETIME: i64 = 365 * DAY;

/// How long the server's certificate is valid. It is re-issued from the CA
/// when less than a third is left: when the server starts, and by its
/// sweep while it runs.
pub const SERVER_CERT_LIFETIME: i64 = 365 * DAY;

/// How long the CA is valid. Nothing renews it: a new CA means new tokens
/// and every agent enrolled again (docs/SECURITY.md).
pub const CA_LIFETIME: i64 = 20 * 365 * DAY;

/// Certificates are valid from an hour before they are signed, so that a
/// computer whose clock is a little behind the server's takes them.
pub const CLOCK_SKEW: i64 = 3600;

/// When a certificate is valid, in Unix seconds (both ends included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: UnixTime,
    pub not_after: UnixTime,
}

impl Validity {
    /// The validity of a DER certificate.
    pub fn of_der(der: &[u8]) -> Result<Validity> {
        let (not_before, not_after) = validity::read(der)?;
        Ok(Validity {
            not_before,
            not_after,
        })
    }

    /// The validity of the first certificate in a PEM text.
    pub fn of_pem(pem: &str) -> Result<Validity> {
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| anyhow!("certificate: {e}"))?;
        Validity::of_der(&der)
    }

    /// A certificate signed at `now` for `lifetime` seconds, never
    /// outliving `cap` (the CA that signs it).
    fn signed_at(now: UnixTime, lifetime: i64, cap: Option<UnixTime>) -> Validity {
        let end = now.saturating_add(lifetime);
        Validity {
            not_before: now - CLOCK_SKEW,
            not_after: cap.map_or(end, |c| c.min(end)),
        }
    }

    /// Whether the certificate has expired at `now`.
    pub fn expired(&self, now: UnixTime) -> bool {
        now > self.not_after
    }

    /// Whether a certificate of a kind issued for `lifetime` seconds should
    /// be replaced at `now`: less than a third of its life is left (or
    /// none), or it is valid for far longer than `lifetime` from now (made
    /// before certificates expired: those run until 4096).
    pub fn renewal_due(&self, now: UnixTime, lifetime: i64) -> bool {
        let life = self.not_after - self.not_before;
        let left = self.not_after - now;
        left.saturating_mul(3) < life || left > lifetime.saturating_mul(2)
    }

    fn apply(&self, params: &mut CertificateParams) {
        let at = |t: UnixTime| {
            rcgen::date_time_ymd(1970, 1, 1) + std::time::Duration::from_secs(t.max(0) as u64)
        };
        params.not_before = at(self.not_before);
        params.not_after = at(self.not_after);
    }
}

/// A random positive serial number, so that no two certificates share one.
fn random_serial(params: &mut CertificateParams) -> Result<()> {
    let mut serial = [0u8; 16];
    getrandom::fill(&mut serial).map_err(|e| anyhow!("random: {e}"))?;
    serial[0] &= 0x7f;
    params.serial_number = Some(serial.to_vec().into());
    Ok(())
}

fn parse_csr(csr_pem: &str) -> Result<CertificateSigningRequestParams> {
    CertificateSigningRequestParams::from_pem(csr_pem)
        .map_err(|e| anyhow!("invalid certificate request: {e}"))
}

/// Whether `csr_pem` is a certificate request the server would sign (its
/// own signature checks out): the error says what is wrong.
pub fn check_csr(csr_pem: &str) -> Result<()> {
    parse_csr(csr_pem).map(|_| ())
}

/// An agent certificate just signed.
#[derive(Debug, Clone)]
pub struct Signed {
    pub cert_pem: String,
    pub fingerprint: String,
    pub validity: Validity,
}

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
    ca: Ca,
    /// What the listener presents; replaced in place when re-issued.
    server: Arc<ServerCert>,
}

/// The CA: its key and certificate, and the folder they are kept in.
struct Ca {
    dir: PathBuf,
    key: KeyPair,
    pem: String,
    der: CertificateDer<'static>,
    validity: Validity,
}

/// The server certificate of the listener, with its key and validity.
#[derive(Debug)]
struct ServerCert(RwLock<(Arc<CertifiedKey>, Validity)>);

impl ServerCert {
    fn get(&self) -> (Arc<CertifiedKey>, Validity) {
        self.0
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ResolvesServerCert for ServerCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.get().0)
    }
}

/// rustls asks the server's [`Clock`] for the time it judges client
/// certificates by, as every other rule of the server does.
#[derive(Debug)]
struct ClockTime(Clock);

impl TimeProvider for ClockTime {
    fn current_time(&self) -> Option<UnixTime_> {
        let secs = u64::try_from(self.0.now()).ok()?;
        Some(UnixTime_::since_unix_epoch(std::time::Duration::from_secs(
            secs,
        )))
    }
}

impl Ca {
    /// The CA in `dir`, made on first use.
    fn load_or_create(dir: &Path, now: UnixTime) -> Result<Ca> {
        crate::datadir::create_private_dir(dir)?;
        let (key_p, pem_p) = (dir.join("ca.key"), dir.join("ca.pem"));
        if !pem_p.exists() {
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
            Validity::signed_at(now, CA_LIFETIME, None).apply(&mut params);
            random_serial(&mut params)?;
            let cert = params.self_signed(&key)?;
            write_private(&key_p, key.serialize_pem().as_bytes())?;
            write_private(&pem_p, cert.pem().as_bytes())?;
            // A new CA invalidates any server certificate left from before.
            let _ = std::fs::remove_file(dir.join("server.pem"));
        }
        let key = KeyPair::from_pem(&read(&key_p)?).context("CA key")?;
        let pem = read(&pem_p)?;
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|e| anyhow!("{}: {e}", pem_p.display()))?;
        let validity = Validity::of_der(&der).with_context(|| format!("{}", pem_p.display()))?;
        Ok(Ca {
            dir: dir.to_path_buf(),
            key,
            pem,
            der,
            validity,
        })
    }

    /// The server certificate and key in the CA's folder, checked to match.
    fn load_server(&self) -> Result<(Arc<CertifiedKey>, Validity)> {
        let srv_p = self.dir.join("server.pem");
        let der = CertificateDer::from_pem_slice(read(&srv_p)?.as_bytes())
            .map_err(|e| anyhow!("{}: {e}", srv_p.display()))?;
        let key = PrivateKeyDer::from_pem_slice(read(&self.dir.join("server.key"))?.as_bytes())
            .map_err(|e| anyhow!("server key: {e}"))?;
        let validity = Validity::of_der(&der)?;
        let ck = CertifiedKey::from_der(vec![der, self.der.clone()], key, &provider())?;
        Ok((Arc::new(ck), validity))
    }

    /// Signs a new server certificate with a new key and writes both. A
    /// crash between the two writes leaves a key that does not match the
    /// certificate: the next load issues again.
    fn issue_server(&self, now: UnixTime) -> Result<(Arc<CertifiedKey>, Validity)> {
        self.check(now)?;
        let issuer = Issuer::from_ca_cert_pem(&self.pem, &self.key)?;
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![SERVER_NAME.to_string()])?;
        params
            .distinguished_name
            .push(DnType::CommonName, SERVER_NAME);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        Validity::signed_at(now, SERVER_CERT_LIFETIME, Some(self.validity.not_after))
            .apply(&mut params);
        random_serial(&mut params)?;
        let cert = params.signed_by(&key, &issuer)?;
        write_private(&self.dir.join("server.key"), key.serialize_pem().as_bytes())?;
        write_private(&self.dir.join("server.pem"), cert.pem().as_bytes())?;
        let server = self.load_server()?;
        tracing::info!(
            "server certificate issued, valid until {}",
            rfc3339(server.1.not_after)
        );
        Ok(server)
    }

    /// Refuses to sign once the CA has expired: nothing it signs would be
    /// trusted.
    fn check(&self, now: UnixTime) -> Result<()> {
        if self.validity.expired(now) {
            bail!(
                "the server's CA ({}) expired at {}: agents trust no certificate it signs; a new CA means new tokens and every agent enrolled again (docs/SECURITY.md)",
                self.dir.join("ca.pem").display(),
                rfc3339(self.validity.not_after)
            );
        }
        Ok(())
    }
}

impl ServerPki {
    /// Loads the PKI from `dir`, creating CA and server certificate on first
    /// use, and issuing a new server certificate when the one there is due
    /// (a third of its life left, expired, damaged or not matching its key).
    pub fn load_or_create(dir: &Path, now: UnixTime) -> Result<ServerPki> {
        let ca = Ca::load_or_create(dir, now)?;
        let server = match ca.load_server() {
            Ok(s) if !s.1.renewal_due(now, SERVER_CERT_LIFETIME) => s,
            _ => ca.issue_server(now)?,
        };
        Ok(ServerPki {
            ca,
            server: Arc::new(ServerCert(RwLock::new(server))),
        })
    }

    /// Issues a new server certificate if the one presented is due, and
    /// presents it from the next handshake on (agents pin the CA, so they
    /// take it). Returns its validity when it did.
    pub fn refresh_server(&self, now: UnixTime) -> Result<Option<Validity>> {
        if !self.server.get().1.renewal_due(now, SERVER_CERT_LIFETIME) {
            return Ok(None);
        }
        let new = self.ca.issue_server(now)?;
        let validity = new.1;
        *self
            .server
            .0
            .write()
            .unwrap_or_else(PoisonError::into_inner) = new;
        Ok(Some(validity))
    }

    /// When the server certificate presented now is valid.
    pub fn server_validity(&self) -> Validity {
        self.server.get().1
    }

    pub fn ca_validity(&self) -> Validity {
        self.ca.validity
    }

    pub fn ca_pem(&self) -> &str {
        &self.ca.pem
    }

    pub fn ca_fingerprint(&self) -> String {
        fingerprint(&self.ca.der)
    }

    /// Signs an agent's CSR as a client certificate for `name`, valid from
    /// `now` (less [`CLOCK_SKEW`]) for [`AGENT_CERT_LIFETIME`], or until the
    /// CA ends if that comes first. Only the public key is taken from the
    /// request; every other field is ours.
    pub fn sign_agent(&self, csr_pem: &str, name: &str, now: UnixTime) -> Result<Signed> {
        let csr = parse_csr(csr_pem)?;
        self.ca.check(now)?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, name);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let validity =
            Validity::signed_at(now, AGENT_CERT_LIFETIME, Some(self.ca.validity.not_after));
        validity.apply(&mut params);
        random_serial(&mut params)?;
        let issuer = Issuer::from_ca_cert_pem(&self.ca.pem, &self.ca.key)?;
        let cert = params.signed_by(&csr.public_key, &issuer)?;
        Ok(Signed {
            cert_pem: cert.pem(),
            fingerprint: fingerprint(cert.der()),
            validity,
        })
    }

    /// TLS for the agent listener: our chain, and client certificates from
    /// our CA accepted but not required (enrolment comes without one; every
    /// other endpoint checks for it). Client certificates are judged by
    /// `clock`, the server's.
    pub fn server_config(&self, clock: Clock) -> Result<rustls::ServerConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.der.clone())?;
        let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .allow_unauthenticated()
            .build()?;
        let mut cfg =
            rustls::ServerConfig::builder_with_details(provider(), Arc::new(ClockTime(clock)))
                .with_safe_default_protocol_versions()?
                .with_client_cert_verifier(verifier)
                .with_cert_resolver(self.server.clone());
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        // Stateless resumption tickets: an agent that checks in on a new
        // connection skips the full handshake and the certificate check
        // (the ticket carries its verified certificate), however many
        // agents there are. So a resumed session may carry a certificate
        // that has expired since: the listener checks its end on every
        // request (`server/listener.rs`, `as_agent`).
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
        now: UnixTime_,
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

/// Whether a request failed because the server refused the client
/// certificate as expired at the handshake (a TLS alert, somewhere in the
/// error's chain): nothing but enrolling again helps then.
pub fn refused_as_expired(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut src = Some(e);
    while let Some(s) = src {
        if s.to_string()
            .contains("received fatal alert: CertificateExpired")
        {
            return true;
        }
        src = s.source();
    }
    false
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
#[path = "pki_tests.rs"]
mod tests;

#[path = "pki_validity.rs"]
mod validity;

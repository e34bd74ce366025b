//! HTTPS for a self-hosted server: the certificate it presents and the rustls configuration.
//!
//! Two ways to get a certificate:
//! - given (`--tls-cert`, `--tls-key`): PEM files, e.g. from a real domain (`load_identity`);
//! - generated (`local_identity`): a small certificate authority made on first start and kept
//!   in the data directory (`tls/ca-certificate.pem`, and `tls/ca-key.pem` readable by the
//!   owner only), and on every start a fresh server certificate signed by it for the names
//!   this machine answers to: `localhost`, the host name (and `HOST.local`), every address of
//!   every network interface (LAN addresses included) and `127.0.0.1`/`::1` (`machine_names`).
//!   A tablet installs the CA once (the `/setup/ca` page, `setup_page`); a new server
//!   certificate after the shop's router hands out another address needs nothing on the
//!   tablets.
//!
//! The CA's subject name is derived from its key (`local_ca_parameters`), so the issuer of a
//! restarted server is rebuilt from the key file alone, with no certificate parser; the stored
//! CA certificate is what tablets download.
//!
//! A device that trusts a CA accepts what it signs for any site, so the local CA carries X.509
//! name constraints (`PermittedNames`, also kept in `tls/ca-permitted-names.txt`): it may vouch
//! only for loopback and private addresses, names under `localhost`, `local`, `lan`,
//! `home.arpa` and `internal`, and the names and addresses the machine had when the CA was
//! made. A name outside them later (a new host name, a public address) is left out of the
//! server certificate, since one name outside the constraints would make browsers refuse the
//! whole certificate.
//!
//! Keys are ECDSA P-256; the CA is valid for ten years, a server certificate for 397 days (the
//! longest any browser accepts) and is made anew at every start.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    NameConstraints, PublicKeyData, SanType, SerialNumber,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why HTTPS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A PEM file holds no certificate.
    #[error("{}: no PEM certificate in it", path.display())]
    NoCertificate { path: PathBuf },
    /// A PEM file holds no private key, or one that cannot be read.
    #[error("{}: no PEM private key in it ({reason})", path.display())]
    NoPrivateKey { path: PathBuf, reason: String },
    /// Making a key or a certificate failed.
    #[error("making a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate and key (e.g. they do not belong together).
    #[error("the certificate and key cannot be served: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The certificate chain and private key the server presents.
#[derive(Debug)]
pub struct TlsIdentity {
    /// The server's certificate first, then any intermediates.
    pub certificate_chain: Vec<CertificateDer<'static>>,
    pub private_key: PrivateKeyDer<'static>,
}

/// The public half of the local certificate authority: what a tablet downloads and installs.
#[derive(Clone, Debug)]
pub struct LocalCaCertificate {
    pub der: Vec<u8>,
    pub pem: String,
}

impl LocalCaCertificate {
    /// The SHA-256 fingerprint as browsers and Android show it: colon-separated upper-case hex.
    pub fn fingerprint_sha256(&self) -> String {
        Sha256::digest(&self.der)
            .iter()
            .map(|byte| format!("{byte:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }
}

/// A generated identity with the CA that signed it and the names it covers.
#[derive(Debug)]
pub struct LocalIdentity {
    pub identity: TlsIdentity,
    pub authority: LocalCaCertificate,
    /// The names and addresses in the server certificate.
    pub names: Vec<String>,
    /// Names asked for but left out: outside the CA's name constraints.
    pub left_out: Vec<String>,
    /// Base64 SHA-256 of the server certificate's SubjectPublicKeyInfo (what Chromium's
    /// `--ignore-certificate-errors-spki-list` takes).
    pub server_spki_sha256: String,
    /// The CA was made by this call (first start).
    pub authority_created: bool,
}

/// Reads a certificate chain and its private key from PEM files.
pub fn load_identity(certificate_file: &Path, key_file: &Path) -> Result<TlsIdentity, TlsError> {
    let certificate_pem = read_file(certificate_file)?;
    let certificate_chain = CertificateDer::pem_slice_iter(&certificate_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::NoCertificate {
            path: certificate_file.to_owned(),
        })?;
    if certificate_chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: certificate_file.to_owned(),
        });
    }
    let key_pem = read_file(key_file)?;
    let private_key =
        PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::NoPrivateKey {
            path: key_file.to_owned(),
            reason: error.to_string(),
        })?;
    Ok(TlsIdentity {
        certificate_chain,
        private_key,
    })
}

/// The directory under the data directory that holds the local CA and server certificate.
pub fn tls_directory(data_directory: &Path) -> PathBuf {
    data_directory.join("tls")
}

const CA_CERTIFICATE_FILE: &str = "ca-certificate.pem";
const CA_KEY_FILE: &str = "ca-key.pem";
const CA_PERMITTED_NAMES_FILE: &str = "ca-permitted-names.txt";
const SERVER_CERTIFICATE_FILE: &str = "server-certificate.pem";
const SERVER_KEY_FILE: &str = "server-key.pem";

/// DNS names (and every name below them) the local CA may vouch for, besides the names the
/// machine had when the CA was made: names a shop's network gives its machines.
const PERMITTED_DNS_SUFFIXES: &[&str] = &["localhost", "local", "lan", "home.arpa", "internal"];

/// Address ranges the local CA may vouch for: loopback, private, shared (carrier-grade NAT,
/// also used by mesh VPNs), link-local and unique-local.
const PERMITTED_ADDRESS_RANGES: &[&str] = &[
    "127.0.0.0/8",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "169.254.0.0/16",
    "::1/128",
    "fc00::/7",
    "fe80::/10",
];

/// The names a local CA is constrained to (its X.509 name constraints): DNS names with every
/// name below them, and address ranges. A certificate it signs for anything else is refused by
/// browsers, so a stolen CA key cannot impersonate other sites to the tablets that trust it.
#[derive(Clone, Debug, PartialEq)]
pub struct PermittedNames {
    dns_names: Vec<String>,
    address_ranges: Vec<(IpAddr, u8)>,
}

impl PermittedNames {
    /// The shop-network names and ranges, and every one of `names` (the machine's names when
    /// the CA is made) outside them, exactly.
    fn for_new_authority(names: &[String]) -> PermittedNames {
        let mut permitted = PermittedNames {
            dns_names: PERMITTED_DNS_SUFFIXES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            address_ranges: PERMITTED_ADDRESS_RANGES
                .iter()
                .filter_map(|range| parse_range(range))
                .collect(),
        };
        for name in names {
            if permitted.permits(name) {
                continue;
            }
            match name.parse::<IpAddr>() {
                Ok(address) => permitted
                    .address_ranges
                    .push((address, if address.is_ipv4() { 32 } else { 128 })),
                Err(_) => permitted.dns_names.push(name.to_ascii_lowercase()),
            }
        }
        permitted
    }

    /// Whether a certificate for `name` (a DNS name or an address) is within these names.
    pub fn permits(&self, name: &str) -> bool {
        match name.parse::<IpAddr>() {
            Ok(address) => self
                .address_ranges
                .iter()
                .any(|(network, prefix)| in_range(address, *network, *prefix)),
            Err(_) => {
                let name = name.to_ascii_lowercase();
                self.dns_names
                    .iter()
                    .any(|permitted| name == *permitted || name.ends_with(&format!(".{permitted}")))
            }
        }
    }

    /// One name or `ADDRESS/PREFIX` per line, as kept beside the CA.
    fn to_text(&self) -> String {
        let mut text = String::new();
        for name in &self.dns_names {
            text.push_str(name);
            text.push('\n');
        }
        for (address, prefix) in &self.address_ranges {
            text.push_str(&format!("{address}/{prefix}\n"));
        }
        text
    }

    fn from_text(text: &str) -> PermittedNames {
        let mut permitted = PermittedNames {
            dns_names: Vec::new(),
            address_ranges: Vec::new(),
        };
        for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
            match parse_range(line) {
                Some(range) => permitted.address_ranges.push(range),
                None => permitted.dns_names.push(line.to_owned()),
            }
        }
        permitted
    }

    fn name_constraints(&self) -> NameConstraints {
        let dns = self
            .dns_names
            .iter()
            .map(|name| GeneralSubtree::DnsName(name.clone()));
        let addresses = self.address_ranges.iter().map(|(address, prefix)| {
            GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(*address, *prefix))
        });
        NameConstraints {
            permitted_subtrees: dns.chain(addresses).collect(),
            excluded_subtrees: Vec::new(),
        }
    }
}

fn parse_range(text: &str) -> Option<(IpAddr, u8)> {
    let (address, prefix) = text.split_once('/')?;
    Some((address.parse().ok()?, prefix.parse().ok()?))
}

fn in_range(address: IpAddr, network: IpAddr, prefix: u8) -> bool {
    match (address, network) {
        (IpAddr::V4(address), IpAddr::V4(network)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            u32::from(address) & mask == u32::from(network) & mask
        }
        (IpAddr::V6(address), IpAddr::V6(network)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(prefix.min(128)))
                .unwrap_or(0);
            u128::from(address) & mask == u128::from(network) & mask
        }
        _ => false,
    }
}

/// The local CA of a data directory: its key, its certificate and the names it may vouch for
/// (`None` for a CA made before it had name constraints).
struct LocalAuthority {
    key: KeyPair,
    certificate: LocalCaCertificate,
    permitted: Option<PermittedNames>,
    created: bool,
}

/// Reads the local CA of `directory`, or makes one constrained to the shop's network and to
/// `names`.
fn local_authority(
    directory: &Path,
    names: &[String],
    now: time::OffsetDateTime,
) -> Result<LocalAuthority, TlsError> {
    let key_file = directory.join(CA_KEY_FILE);
    let certificate_file = directory.join(CA_CERTIFICATE_FILE);
    let permitted_file = directory.join(CA_PERMITTED_NAMES_FILE);
    if key_file.exists() && certificate_file.exists() {
        let key = KeyPair::from_pem(&String::from_utf8_lossy(&read_file(&key_file)?)).map_err(
            |error| TlsError::NoPrivateKey {
                path: key_file.clone(),
                reason: error.to_string(),
            },
        )?;
        let pem = String::from_utf8_lossy(&read_file(&certificate_file)?).into_owned();
        let der = CertificateDer::from_pem_slice(pem.as_bytes())
            .map_err(|_| TlsError::NoCertificate {
                path: certificate_file.clone(),
            })?
            .to_vec();
        let permitted = if permitted_file.exists() {
            Some(PermittedNames::from_text(&String::from_utf8_lossy(
                &read_file(&permitted_file)?,
            )))
        } else {
            None
        };
        return Ok(LocalAuthority {
            key,
            certificate: LocalCaCertificate { der, pem },
            permitted,
            created: false,
        });
    }
    let key = KeyPair::generate()?;
    let permitted = PermittedNames::for_new_authority(names);
    let mut parameters = local_ca_parameters(&key);
    parameters.not_before = now - time::Duration::days(1);
    parameters.not_after = now + time::Duration::days(3652);
    parameters.serial_number = Some(random_serial_number());
    parameters.name_constraints = Some(permitted.name_constraints());
    let certificate = parameters.self_signed(&key)?;
    // The key first: a CA certificate without its key would be made again anyway.
    write_private_file(&key_file, key.serialize_pem().as_bytes())?;
    write_file(&permitted_file, permitted.to_text().as_bytes())?;
    write_file(&certificate_file, certificate.pem().as_bytes())?;
    Ok(LocalAuthority {
        key,
        certificate: LocalCaCertificate {
            der: certificate.der().to_vec(),
            pem: certificate.pem(),
        },
        permitted: Some(permitted),
        created: true,
    })
}

/// The local CA of `data_directory` (made if missing) and a new server certificate it signs
/// for `names` (see `machine_names`), less any name outside the CA's name constraints (a host
/// name or address the machine did not have when the CA was made; `left_out` lists them).
/// The server certificate and key are also written beside the CA, for inspection or for a
/// reverse proxy.
pub fn local_identity(
    data_directory: &Path,
    names: &[String],
    now: time::OffsetDateTime,
) -> Result<LocalIdentity, TlsError> {
    let directory = tls_directory(data_directory);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&directory)
        .map_err(|source| TlsError::File {
            path: directory.clone(),
            source,
        })?;
    let authority = local_authority(&directory, names, now)?;
    let (names, left_out): (Vec<String>, Vec<String>) = names.iter().cloned().partition(|name| {
        authority
            .permitted
            .as_ref()
            .is_none_or(|permitted| permitted.permits(name))
    });
    let issuer = Issuer::new(local_ca_parameters(&authority.key), &authority.key);
    let server_key = KeyPair::generate()?;
    let (server_certificate, names) = issue_server_certificate(&issuer, &server_key, &names, now)?;
    write_private_file(
        &directory.join(SERVER_KEY_FILE),
        server_key.serialize_pem().as_bytes(),
    )?;
    write_file(
        &directory.join(SERVER_CERTIFICATE_FILE),
        format!("{}{}", server_certificate.pem(), authority.certificate.pem).as_bytes(),
    )?;
    let server_spki_sha256 = base64::engine::general_purpose::STANDARD
        .encode(Sha256::digest(server_key.subject_public_key_info()));
    Ok(LocalIdentity {
        identity: TlsIdentity {
            certificate_chain: vec![
                server_certificate.der().clone(),
                CertificateDer::from(authority.certificate.der.clone()),
            ],
            private_key: PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        },
        authority: authority.certificate,
        names,
        left_out,
        server_spki_sha256,
        authority_created: authority.created,
    })
}

/// A server certificate for `names` signed by `issuer`; the names it holds.
fn issue_server_certificate(
    issuer: &Issuer<'_, &KeyPair>,
    server_key: &KeyPair,
    names: &[String],
    now: time::OffsetDateTime,
) -> Result<(rcgen::Certificate, Vec<String>), TlsError> {
    let mut parameters = CertificateParams::default();
    parameters.subject_alt_names = names.iter().filter_map(|name| san(name)).collect();
    let mut subject = DistinguishedName::new();
    subject.push(DnType::OrganizationName, "Counterbook");
    subject.push(
        DnType::CommonName,
        names.first().map_or("counterbook-server", String::as_str),
    );
    parameters.distinguished_name = subject;
    parameters.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    parameters.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    parameters.use_authority_key_identifier_extension = true;
    parameters.not_before = now - time::Duration::hours(1);
    parameters.not_after = now + time::Duration::days(397);
    parameters.serial_number = Some(random_serial_number());
    let certificate = parameters.signed_by(server_key, issuer)?;
    let names = parameters
        .subject_alt_names
        .iter()
        .map(|name| match name {
            SanType::DnsName(name) => name.as_str().to_owned(),
            SanType::IpAddress(address) => address.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    Ok((certificate, names))
}

/// The local CA's parameters, all but its validity, serial number and name constraints derived
/// from its key: the issuer of every server certificate is rebuilt from these on every start,
/// and its name must match the stored CA certificate's subject exactly.
fn local_ca_parameters(ca_key: &KeyPair) -> CertificateParams {
    let key_digest = Sha256::digest(ca_key.subject_public_key_info());
    let short_id: String = key_digest[..4]
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "Counterbook");
    name.push(
        DnType::CommonName,
        format!("Counterbook local CA {short_id}"),
    );
    let mut parameters = CertificateParams::default();
    parameters.distinguished_name = name;
    parameters.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    parameters.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    parameters
}

fn random_serial_number() -> SerialNumber {
    let mut bytes: [u8; 16] = rand::random();
    // Positive and never shortened by DER's leading-zero rule.
    bytes[0] = (bytes[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&bytes)
}

/// A subject alternative name for a host name or an address; `None` (and a warning) for a
/// name a certificate cannot hold.
fn san(name: &str) -> Option<SanType> {
    if let Ok(address) = name.parse::<IpAddr>() {
        return Some(SanType::IpAddress(address));
    }
    match name.to_ascii_lowercase().try_into() {
        Ok(dns_name) => Some(SanType::DnsName(dns_name)),
        Err(error) => {
            tracing::warn!(name, %error, "left out of the server certificate");
            None
        }
    }
}

/// The names this machine answers to: `localhost`, its host name and `HOST.local`, every
/// interface address (IPv6 link-local ones left out: they need a zone no URL carries),
/// `127.0.0.1` and `::1`, then `extra_names`; without repeats.
pub fn machine_names(extra_names: &[String]) -> Vec<String> {
    let mut names = vec!["localhost".to_owned()];
    if let Some(host_name) = host_name() {
        names.push(host_name.clone());
        if !host_name.contains('.') {
            names.push(format!("{host_name}.local"));
        }
    }
    names.push("127.0.0.1".to_owned());
    names.push("::1".to_owned());
    if let Ok(interfaces) = if_addrs::get_if_addrs() {
        for interface in interfaces {
            let address = interface.ip();
            let link_local = match address {
                IpAddr::V4(v4) => v4.is_link_local(),
                IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            };
            if !link_local {
                names.push(address.to_string());
            }
        }
    }
    names.extend(extra_names.iter().cloned());
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.to_ascii_lowercase()));
    names
}

/// The machine's host name, if it has one a certificate can carry.
fn host_name() -> Option<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())?;
    let name = name.trim().to_ascii_lowercase();
    let valid = !name.is_empty()
        && name != "localhost"
        && name
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'.');
    valid.then_some(name)
}

/// The rustls server configuration: TLS 1.3 and 1.2 on ring, HTTP/1.1 by ALPN.
pub fn server_config(identity: TlsIdentity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(identity.certificate_chain, identity.private_key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_file(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::File {
        path: path.to_owned(),
        source,
    })
}

/// Writes `bytes` to `path` through a temporary file and a rename, readable by anyone.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    write_with_mode(path, bytes, 0o644)
}

/// Writes a private key: the file is created readable and writable by the owner only.
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    write_with_mode(path, bytes, 0o600)
}

fn write_with_mode(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let temporary = path.with_extension("pem.new");
    let error = |source| TlsError::File {
        path: path.to_owned(),
        source,
    };
    let _ = std::fs::remove_file(&temporary);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&temporary)
        .map_err(error)?;
    // The umask may have taken bits away from a public file; a private one keeps 0600.
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(error)?;
    file.write_all(bytes).map_err(error)?;
    file.sync_all().map_err(error)?;
    std::fs::rename(&temporary, path).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
    }

    #[test]
    fn the_ca_is_made_once_and_signs_every_later_server_certificate() {
        let data = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let first = local_identity(data.path(), &names(), now).unwrap();
        assert!(first.authority_created);
        let second = local_identity(data.path(), &names(), now).unwrap();
        assert!(!second.authority_created);
        assert_eq!(first.authority.der, second.authority.der);
        assert_ne!(first.server_spki_sha256, second.server_spki_sha256);
        for file in [CA_KEY_FILE, SERVER_KEY_FILE] {
            let mode = std::fs::metadata(tls_directory(data.path()).join(file))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{file}");
        }
        assert_eq!(first.names, names());
        assert_eq!(first.authority.fingerprint_sha256().len(), 32 * 3 - 1);
    }

    #[test]
    fn the_ca_vouches_only_for_the_shop_network_and_the_names_it_was_made_with() {
        use rustls::client::danger::ServerCertVerifier;
        use rustls::pki_types::{ServerName, UnixTime};

        let data = tempfile::tempdir().unwrap();
        let now = time::OffsetDateTime::now_utc();
        let at_creation: Vec<String> = [
            "localhost",
            "127.0.0.1",
            "192.168.1.10",
            "till",
            "203.0.113.9",
        ]
        .map(String::from)
        .to_vec();
        local_identity(data.path(), &at_creation, now).unwrap();
        let later: Vec<String> = [
            "localhost",
            "till",
            "till.local",
            "192.168.7.20",
            "203.0.113.9",
            "203.0.113.10",
            "other-host",
            "fd00::5",
        ]
        .map(String::from)
        .to_vec();
        let identity = local_identity(data.path(), &later, now).unwrap();
        assert_eq!(
            identity.names,
            [
                "localhost",
                "till",
                "till.local",
                "192.168.7.20",
                "203.0.113.9",
                "fd00::5"
            ]
        );
        assert_eq!(identity.left_out, ["203.0.113.10", "other-host"]);

        // Browsers enforce the constraints: what the CA signs for another site is refused.
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(identity.authority.der.clone()))
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .unwrap();
        let authority = local_authority(&tls_directory(data.path()), &[], now).unwrap();
        let issuer = Issuer::new(local_ca_parameters(&authority.key), &authority.key);
        for (name, allowed) in [
            ("till.local", true),
            ("192.168.7.20", true),
            ("bank.example", false),
            ("8.8.8.8", false),
        ] {
            let key = KeyPair::generate().unwrap();
            let (certificate, _) =
                issue_server_certificate(&issuer, &key, &[name.to_owned()], now).unwrap();
            let verdict = verifier.verify_server_cert(
                certificate.der(),
                &[],
                &ServerName::try_from(name).unwrap(),
                &[],
                UnixTime::now(),
            );
            assert_eq!(verdict.is_ok(), allowed, "{name}: {verdict:?}");
        }
    }

    #[test]
    fn machine_names_include_loopback_and_extras_once() {
        let names = machine_names(&["till.example".into(), "127.0.0.1".into()]);
        assert_eq!(names[0], "localhost");
        assert!(names.contains(&"127.0.0.1".to_owned()));
        assert!(names.contains(&"till.example".to_owned()));
        assert_eq!(names.iter().filter(|name| *name == "127.0.0.1").count(), 1);
    }
}

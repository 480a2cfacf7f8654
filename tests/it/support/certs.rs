//! A throwaway CA and a server certificate for `localhost` and `127.0.0.1`, as PEM files.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};

pub struct Certs {
    pub dir: tempfile::TempDir,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Certs {
    pub fn make() -> Certs {
        let dir = super::cluster::scratch_dir("sy-certs-");
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "switchyard test CA");
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &issuer).unwrap();
        let p = |n: &str| dir.path().join(n);
        std::fs::write(p("ca.pem"), ca_cert.pem()).unwrap();
        std::fs::write(p("server.pem"), cert.pem()).unwrap();
        std::fs::write(p("server.key"), key.serialize_pem()).unwrap();
        for f in ["ca.pem", "server.pem", "server.key"] {
            let _ = std::process::Command::new("chown")
                .arg("postgres")
                .arg(p(f))
                .status();
            let _ = std::process::Command::new("chmod")
                .arg("600")
                .arg(p(f))
                .status();
        }
        let _ = std::process::Command::new("chmod")
            .arg("644")
            .arg(p("ca.pem"))
            .status();
        Certs {
            ca: p("ca.pem"),
            cert: p("server.pem"),
            key: p("server.key"),
            dir,
        }
    }
}

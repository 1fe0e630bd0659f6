//! What the clients trust, show and authenticate with, read from the files and environment
//! variables the configuration names. Every failure names its field; nothing read is logged.

use std::path::Path;

use super::SetupError;
use crate::config::{
    BasicAuthConfig, FlinkConfig, HttpSecurity, PravegaConfig, PrometheusConfig, TlsConfig,
};
use crate::credentials::{Authorization, BasicCredentials, Secret};
use crate::http::{ClientSecurity, Trust};
use crate::observe::controller::{ControllerSecurity, ControllerTrust};

/// The HTTP client settings of the Prometheus source.
pub fn prometheus(config: &PrometheusConfig) -> Result<ClientSecurity, SetupError> {
    http("prometheus", config.security())
}

/// The HTTP client settings of a binding's Flink client; `section` names it
/// (`bindings[0].flink`).
pub fn flink(section: &str, config: &FlinkConfig) -> Result<ClientSecurity, SetupError> {
    http(section, config.security())
}

/// How the controller source connects: the CA it trusts and its credentials.
pub fn controller(config: &PravegaConfig) -> Result<ControllerSecurity, SetupError> {
    let trust = match &config.tls {
        None => ControllerTrust::Plain,
        Some(tls) if tls.insecure_skip_verify => {
            warn_unverified("pravega.tls");
            ControllerTrust::Anything
        }
        Some(TlsConfig {
            ca_file: Some(path),
            ..
        }) => {
            let field = "pravega.tls.ca_file".to_string();
            let pem = read_file(&field, path)?;
            // The Pravega client skips what it cannot parse, and would then trust nothing.
            certificates(&field, path, &pem)?;
            ControllerTrust::Only(String::from_utf8_lossy(&pem).into_owned())
        }
        // Validation requires a CA file or the opt-out.
        Some(_) => ControllerTrust::Plain,
    };
    let credentials = config
        .credentials
        .as_ref()
        .map(|c| basic_credentials("pravega.credentials", c))
        .transpose()?;
    Ok(ControllerSecurity { trust, credentials })
}

fn http(section: &str, settings: HttpSecurity) -> Result<ClientSecurity, SetupError> {
    let field = |name: &str| format!("{section}.{name}");
    let mut security = ClientSecurity::default();
    if let Some(tls) = settings.tls {
        if tls.insecure_skip_verify {
            warn_unverified(&field("tls"));
            security.trust = Trust::Anything;
        }
        if let Some(path) = &tls.ca_file {
            let ca_field = field("tls.ca_file");
            let pem = read_file(&ca_field, path)?;
            security.trust = Trust::Only(certificates(&ca_field, path, &pem)?);
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let cert_field = field("tls.cert_file");
            let mut pem = read_file(&cert_field, cert)?;
            pem.extend(read_file(&field("tls.key_file"), key)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| SetupError::Pem {
                field: cert_field,
                path: cert.to_path_buf(),
                message: format!("not a PEM certificate with its private key in key_file: {e}"),
            })?;
            security.identity = Some(identity);
        }
    }
    let authorization = if let Some(basic) = settings.basic_auth {
        let credentials = basic_credentials(&field("basic_auth"), basic)?;
        Some((field("basic_auth"), Authorization::basic(&credentials)))
    } else {
        secret(
            &field("bearer_token"),
            settings.bearer_token_file,
            settings.bearer_token_env,
        )?
        .map(|(name, token)| (name, Authorization::bearer(&token)))
    };
    if let Some((field, authorization)) = authorization {
        security.authorization =
            Some(authorization.map_err(|source| SetupError::InvalidSecret { field, source })?);
    }
    Ok(security)
}

/// Verification off is allowed for lab certificates only: said at start-up, as a warning.
fn warn_unverified(field: &str) {
    tracing::warn!(
        field,
        "{field}.insecure_skip_verify is on: any certificate is accepted, so the server is not authenticated (lab certificates only)"
    );
}

/// A user name and the password its `password_file` or `password_env` holds.
fn basic_credentials(
    section: &str,
    config: &BasicAuthConfig,
) -> Result<BasicCredentials, SetupError> {
    let (_, password) = secret(
        &format!("{section}.password"),
        config.password_file.as_deref(),
        config.password_env.as_deref(),
    )?
    .ok_or_else(|| SetupError::NoSecret {
        field: format!("{section}.password_file"),
    })?;
    Ok(BasicCredentials {
        username: config.username.clone(),
        password,
    })
}

/// The secret in `file` (field `{prefix}_file`) or `env` (field `{prefix}_env`), with the field
/// it came from; `None` when neither is set.
fn secret(
    prefix: &str,
    file: Option<&Path>,
    env: Option<&str>,
) -> Result<Option<(String, Secret)>, SetupError> {
    if let Some(path) = file {
        let field = format!("{prefix}_file");
        let bytes = read_file(&field, path)?;
        return Ok(Some((field, Secret::new(&String::from_utf8_lossy(&bytes)))));
    }
    if let Some(name) = env {
        let field = format!("{prefix}_env");
        let value = std::env::var(name).map_err(|_| SetupError::SecretEnv {
            field: field.clone(),
            name: name.to_string(),
        })?;
        return Ok(Some((field, Secret::new(&value))));
    }
    Ok(None)
}

fn read_file(field: &str, path: &Path) -> Result<Vec<u8>, SetupError> {
    std::fs::read(path).map_err(|source| SetupError::File {
        field: field.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// The certificates of a PEM bundle, at least one.
fn certificates(
    field: &str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<reqwest::Certificate>, SetupError> {
    let error = |message: String| SetupError::Pem {
        field: field.to_string(),
        path: path.to_path_buf(),
        message,
    };
    match reqwest::Certificate::from_pem_bundle(pem) {
        Ok(certificates) if !certificates.is_empty() => Ok(certificates),
        Ok(_) => Err(error("holds no PEM certificate".into())),
        Err(e) => Err(error(format!("not PEM certificates: {e}"))),
    }
}

//! The generator's connection to a secured Pravega: the CA it trusts (`--tls-ca-file`, or
//! `--tls-insecure-skip-verify` for lab certificates) and its basic-auth account (`--username`
//! with `--password-file` or `--password-env`; the password never on the command line).

use std::path::PathBuf;

use clap::Args;
use pravega_client_config::credentials::Credentials;
use pravega_client_config::{ClientConfig, ClientConfigBuilder};
use pravega_client_retry::retry_policy::RetryWithBackoff;
use pravega_client_shared::PravegaNodeUri;

/// A controller client error's text without the gRPC metadata it ends with: a refused call's
/// metadata echoes the request's `authorization` header, which holds the password.
pub fn without_metadata(error: &impl std::fmt::Display) -> String {
    let text = error.to_string();
    match text.find(", details:") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// TLS and authentication flags.
#[derive(Args, Debug, Clone)]
pub struct SecurityArgs {
    /// CA certificates (PEM) to trust for a tls:// controller and its segment stores.
    #[arg(long)]
    tls_ca_file: Option<PathBuf>,
    /// Accept any certificate (lab certificates only: the server is not authenticated).
    #[arg(long)]
    tls_insecure_skip_verify: bool,
    /// Pravega account (basic auth); its password comes from --password-file or --password-env.
    #[arg(long)]
    username: Option<String>,
    /// File holding the account's password (a mounted Secret).
    #[arg(long, requires = "username", conflicts_with = "password_env")]
    password_file: Option<PathBuf>,
    /// Environment variable holding the account's password.
    #[arg(long, requires = "username")]
    password_env: Option<String>,
}

impl SecurityArgs {
    /// The client configuration for `controller` (`tcp://` or `tls://host:port`); errors name
    /// the flag at fault.
    pub fn client_config(&self, controller: &str) -> Result<ClientConfig, String> {
        let tls = controller.starts_with("tls://");
        let mut builder = ClientConfigBuilder::default();
        builder
            .controller_uri(PravegaNodeUri::from(
                controller
                    .trim_start_matches("tcp://")
                    .trim_start_matches("tls://"),
            ))
            .is_tls_enabled(tls);
        match (&self.tls_ca_file, self.tls_insecure_skip_verify) {
            (Some(_), _) | (None, true) if !tls => {
                return Err(format!(
                    "--tls-ca-file and --tls-insecure-skip-verify need a tls:// --controller, not {controller}"
                ))
            }
            (Some(_), true) => {
                return Err("--tls-ca-file and --tls-insecure-skip-verify: set one, not both".into())
            }
            (Some(path), false) => {
                let pem = std::fs::read_to_string(path)
                    .map_err(|e| format!("--tls-ca-file {}: {e}", path.display()))?;
                builder.trustcerts(vec![pem]);
            }
            (None, true) => {
                tracing::warn!("--tls-insecure-skip-verify: any certificate is accepted (lab certificates only)");
                builder.trustcerts(vec![]).disable_cert_verification(true);
            }
            (None, false) if tls => {
                return Err(format!(
                    "--controller {controller} needs --tls-ca-file (the Pravega client trusts no system CA)"
                ))
            }
            (None, false) => {}
        }
        match &self.username {
            Some(username) => {
                let password = self.password()?;
                builder
                    .credentials(Credentials::basic(username.clone(), password))
                    .is_auth_enabled(true);
            }
            // Never from the environment's pravega_client_auth_* variables.
            None => {
                builder
                    .credentials(Credentials::basic(String::new(), String::new()))
                    .is_auth_enabled(false);
            }
        }
        // Retries end within seconds: a refused password is reported as such, not as silence.
        builder.retry_policy(
            RetryWithBackoff::default_setting()
                .initial_delay(std::time::Duration::from_millis(10))
                .backoff_coefficient(2)
                .max_delay(std::time::Duration::from_millis(500)),
        );
        builder
            .build()
            .map_err(|e| format!("--controller {controller}: {e}"))
    }

    fn password(&self) -> Result<String, String> {
        let password = match (&self.password_file, &self.password_env) {
            (Some(path), _) => std::fs::read_to_string(path)
                .map_err(|e| format!("--password-file {}: {e}", path.display()))?,
            (None, Some(name)) => std::env::var(name)
                .map_err(|_| format!("--password-env: environment variable {name} is not set"))?,
            (None, None) => return Err("--username needs --password-file or --password-env".into()),
        };
        Ok(password.trim().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controller_errors_lose_their_metadata() {
        let text = "status: Unauthenticated, message: \"\", details: [], metadata: MetadataMap { headers: {\"authorization\": \"Basic c2VjcmV0\"} }";
        assert_eq!(
            without_metadata(&text),
            "status: Unauthenticated, message: \"\""
        );
        assert_eq!(without_metadata(&"refused"), "refused");
    }

    fn args(ca: Option<&str>, skip: bool, username: Option<&str>) -> SecurityArgs {
        SecurityArgs {
            tls_ca_file: ca.map(PathBuf::from),
            tls_insecure_skip_verify: skip,
            username: username.map(String::from),
            password_file: None,
            password_env: username.map(|_| "DATA_GENERATOR_TEST_NO_SUCH_VAR".to_string()),
        }
    }

    #[test]
    fn tls_settings_must_match_the_controller_and_name_their_flag() {
        let error = |a: SecurityArgs, controller: &str| a.client_config(controller).unwrap_err();
        assert!(error(args(Some("/ca.pem"), false, None), "tcp://p:9090").contains("need a tls://"));
        assert!(error(args(None, false, None), "tls://p:9090").contains("needs --tls-ca-file"));
        assert!(
            error(args(Some("/nonexistent.pem"), false, None), "tls://p:9090")
                .starts_with("--tls-ca-file /nonexistent.pem")
        );
        assert!(error(args(None, true, Some("u")), "tls://p:9090")
            .contains("DATA_GENERATOR_TEST_NO_SUCH_VAR is not set"));
        assert!(args(None, false, None)
            .client_config("tcp://p:9090")
            .is_ok());
        let skip = args(None, true, None)
            .client_config("tls://p:9090")
            .unwrap();
        assert!(skip.is_tls_enabled && skip.disable_cert_verification);
    }
}

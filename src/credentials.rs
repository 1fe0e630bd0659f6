//! Credentials the clients send: read once at start-up (by [`crate::setup`]) from files or
//! environment variables, held in types whose `Debug` shows no secret, and sent in headers
//! marked sensitive. Nothing here is ever logged.

use base64::Engine;
use reqwest::header::HeaderValue;

/// A password or token; its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The secret as read, surrounding white space (a file's final newline) removed.
    pub fn new(value: &str) -> Secret {
        Secret(value.trim().to_string())
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(redacted)")
    }
}

/// A user name and its password (basic auth, for HTTP or Pravega).
#[derive(Debug, Clone)]
pub struct BasicCredentials {
    /// The user name (not secret: it is shown in errors).
    pub username: String,
    /// The password.
    pub password: Secret,
}

/// Why a credential cannot be sent.
#[derive(Debug, thiserror::Error)]
#[error("the secret holds a character an HTTP header cannot carry (a control character or a line break inside it)")]
pub struct InvalidToken;

/// An `Authorization` header value, marked sensitive (never logged or printed by the client).
#[derive(Debug, Clone)]
pub struct Authorization(HeaderValue);

impl Authorization {
    /// `Bearer <token>`.
    pub fn bearer(token: &Secret) -> Result<Authorization, InvalidToken> {
        Authorization::sensitive(&format!("Bearer {}", token.expose()))
    }

    /// `Basic <base64(user:password)>`.
    pub fn basic(credentials: &BasicCredentials) -> Result<Authorization, InvalidToken> {
        let pair = format!("{}:{}", credentials.username, credentials.password.expose());
        // The pair is encoded, so only a control character in it would be refused.
        if pair.chars().any(char::is_control) {
            return Err(InvalidToken);
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
        Authorization::sensitive(&format!("Basic {encoded}"))
    }

    fn sensitive(value: &str) -> Result<Authorization, InvalidToken> {
        let mut value = HeaderValue::from_str(value).map_err(|_| InvalidToken)?;
        value.set_sensitive(true);
        Ok(Authorization(value))
    }

    /// The header value.
    pub fn header(&self) -> &HeaderValue {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_do_not_show_in_debug_output() {
        let credentials = BasicCredentials {
            username: "reader".into(),
            password: Secret::new("hunter2\n"),
        };
        assert_eq!(credentials.password.expose(), "hunter2");
        let shown = format!(
            "{credentials:?} {:?}",
            Authorization::basic(&credentials).unwrap()
        );
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(
            !shown.contains("cmVhZGVyOmh1bnRlcjI"),
            "no base64 either: {shown}"
        );
    }

    #[test]
    fn basic_auth_is_the_base64_of_user_and_password() {
        let credentials = BasicCredentials {
            username: "reader".into(),
            password: Secret::new("hunter2"),
        };
        let value = Authorization::basic(&credentials).unwrap();
        assert_eq!(
            value.header().to_str().unwrap(),
            "Basic cmVhZGVyOmh1bnRlcjI="
        );
        assert!(value.header().is_sensitive());
    }

    #[test]
    fn a_token_with_a_line_break_inside_is_refused() {
        assert!(Authorization::bearer(&Secret::new("abc\ndef")).is_err());
        assert!(Authorization::bearer(&Secret::new("abc\n")).is_ok());
        let broken = BasicCredentials {
            username: "reader".into(),
            password: Secret::new("a\u{7}b"),
        };
        assert!(Authorization::basic(&broken).is_err());
    }
}

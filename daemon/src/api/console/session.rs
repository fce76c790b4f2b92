//! Console sessions: signing in with a control token gives a cookie
//! (`HttpOnly`, `SameSite=Strict`, `Secure` behind TLS, 12 hours) holding
//! an expiry and a random id signed with HMAC-SHA256 under a per-kumod
//! secret kept in the data directory (`console.secret`), so another
//! kumod's cookie is refused. Each session has a CSRF token (derived from
//! its id under the same secret) that every POST must carry; the sign-in
//! form carries one too, bound to a short-lived nonce cookie. Signing out
//! revokes the id until it would have expired.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::api::auth::Tokens;

/// The session cookie's name.
pub(crate) const COOKIE: &str = "kumo_console";
/// How long a session lasts.
pub(crate) const LIFETIME_SECONDS: i64 = 12 * 3600;
/// The sign-in form's nonce cookie.
pub(crate) const LOGIN_COOKIE: &str = "kumo_console_login";
/// How long a sign-in form stays usable.
const LOGIN_FORM_SECONDS: i64 = 3600;
/// The secret's file in the data directory.
const SECRET_FILE: &str = "console.secret";

/// The session secret could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    /// The secret file could not be read or created.
    #[error("console session secret {path}: {source}")]
    Secret {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: crate::api::auth::AuthError,
    },
}

/// A signed-in browser.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The session's random id.
    id: String,
    /// Unix seconds it ends at.
    expires: i64,
    /// The token its forms carry.
    pub csrf: String,
}

/// Issues and checks sessions.
#[derive(Clone)]
pub(crate) struct Sessions {
    secret: Arc<Vec<u8>>,
    tokens: Arc<Tokens>,
    revoked: Arc<Mutex<HashMap<String, i64>>>,
}

impl Sessions {
    /// Sessions signed with the secret in `data_dir` (created on first
    /// start), signing in with `tokens`' control tokens.
    pub(crate) fn load(data_dir: &Path, tokens: Tokens) -> Result<Self, SessionError> {
        let path = data_dir.join(SECRET_FILE);
        let secret = crate::api::auth::read_or_create(&path)
            .map_err(|source| SessionError::Secret {
                path: path.clone(),
                source,
            })?
            .into_iter()
            .next()
            .unwrap_or_default();
        Ok(Self {
            secret: Arc::new(secret.into_bytes()),
            tokens: Arc::new(tokens),
            revoked: Arc::default(),
        })
    }

    fn mac(&self, what: &str) -> String {
        // HMAC accepts keys of any length.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(what.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }

    fn session(&self, id: &str, expires: i64) -> Session {
        Session {
            id: id.to_string(),
            expires,
            csrf: self.mac(&format!("csrf|{id}")),
        }
    }

    /// Signs in with `token` at `now` (Unix seconds): the cookie value, or
    /// `None` when the token is not a control token.
    pub(crate) fn sign_in(&self, token: &str, now: i64) -> Option<String> {
        if token.trim().is_empty() || !self.tokens.accepts_control(token) {
            return None;
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let expires = now + LIFETIME_SECONDS;
        let signature = self.mac(&format!("session|{expires}|{id}"));
        Some(format!("{expires}.{id}.{signature}"))
    }

    /// A new sign-in form: the nonce for its cookie and the CSRF token
    /// for its hidden field.
    pub(crate) fn login_form(&self) -> (String, String) {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let csrf = self.mac(&format!("login|{nonce}"));
        (nonce, csrf)
    }

    /// Whether a sign-in POST carries the CSRF token of the form whose
    /// nonce is in its cookie.
    pub(crate) fn login_csrf_ok(&self, cookie_header: Option<&str>, csrf: Option<&str>) -> bool {
        let Some(nonce) = cookie_value(cookie_header, LOGIN_COOKIE) else {
            return false;
        };
        let expected = self.mac(&format!("login|{nonce}"));
        csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), expected.as_bytes()))
    }

    /// The session of a `Cookie` header, if it holds a valid, unexpired,
    /// unrevoked one signed by this kumod.
    pub(crate) fn check(&self, cookie_header: Option<&str>, now: i64) -> Option<Session> {
        let value = cookie_value(cookie_header, COOKIE)?;
        let mut parts = value.splitn(3, '.');
        let (expires, id, signature) = (parts.next()?, parts.next()?, parts.next()?);
        let expires: i64 = expires.parse().ok()?;
        let expected = self.mac(&format!("session|{expires}|{id}"));
        if !constant_time_eq(expected.as_bytes(), signature.as_bytes()) || expires <= now {
            return None;
        }
        let revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        if revoked.contains_key(id) {
            return None;
        }
        Some(self.session(id, expires))
    }

    /// Whether `csrf` is `session`'s CSRF token.
    pub(crate) fn csrf_ok(session: &Session, csrf: Option<&str>) -> bool {
        csrf.is_some_and(|c| constant_time_eq(c.as_bytes(), session.csrf.as_bytes()))
    }

    /// A signature of `notice` for `session` (see [`Sessions::notice_ok`]).
    pub(crate) fn sign_notice(&self, session: &Session, notice: &str) -> String {
        self.mac(&format!("notice|{}|{notice}", session.id))
    }

    /// Whether `signature` is [`Sessions::sign_notice`]'s for this notice.
    pub(crate) fn notice_ok(&self, session: &Session, notice: &str, signature: &str) -> bool {
        constant_time_eq(
            self.sign_notice(session, notice).as_bytes(),
            signature.as_bytes(),
        )
    }

    /// Ends `session` (its cookie is refused from now on).
    pub(crate) fn sign_out(&self, session: &Session, now: i64) {
        let mut revoked = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
        revoked.retain(|_, expires| *expires > now);
        revoked.insert(session.id.clone(), session.expires);
    }
}

/// The value of cookie `name` in a `Cookie` header.
fn cookie_value<'a>(cookie_header: Option<&'a str>, name: &str) -> Option<&'a str> {
    cookie_header?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// The `Set-Cookie` value of a sign-in form's nonce.
pub(crate) fn login_cookie(nonce: &str, secure: bool) -> String {
    format!(
        "{LOGIN_COOKIE}={nonce}; Path=/console/login; HttpOnly; SameSite=Strict; Max-Age={LOGIN_FORM_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Compares without an early exit.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `Set-Cookie` value giving `value` to the browser.
pub(crate) fn set_cookie(value: &str, secure: bool) -> String {
    format!(
        "{COOKIE}={value}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={LIFETIME_SECONDS}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value removing the session cookie.
pub(crate) fn clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions_in(dir: &Path) -> Sessions {
        std::fs::write(dir.join("control.token"), "operator-token-123\n").unwrap();
        let config = crate::api::auth::AuthConfig {
            token_files: vec![dir.join("control.token")],
            ..Default::default()
        };
        let tokens = Tokens::load(&config, dir, "127.0.0.1:1".parse().unwrap(), "agent").unwrap();
        Sessions::load(dir, tokens).unwrap()
    }

    #[test]
    fn cookies_are_signed_expire_and_are_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let sessions = sessions_in(dir.path());
        assert!(sessions.sign_in("wrong", 0).is_none());
        assert!(sessions.sign_in("", 0).is_none());
        let cookie = sessions.sign_in("operator-token-123", 100).unwrap();
        let header = format!("a=b; {COOKIE}={cookie}");
        let session = sessions.check(Some(&header), 200).unwrap();
        assert!(Sessions::csrf_ok(&session, Some(&session.csrf.clone())));
        assert!(!Sessions::csrf_ok(&session, Some("x")));
        assert!(!Sessions::csrf_ok(&session, None));
        assert!(sessions
            .check(Some(&header), 100 + LIFETIME_SECONDS)
            .is_none());
        let forged = header.replace(&cookie[..3], "999");
        assert!(sessions.check(Some(&forged), 200).is_none());
        // Another kumod (another data dir, another secret) refuses it.
        let other_dir = tempfile::tempdir().unwrap();
        assert!(sessions_in(other_dir.path())
            .check(Some(&header), 200)
            .is_none());
        // The same data dir (a restart) keeps accepting it.
        assert!(Sessions::load(dir.path(), Tokens::default())
            .unwrap()
            .check(Some(&header), 200)
            .is_some());
        let signature = sessions.sign_notice(&session, "Saved.");
        assert!(sessions.notice_ok(&session, "Saved.", &signature));
        assert!(!sessions.notice_ok(&session, "Enter your token at evil.example", &signature));
        sessions.sign_out(&session, 300);
        assert!(sessions.check(Some(&header), 300).is_none());
        let (nonce, csrf) = sessions.login_form();
        let login = format!("{LOGIN_COOKIE}={nonce}");
        assert!(sessions.login_csrf_ok(Some(&login), Some(&csrf)));
        assert!(!sessions.login_csrf_ok(Some(&login), Some("x")));
        assert!(!sessions.login_csrf_ok(None, Some(&csrf)));
        assert!(!sessions.login_csrf_ok(Some("kumo_console_login=other"), Some(&csrf)));
        assert!(set_cookie("v", true).contains("HttpOnly; SameSite=Strict"));
        assert!(set_cookie("v", true).ends_with("; Secure"));
    }
}

//! PostgreSQL connection URLs: a certificate-checking TLS default for remote hosts, and
//! redaction of the password for messages and `Debug`.
//!
//! libpq and sqlx default to `sslmode=prefer`: TLS without any certificate check, and a
//! silent fall-back to plaintext. For a database on another host that leaves the registry and
//! the sealed keys open to whoever sits on the path, so Tessera asks for `verify-full`
//! (certificate chain and host name checked) unless the URL or `PGSSLMODE` says otherwise.
//! Loopback hosts and Unix sockets keep the driver's default: nothing crosses a network.

use std::net::IpAddr;

/// A database URL as configured. It may carry a password, so `Debug` shows it with the
/// password replaced; only [`DatabaseUrl::expose`] gives the text to connect with.
#[derive(Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    #[allow(missing_docs)]
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL itself, password included: for connecting, never for messages.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The URL for messages: the password replaced by `[redacted]`.
    pub fn redacted(&self) -> String {
        redact(&self.0)
    }
}

impl std::str::FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_owned()))
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DatabaseUrl({})", redact(&self.0))
    }
}

/// The URL to connect with, and a warning to log when its TLS is weaker than `verify-full`
/// for a host that is not on this machine.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsChoice {
    /// The URL, with `sslmode=verify-full` appended when it named no mode for a remote host.
    pub url: String,
    /// Why the connection is weaker than `verify-full`, for a startup warning.
    pub warning: Option<String>,
}

impl std::fmt::Debug for TlsChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsChoice").field("url", &redact(&self.url)).field("warning", &self.warning).finish()
    }
}

/// The parts of `postgres://userinfo@hosts/db?query`.
struct Parts<'a> {
    scheme: &'a str,
    userinfo: Option<&'a str>,
    hosts: &'a str,
    path: &'a str,
    query: Option<&'a str>,
}

fn split(url: &str) -> Option<Parts<'_>> {
    let scheme_end = url.find("://")? + 3;
    let (scheme, rest) = url.split_at(scheme_end);
    let (before_query, query) = match rest.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (rest, None),
    };
    let (authority, path) = match before_query.find('/') {
        Some(i) => before_query.split_at(i),
        None => (before_query, ""),
    };
    let (userinfo, hosts) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    Some(Parts { scheme, userinfo, hosts, path, query })
}

fn query_value<'a>(query: Option<&'a str>, names: &[&str]) -> Option<&'a str> {
    query?.split('&').filter_map(|kv| kv.split_once('=')).find(|(k, _)| names.contains(k)).map(|(_, v)| v)
}

/// Whether `host` (from the URL authority, a `host=` parameter or `PGHOST`) stays on this
/// machine: empty (the driver's local default), a Unix socket directory, `localhost`,
/// 127.0.0.0/8 or ::1.
fn is_local(host: &str) -> bool {
    let host = host.trim();
    let lower = host.to_ascii_lowercase();
    if host.is_empty() || host.starts_with('/') || lower.starts_with("%2f") || lower == "localhost" {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.split_once(']')).map(|(h, _)| h);
    let without_port = match bare {
        Some(h) => h,
        None => {
            host.rsplit_once(':').filter(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok()).map_or(host, |(h, _)| h)
        }
    };
    without_port.eq_ignore_ascii_case("localhost") || without_port.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Applies the `verify-full` default to `url`. `env` reads environment variables
/// (`PGSSLMODE`, `PGHOST`); an explicit `sslmode` in the URL wins over `PGSSLMODE`, which wins
/// over the default.
pub fn tls_default(url: &str, env: &dyn Fn(&str) -> Option<String>) -> TlsChoice {
    let Some(Parts { hosts, query, .. }) = split(url) else {
        return TlsChoice { url: url.to_owned(), warning: None };
    };
    let host_param = query_value(query, &["host", "hostaddr"]).map(str::to_owned);
    let candidates: Vec<String> = match host_param {
        Some(h) => h.split(',').map(str::to_owned).collect(),
        None if hosts.is_empty() => vec![env("PGHOST").unwrap_or_default()],
        None => hosts.split(',').map(str::to_owned).collect(),
    };
    if candidates.iter().all(|h| is_local(h)) {
        return TlsChoice { url: url.to_owned(), warning: None };
    }
    let remote = candidates.iter().find(|h| !is_local(h)).cloned().unwrap_or_default();
    let explicit = query_value(query, &["sslmode", "ssl-mode"])
        .map(|m| (m.to_owned(), "the URL"))
        .or_else(|| env("PGSSLMODE").filter(|m| !m.is_empty()).map(|m| (m, "PGSSLMODE")));
    match explicit {
        Some((mode, _)) if mode.eq_ignore_ascii_case("verify-full") => TlsChoice { url: url.to_owned(), warning: None },
        Some((mode, source)) => TlsChoice {
            url: url.to_owned(),
            warning: Some(format!(
                "PostgreSQL host {remote} is not on this machine and sslmode={mode} (from {source}) is weaker than \
                 verify-full: the server certificate or its host name is not checked, or the connection may be \
                 plaintext"
            )),
        },
        None => {
            let sep =
                if query.is_some() { if url.ends_with('?') || url.ends_with('&') { "" } else { "&" } } else { "?" };
            TlsChoice { url: format!("{url}{sep}sslmode=verify-full"), warning: None }
        }
    }
}

/// Whether the URL carries a password (in the user info or a `password=` parameter).
pub fn has_password(url: &str) -> bool {
    let Some(Parts { userinfo, query, .. }) = split(url) else { return false };
    userinfo.is_some_and(|u| u.split_once(':').is_some_and(|(_, p)| !p.is_empty()))
        || query_value(query, &["password"]).is_some_and(|p| !p.is_empty())
}

/// The URL with its password (user info or `password=` parameter) replaced by `[redacted]`,
/// for messages and `Debug`.
pub fn redact(url: &str) -> String {
    let Some(Parts { scheme, userinfo, hosts, path, query }) = split(url) else {
        return "[redacted: not a URL]".into();
    };
    let mut out = scheme.to_owned();
    if let Some(u) = userinfo {
        match u.split_once(':') {
            Some((user, _)) => out.push_str(&format!("{user}:[redacted]@")),
            None => out.push_str(&format!("{u}@")),
        }
    }
    out.push_str(hosts);
    out.push_str(path);
    if let Some(q) = query {
        let parts: Vec<String> = q
            .split('&')
            .map(|kv| match kv.split_once('=') {
                Some(("password", _)) => "password=[redacted]".to_owned(),
                _ => kv.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&parts.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn choose(url: &str) -> TlsChoice {
        tls_default(url, &no_env)
    }

    #[test]
    fn remote_hosts_default_to_verify_full() {
        assert_eq!(
            choose("postgres://u:p@db.example.com/tessera").url,
            "postgres://u:p@db.example.com/tessera?sslmode=verify-full"
        );
        assert_eq!(
            choose("postgres://u@10.0.0.5:5432/t?application_name=x").url,
            "postgres://u@10.0.0.5:5432/t?application_name=x&sslmode=verify-full"
        );
        assert_eq!(
            choose("postgresql://[2001:db8::1]:5432/t").url,
            "postgresql://[2001:db8::1]:5432/t?sslmode=verify-full"
        );
        assert_eq!(choose("postgres://db.example.com").url, "postgres://db.example.com?sslmode=verify-full");
        assert_eq!(
            choose("postgres:///t?host=db.example.com").url,
            "postgres:///t?host=db.example.com&sslmode=verify-full"
        );
        // One remote host among several is enough.
        assert_eq!(
            choose("postgres://127.0.0.1,db.example.com/t").url,
            "postgres://127.0.0.1,db.example.com/t?sslmode=verify-full"
        );
        assert_eq!(choose("postgres://db.example.com/t").warning, None);
    }

    #[test]
    fn loopback_and_unix_sockets_keep_the_driver_default() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/t",
            "postgres://u:p@127.8.9.10/t",
            "postgres://u@localhost/t",
            "postgres://u@LOCALHOST:5432/t",
            "postgres://u@[::1]:5432/t",
            "postgres:///t",
            "postgres:///t?host=/var/run/postgresql",
            "postgres://%2Fvar%2Frun%2Fpostgresql/t",
        ] {
            let c = choose(url);
            assert_eq!(c.url, url, "{url}");
            assert_eq!(c.warning, None, "{url}");
        }
        let pghost = |k: &str| (k == "PGHOST").then(|| "db.example.com".to_string());
        assert_eq!(tls_default("postgres:///t", &pghost).url, "postgres:///t?sslmode=verify-full");
    }

    #[test]
    fn an_explicit_sslmode_wins_and_a_weak_one_warns() {
        let c = choose("postgres://u@db.example.com/t?sslmode=require");
        assert_eq!(c.url, "postgres://u@db.example.com/t?sslmode=require");
        let w = c.warning.expect("warned");
        assert!(w.contains("sslmode=require") && w.contains("db.example.com") && w.contains("verify-full"), "{w}");
        let c = choose("postgres://u@db.example.com/t?sslmode=verify-full&sslrootcert=/etc/ca.pem");
        assert_eq!(c.url, "postgres://u@db.example.com/t?sslmode=verify-full&sslrootcert=/etc/ca.pem");
        assert_eq!(c.warning, None);
        assert!(choose("postgres://u@db.example.com/t?ssl-mode=disable").warning.unwrap().contains("disable"));
        // PGSSLMODE counts as explicit; the URL wins over it.
        let env = |k: &str| (k == "PGSSLMODE").then(|| "prefer".to_string());
        let c = tls_default("postgres://u@db.example.com/t", &env);
        assert_eq!(c.url, "postgres://u@db.example.com/t");
        assert!(c.warning.unwrap().contains("PGSSLMODE"));
        assert_eq!(tls_default("postgres://u@db.example.com/t?sslmode=verify-full", &env).warning, None);
        // Loopback with a weak mode: no warning.
        assert_eq!(choose("postgres://u@127.0.0.1/t?sslmode=disable").warning, None);
    }

    #[test]
    fn a_database_url_debugs_without_its_password() {
        let url: DatabaseUrl = "postgres://tessera:s3cret-pw@db.example.com/t?password=other-pw".parse().unwrap();
        let shown = format!("{url:?} {}", url.redacted());
        assert!(!shown.contains("s3cret-pw") && !shown.contains("other-pw"), "{shown}");
        assert!(shown.contains("db.example.com"), "{shown}");
        assert!(url.expose().contains("s3cret-pw"));
    }

    #[test]
    fn passwords_are_detected_and_redacted() {
        let url = "postgres://tessera:s3cr%40t@db.example.com:5432/t?sslmode=verify-full";
        assert!(has_password(url));
        assert_eq!(redact(url), "postgres://tessera:[redacted]@db.example.com:5432/t?sslmode=verify-full");
        assert!(!has_password("postgres://tessera@db.example.com/t"));
        assert_eq!(redact("postgres://tessera@db/t"), "postgres://tessera@db/t");
        let q = "postgres://db/t?user=u&password=hunter2";
        assert!(has_password(q));
        assert!(!redact(q).contains("hunter2"), "{}", redact(q));
        assert!(!redact("postgres://u:pa@ss@db/t").contains("pa@ss"));
        assert!(!format!("{:?}", choose(url)).contains("s3cr"));
    }
}

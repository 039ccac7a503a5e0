//! The admin API's own scopes, built in: they exist without registration (a client is simply
//! allowed one, `tessera client add ops --scope tessera:admin`), cannot be registered or
//! removed, and grant the one audience [`ADMIN_RESOURCE`].

use std::sync::LazyLock;

use tessera_store::ScopeRecord;
use tessera_types::{Resource, ScopeName, UnixTime};

/// The audience (`aud`) of admin tokens, and the realm of the admin API's challenges. A
/// fixed name rather than the issuer URL plus `/admin`: it stays the same behind a proxy
/// that changes the issuer, and the issuer check already ties a token to this server.
pub const ADMIN_RESOURCE: &str = "tessera-admin";

/// A part of the registry the admin API manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Area {
    #[allow(missing_docs)]
    Scopes,
    #[allow(missing_docs)]
    Clients,
    /// Signing keys.
    Keys,
    /// Trusted issuers of workload identities and their rules.
    Trusts,
}

impl Area {
    /// Every area.
    pub const ALL: [Self; 4] = [Self::Scopes, Self::Clients, Self::Keys, Self::Trusts];

    fn as_str(self) -> &'static str {
        match self {
            Self::Scopes => "scopes",
            Self::Clients => "clients",
            Self::Keys => "keys",
            Self::Trusts => "trusts",
        }
    }
}

/// A built-in scope: everything, or reading or writing one area. Writing implies reading
/// (whoever may change a client may see it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AdminScope {
    /// `tessera:admin`: every admin operation.
    Admin,
    /// `tessera:AREA:read`.
    Read(Area),
    /// `tessera:AREA:write`.
    Write(Area),
}

impl AdminScope {
    /// Every built-in scope, `tessera:admin` first.
    pub fn all() -> impl Iterator<Item = Self> {
        std::iter::once(Self::Admin).chain(Area::ALL.into_iter().flat_map(|a| [Self::Read(a), Self::Write(a)]))
    }

    /// The scope's name on the wire.
    pub fn name(self) -> ScopeName {
        let text = match self {
            Self::Admin => "tessera:admin".to_owned(),
            Self::Read(a) => format!("tessera:{}:read", a.as_str()),
            Self::Write(a) => format!("tessera:{}:write", a.as_str()),
        };
        ScopeName::new(text).expect("built-in scope names are scope-tokens")
    }

    fn description(self) -> String {
        match self {
            Self::Admin => "Tessera admin API: every operation".to_owned(),
            Self::Read(a) => format!("Tessera admin API: read {}", a.as_str()),
            Self::Write(a) => format!("Tessera admin API: read and change {}", a.as_str()),
        }
    }

    /// The scopes that allow an operation needing this one: itself, `tessera:admin`, and for
    /// a read the area's write scope.
    pub fn satisfied_by(self) -> Vec<Self> {
        match self {
            Self::Admin => vec![Self::Admin],
            Self::Write(a) => vec![Self::Admin, Self::Write(a)],
            Self::Read(a) => vec![Self::Admin, Self::Read(a), Self::Write(a)],
        }
    }
}

static RECORDS: LazyLock<Vec<ScopeRecord>> = LazyLock::new(|| {
    let resource = Resource::new(ADMIN_RESOURCE).expect("a valid resource");
    AdminScope::all()
        .map(|s| ScopeRecord {
            name: s.name(),
            display_name: None,
            display_names: Default::default(),
            description: Some(s.description()),
            resources: vec![resource.clone()],
            created_at: UnixTime(0),
        })
        .collect()
});

/// The built-in scope named `name`, if it is one.
pub fn scope(name: &ScopeName) -> Option<&'static ScopeRecord> {
    // Cheap refusal for the usual case: every built-in name starts so.
    if !name.as_str().starts_with("tessera:") {
        return None;
    }
    RECORDS.iter().find(|r| &r.name == name)
}

/// Every built-in scope.
pub fn scopes() -> &'static [ScopeRecord] {
    &RECORDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issue_16_the_built_in_admin_scopes_exist_and_grant_the_admin_audience() {
        let names: Vec<String> = scopes().iter().map(|s| s.name.to_string()).collect();
        assert_eq!(names.len(), 9);
        for name in [
            "tessera:admin",
            "tessera:scopes:read",
            "tessera:scopes:write",
            "tessera:clients:read",
            "tessera:clients:write",
            "tessera:keys:read",
            "tessera:keys:write",
            "tessera:trusts:read",
            "tessera:trusts:write",
        ] {
            let record = scope(&ScopeName::new(name).unwrap()).unwrap_or_else(|| panic!("{name}"));
            assert_eq!(record.resources, vec![Resource::new(ADMIN_RESOURCE).unwrap()]);
        }
        assert!(scope(&ScopeName::new("tessera:nope").unwrap()).is_none());
        assert!(scope(&ScopeName::new("api").unwrap()).is_none());
        assert_eq!(
            AdminScope::Read(Area::Keys).satisfied_by(),
            vec![AdminScope::Admin, AdminScope::Read(Area::Keys), AdminScope::Write(Area::Keys)]
        );
    }
}

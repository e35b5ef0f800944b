//! Who is asking: user identities and the bearer tokens that authenticate them.
//!
//! The model is kube-apiserver's static token file (`--token-auth-file`) plus service
//! account tokens: every token maps to a user name, an optional uid and groups, and every
//! authenticated user also gets `system:authenticated`, as the server's authentication
//! chain adds it. Service account tokens are checked against the stored ServiceAccount
//! on every request (the server's service-account lookup), so a token for a deleted or
//! never-created account does not authenticate.

use std::collections::{BTreeMap, HashMap};
use std::sync::RwLock;

use serde_json::{Value, json};

/// The group every authenticated user is in.
pub const ALL_AUTHENTICATED: &str = "system:authenticated";
/// The group of anonymous requests.
pub const ALL_UNAUTHENTICATED: &str = "system:unauthenticated";
/// The group the privileged-groups authorizer allows everything.
pub const SYSTEM_MASTERS: &str = "system:masters";
/// The user name of anonymous requests.
pub const ANONYMOUS: &str = "system:anonymous";
/// The group of every service account.
pub const ALL_SERVICE_ACCOUNTS: &str = "system:serviceaccounts";
/// The user name of the sandbox's administrator (the configured token, or no token).
pub const ADMIN_USER: &str = "kubernetes-admin";

const SA_PREFIX: &str = "system:serviceaccount:";

/// An authenticated identity, as the server's `user.Info`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// User name.
    pub name: String,
    /// Unique id, possibly empty.
    pub uid: String,
    /// Groups, in order.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

impl UserInfo {
    /// A user with a name and groups (no uid, no extras).
    pub fn new(name: &str, groups: &[&str]) -> Self {
        Self {
            name: name.to_owned(),
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
            ..Self::default()
        }
    }

    /// The sandbox administrator: `kubernetes-admin` in `system:masters`.
    pub fn admin() -> Self {
        Self::new(ADMIN_USER, &[SYSTEM_MASTERS, ALL_AUTHENTICATED])
    }

    /// The anonymous user.
    pub fn anonymous() -> Self {
        Self::new(ANONYMOUS, &[ALL_UNAUTHENTICATED])
    }

    /// A service account's user, with the groups its tokens carry.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        let mut groups = service_account_groups(namespace);
        groups.push(ALL_AUTHENTICATED.to_owned());
        Self {
            name: service_account_username(namespace, name),
            groups,
            ..Self::default()
        }
    }

    /// Whether the user is in a group.
    pub fn in_group(&self, group: &str) -> bool {
        self.groups.iter().any(|g| g == group)
    }

    /// Adds `system:authenticated` unless the user is anonymous or already has it.
    #[must_use]
    pub fn authenticated(mut self) -> Self {
        if self.name != ANONYMOUS
            && !self.in_group(ALL_AUTHENTICATED)
            && !self.in_group(ALL_UNAUTHENTICATED)
        {
            self.groups.push(ALL_AUTHENTICATED.to_owned());
        }
        self
    }

    /// The user as `userInfo` of authentication reviews (`username`, `uid`, `groups`, `extra`).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("username".into(), json!(self.name));
        if !self.uid.is_empty() {
            m.insert("uid".into(), json!(self.uid));
        }
        if !self.groups.is_empty() {
            m.insert("groups".into(), json!(self.groups));
        }
        if !self.extra.is_empty() {
            m.insert("extra".into(), json!(self.extra));
        }
        Value::Object(m)
    }
}

/// `system:serviceaccount:<namespace>:<name>`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("{SA_PREFIX}{namespace}:{name}")
}

/// `system:serviceaccounts` and `system:serviceaccounts:<namespace>`.
pub fn service_account_groups(namespace: &str) -> Vec<String> {
    vec![
        ALL_SERVICE_ACCOUNTS.to_owned(),
        format!("{ALL_SERVICE_ACCOUNTS}:{namespace}"),
    ]
}

/// Splits a service account user name into (namespace, name), when it is one: the prefix,
/// exactly two parts, a valid namespace name and a valid service account name.
pub fn split_service_account(username: &str) -> Option<(&str, &str)> {
    let rest = username.strip_prefix(SA_PREFIX)?;
    let mut parts = rest.split(':');
    let (ns, name) = (parts.next()?, parts.next()?);
    if parts.next().is_some() || !is_dns_label(ns) || !is_dns_subdomain(name) {
        return None;
    }
    Some((ns, name))
}

fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first().is_some_and(u8::is_ascii_alphanumeric)
        && b.last().is_some_and(u8::is_ascii_alphanumeric)
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns_label)
}

/// What a bearer token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSubject {
    /// A static user (name, uid, groups), like a line of a token file.
    User(UserInfo),
    /// A service account, looked up in storage on every use.
    ServiceAccount {
        /// Namespace.
        namespace: String,
        /// Name.
        name: String,
    },
}

/// The tokens one sandbox accepts.
#[derive(Debug, Default)]
pub struct Tokens {
    map: RwLock<HashMap<String, TokenSubject>>,
}

impl Tokens {
    /// Registers (or replaces) a token.
    pub fn insert(&self, token: &str, subject: TokenSubject) {
        self.map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(token.to_owned(), subject);
    }

    /// What a token stands for, if it is known.
    pub fn get(&self, token: &str) -> Option<TokenSubject> {
        self.map
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(token)
            .cloned()
    }
}

/// Splits one CSV record (quoted fields may hold commas; `""` is a quote).
fn csv_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            ',' if !quoted => {
                fields.push(std::mem::take(&mut cur));
                while chars.peek() == Some(&' ') {
                    chars.next();
                }
            }
            _ => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Reads kube-apiserver's `--token-auth-file` format: one `token,user,uid[,"g1,g2"]` per
/// line. Lines with an empty token are skipped; fewer than three columns is an error.
pub fn parse_token_file(text: &str) -> Result<Vec<(String, UserInfo)>, String> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let f = csv_fields(line.trim_start());
        if f.len() < 3 {
            return Err(format!(
                "line {}: must have at least 3 columns (token, user name, user uid), found {}",
                i + 1,
                f.len()
            ));
        }
        if f[0].is_empty() {
            continue;
        }
        let groups = f
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let user = UserInfo {
            name: f[1].clone(),
            uid: f[2].clone(),
            groups,
            extra: BTreeMap::new(),
        };
        out.push((f[0].clone(), user));
    }
    Ok(out)
}

/// A fresh opaque token.
pub fn new_token() -> String {
    format!(
        "{:016x}{:016x}",
        crate::ids::random_u64(),
        crate::ids::random_u64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_files_read_like_the_server() {
        let users = parse_token_file("t1,alice,u1,\"devs, ops\"\nt2,bob,u2\n,skipped,x\n")
            .unwrap_or_default();
        assert_eq!(users.len(), 2);
        assert_eq!(users[0].1.groups, ["devs", "ops"]);
        assert_eq!((users[1].0.as_str(), users[1].1.uid.as_str()), ("t2", "u2"));
        assert!(parse_token_file("t,only").is_err());
    }

    #[test]
    fn service_account_names_split_like_the_server() {
        assert_eq!(
            split_service_account("system:serviceaccount:team-a:deployer"),
            Some(("team-a", "deployer"))
        );
        assert_eq!(split_service_account("system:serviceaccount:a:b:c"), None);
        assert_eq!(split_service_account("system:serviceaccount:A:b"), None);
        assert_eq!(split_service_account("alice"), None);
        let sa = UserInfo::service_account("ns", "x");
        assert_eq!(
            sa.groups,
            [
                "system:serviceaccounts",
                "system:serviceaccounts:ns",
                "system:authenticated"
            ]
        );
    }
}

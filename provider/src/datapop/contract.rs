//! The connection settings of one Data Population run, named once for both
//! runners: the local runner writes them into the staged
//! `database.properties` under [`Setting::property`]; the `data-pop-tool`
//! image (the `ecs` runner) reads them from its environment under
//! [`Setting::env`], with the passwords as task-definition secrets.

use std::collections::BTreeMap;

use super::{Command, Connection, Secret};

/// Variable naming the tool's command in the `data-pop-tool` image.
pub const ENV_COMMAND: &str = "EP_DATA_POP_TOOL_CMD";
/// Variable naming the environment whose settings the image uses.
pub const ENV_ENVIRONMENT: &str = "EP_COMMERCE_ENVNAME";

/// One connection setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setting {
    /// Database host.
    Host,
    /// Database port.
    Port,
    /// The commerce schema.
    Schema,
    /// The application user the tool creates.
    User,
    /// Its password.
    Password,
    /// The user that drops and creates the schema.
    RootUser,
    /// Its password.
    RootPassword,
}

impl Setting {
    /// Every setting, in the order they are written.
    pub const ALL: [Setting; 7] = [
        Setting::Host,
        Setting::Port,
        Setting::Schema,
        Setting::User,
        Setting::Password,
        Setting::RootUser,
        Setting::RootPassword,
    ];

    /// Its key in `database.properties`.
    pub fn property(self) -> &'static str {
        match self {
            Setting::Host => "data.population.host",
            Setting::Port => "data.population.port",
            Setting::Schema => "data.population.schemaname",
            Setting::User => "data.population.username",
            Setting::Password => "data.population.password",
            Setting::RootUser => "data.population.reset_user",
            Setting::RootPassword => "data.population.reset_password",
        }
    }

    /// Its variable in the `data-pop-tool` image.
    pub fn env(self) -> &'static str {
        match self {
            Setting::Host => "EP_DB_HOSTNAME",
            Setting::Port => "EP_DB_PORT",
            Setting::Schema => "EP_DB_SCHEMA_NAME",
            Setting::User => "EP_DB_USER",
            Setting::Password => "EP_DB_PASS",
            Setting::RootUser => "EP_DB_ROOT_USER",
            Setting::RootPassword => "EP_DB_ROOT_PASS",
        }
    }

    /// Whether it is a password.
    pub fn is_secret(self) -> bool {
        matches!(self, Setting::Password | Setting::RootPassword)
    }

    /// Its value in `c`: plain text, or a password.
    pub fn value(self, c: &Connection) -> Value<'_> {
        match self {
            Setting::Host => Value::Plain(c.host.clone()),
            Setting::Port => Value::Plain(c.port.to_string()),
            Setting::Schema => Value::Plain(c.schema.clone()),
            Setting::User => Value::Plain(c.username.clone()),
            Setting::Password => Value::Secret(&c.password),
            Setting::RootUser => Value::Plain(c.reset_user.clone()),
            Setting::RootPassword => Value::Secret(&c.reset_password),
        }
    }
}

/// A setting's value.
#[derive(Debug)]
pub enum Value<'a> {
    /// Anything but a password.
    Plain(String),
    /// A password: never a plain environment value.
    Secret(&'a Secret),
}

/// The environment of a `data-pop-tool` container.
#[derive(Debug, Default)]
pub struct ContainerEnv {
    /// Plain variables.
    pub plain: BTreeMap<String, String>,
    /// Variables that must reach the container as secrets: name → password.
    pub secrets: BTreeMap<String, Secret>,
}

/// The container environment of a run of `command` for `environment`.
pub fn container_env(environment: &str, command: Command, c: &Connection) -> ContainerEnv {
    let mut out = ContainerEnv::default();
    out.plain
        .insert(ENV_COMMAND.to_owned(), command.as_str().to_owned());
    out.plain
        .insert(ENV_ENVIRONMENT.to_owned(), environment.to_owned());
    for s in Setting::ALL {
        match s.value(c) {
            Value::Plain(v) => {
                out.plain.insert(s.env().to_owned(), v);
            }
            Value::Secret(p) => {
                out.secrets.insert(s.env().to_owned(), p.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_secrets_and_everything_else_is_plain() {
        let c = Connection {
            host: "db.example".into(),
            port: 3307,
            schema: "commercedb".into(),
            username: "ep".into(),
            password: Secret::new("app-pw"),
            reset_user: "epadmin".into(),
            reset_password: Secret::new("root-pw"),
        };
        let env = container_env("author", Command::ResetDb, &c);
        let plain: Vec<(&str, &str)> = env
            .plain
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            plain,
            [
                ("EP_COMMERCE_ENVNAME", "author"),
                ("EP_DATA_POP_TOOL_CMD", "reset-db"),
                ("EP_DB_HOSTNAME", "db.example"),
                ("EP_DB_PORT", "3307"),
                ("EP_DB_ROOT_USER", "epadmin"),
                ("EP_DB_SCHEMA_NAME", "commercedb"),
                ("EP_DB_USER", "ep"),
            ]
        );
        let secret: Vec<(&str, &str)> = env
            .secrets
            .iter()
            .map(|(k, v)| (k.as_str(), v.expose()))
            .collect();
        assert_eq!(
            secret,
            [("EP_DB_PASS", "app-pw"), ("EP_DB_ROOT_PASS", "root-pw")]
        );
    }
}

use std::collections::BTreeMap;

use super::*;
use crate::framework::Known;
use crate::resources::deployment::model::BrokerUser;

fn database() -> DatabaseBlock {
    DatabaseBlock::for_test("demo-author-1", "arn:aws:ssm:eu-west-1:1:parameter/demo/db")
}

fn stack() -> StackBlock {
    StackBlock {
        commerce_environment: None,
        target_group_arn: None,
        database: Some(database()),
        broker: Some(BrokerBlock {
            engine_version: Some("5.18".to_owned()),
            instance_type: None,
            deployment_mode: None,
            user: vec![BrokerUser {
                username: "ep".to_owned(),
                password: "not-a-real-password-1".to_owned(),
                console_access: None,
            }],
        }),
    }
}

fn service(name: &str, stack: &str) -> ServiceBlock {
    ServiceBlock {
        name: name.to_owned(),
        stack: stack.to_owned(),
        image: "registry/ep/x@sha256:aa".to_owned(),
        cpu: None,
        memory: None,
        desired_count: None,
        environment: None,
        secrets: None,
        health_check_path: None,
    }
}

fn config() -> DeploymentModel<Planning> {
    DeploymentModel {
        name: Known::Known("demo".to_owned()),
        kind: Known::Known(AUTHOR_AND_LIVE.to_owned()),
        subnet_ids: Known::Known(vec!["subnet-1".to_owned()]),
        author: Known::Known(Some(stack())),
        live: Known::Known(Some(stack())),
        service: Known::Known(vec![service("cm", "author"), service("cortex", "live")]),
        ..DeploymentModel::default()
    }
}

/// Each error as `path: summary`.
fn errors(c: &DeploymentModel<Planning>) -> Vec<String> {
    validate(c)
        .iter()
        .map(|d| {
            format!(
                "{}: {}",
                d.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                d.summary
            )
        })
        .collect()
}

#[test]
fn a_complete_configuration_passes() {
    assert_eq!(errors(&config()), Vec::<String>::new());
}

#[test]
fn unknown_values_are_not_judged() {
    assert_eq!(errors(&DeploymentModel::default()), Vec::<String>::new());
}

#[test]
fn bad_service_entries_are_reported_on_their_attribute() {
    let mut c = config();
    let mut big_cm = service("cm", "author");
    big_cm.desired_count = Some(2);
    big_cm.memory = Some(1000);
    let mut env = service("cortex", "live");
    env.environment = Some(BTreeMap::from([("EP_DB_URL".to_owned(), "x".to_owned())]));
    env.secrets = Some(BTreeMap::from([("TOKEN".to_owned(), "plain".to_owned())]));
    c.service = Known::Known(vec![
        service("storefront", "live"),
        service("cortex", "staging"),
        big_cm,
        env,
        service("cortex", "live"),
    ]);
    assert_eq!(
        errors(&c),
        vec![
            "service[0].name: Unknown service",
            "service[1].stack: Unknown stack",
            "service[2].memory: Task size Fargate does not run",
            "service[2].desired_count: Service must run alone",
            "service[3].environment[\"EP_DB_URL\"]: Variable set by the deployment",
            "service[3].secrets[\"TOKEN\"]: Not a secret ARN",
            "service[4].name: Duplicate service",
        ]
    );
}

#[test]
fn broker_and_database_mistakes_name_the_nested_attribute_but_not_the_password() {
    let mut c = config();
    let mut bad = stack();
    if let Some(b) = bad.broker.as_mut() {
        b.engine_version = Some("latest".to_owned());
        b.user[0].password = "short,secret".to_owned();
    }
    if let Some(db) = bad.database.as_mut() {
        db.instance_class = Some("t3.medium".to_owned());
    }
    c.live = Known::Known(Some(bad));
    c.author = Known::Known(None);
    let d = validate(&c);
    assert!(!d.iter().any(|d| d.detail.contains("short,secret")));
    assert_eq!(
        errors(&c),
        vec![
            "author: Missing stack",
            "live.database.instance_class: Invalid instance class",
            "live.broker.engine_version: Invalid engine version",
            "live.broker.user[0].password: Invalid broker password",
        ]
    );
}

#[test]
fn names_and_kinds_are_checked() {
    let mut c = config();
    c.name = Known::Known("Demo_1".to_owned());
    c.kind = Known::Known("single_instance".to_owned());
    assert_eq!(
        errors(&c),
        vec![
            "name: Invalid deployment name",
            "kind: Single-instance deployments are not available yet",
        ]
    );
    assert_eq!(
        check_name("a-very-long-deployment-name"),
        Some("must have 1 to 24 characters")
    );
    assert_eq!(
        check_name("demo-"),
        Some("must not contain two hyphens in a row or end with one")
    );
}

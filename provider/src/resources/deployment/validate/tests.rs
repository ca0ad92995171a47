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
                password: Some("not-a-real-password-1".to_owned()),
                password_wo: None,
                password_wo_version: None,
                console_access: None,
            }],
        }),
    }
}

fn service(name: &str, stack: &str) -> ServiceBlock {
    ServiceBlock::for_test(name, stack, "registry/ep/x@sha256:aa")
}

fn config() -> DeploymentModel<Planning> {
    DeploymentModel {
        name: Known::Known("demo".to_owned()),
        kind: Known::Known(AUTHOR_AND_LIVE.to_owned()),
        subnet_ids: Known::Known(Some(vec!["subnet-1".to_owned()])),
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
        b.user[0].password = Some("short,secret".to_owned());
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
fn a_broker_user_has_one_password_and_a_write_only_one_a_version() {
    let with_users = |users: Vec<(Option<&str>, Option<&str>, Option<u64>)>| {
        let mut c = config();
        let mut s = stack();
        if let Some(b) = s.broker.as_mut() {
            b.user = users
                .into_iter()
                .enumerate()
                .map(|(i, (pw, wo, version))| BrokerUser {
                    username: format!("user{i}"),
                    password: pw.map(str::to_owned),
                    password_wo: wo.map(str::to_owned),
                    password_wo_version: version,
                    console_access: None,
                })
                .collect();
        }
        c.live = Known::Known(Some(s));
        errors(&c)
    };
    let good = "a-good-password-1";
    assert_eq!(
        with_users(vec![(Some(good), None, None), (None, Some(good), Some(1))]),
        Vec::<String>::new()
    );
    assert_eq!(
        with_users(vec![
            (Some(good), Some(good), Some(1)),
            (None, None, None),
            (None, Some(good), None),
            (None, Some("short,secret"), Some(2)),
        ]),
        vec![
            "live.broker.user[0].password_wo: Conflicting broker passwords",
            "live.broker.user[1].password: Missing broker password",
            "live.broker.user[2].password_wo_version: Missing password_wo_version",
            "live.broker.user[3].password_wo: Invalid broker password",
        ]
    );
}

#[test]
fn names_and_kinds_are_checked() {
    let mut c = config();
    c.name = Known::Known("Demo_1".to_owned());
    c.kind = Known::Known("dev_box".to_owned());
    assert_eq!(
        errors(&c),
        vec![
            "name: Invalid deployment name",
            "kind: Invalid deployment kind",
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

fn single_block() -> crate::resources::deployment::model::SingleInstanceBlock {
    crate::resources::deployment::model::SingleInstanceBlock::for_test(
        "reg/ep/mysql@sha256:db",
        "reg/activemq:5.18",
        "arn:aws:ssm:eu-west-1:1:parameter/dev/db",
    )
}

fn single_config() -> DeploymentModel<Planning> {
    DeploymentModel {
        name: Known::Known("dev".to_owned()),
        kind: Known::Known(SINGLE_INSTANCE.to_owned()),
        subnet_ids: Known::Known(None),
        cluster_arn: Known::Known(Some("arn:aws:ecs:eu-west-1:1:cluster/dev".to_owned())),
        single_instance: Known::Known(Some(single_block())),
        author: Known::Known(None),
        live: Known::Known(None),
        service: Known::Known(vec![service("cortex", "single"), service("cm", "single")]),
        ..DeploymentModel::default()
    }
}

#[test]
fn a_single_instance_configuration_passes_without_subnets_or_fargate_sizes() {
    let mut c = single_config();
    c.service = Known::Known(vec![ServiceBlock {
        memory: Some(1000),
        ..service("cortex", "single")
    }]);
    assert_eq!(errors(&c), Vec::<String>::new());
}

#[test]
fn each_kind_refuses_the_other_kinds_blocks_on_their_path() {
    let mut c = single_config();
    c.cluster_arn = Known::Known(None);
    c.author = Known::Known(Some(stack()));
    c.service = Known::Known(vec![
        service("cortex", "live"),
        ServiceBlock {
            desired_count: Some(2),
            ..service("search", "single")
        },
    ]);
    if let Known::Known(Some(b)) = &mut c.single_instance {
        b.cm_host_port = Some(9080);
        b.password_secret_arn = "plain".to_owned();
    }
    assert_eq!(
        errors(&c),
        vec![
            "cluster_arn: Missing cluster",
            "author: Block of the other kind",
            "single_instance.password_secret_arn: Not a secret ARN",
            "single_instance.cm_host_port: Host port used twice",
            "service[0].stack: Unknown stack",
            "service[1].desired_count: One task only",
        ]
    );
    let mut c = single_config();
    c.single_instance = Known::Known(None);
    assert_eq!(
        errors(&c),
        vec!["single_instance: Missing single_instance block"]
    );
    let mut c = config();
    c.single_instance = Known::Known(Some(single_block()));
    c.subnet_ids = Known::Known(None);
    assert_eq!(
        errors(&c),
        vec![
            "subnet_ids: No subnets",
            "single_instance: Block of the other kind",
        ]
    );
}

fn discovery(
    namespace_id: Option<&str>,
    vpc_id: Option<&str>,
    name: Option<&str>,
) -> ServiceDiscoveryBlock {
    ServiceDiscoveryBlock {
        namespace_id: namespace_id.map(str::to_owned),
        vpc_id: vpc_id.map(str::to_owned),
        namespace_name: name.map(str::to_owned),
    }
}

#[test]
fn service_discovery_takes_one_namespace_setting_well_formed() {
    let with = |b: ServiceDiscoveryBlock| {
        let mut c = config();
        c.service_discovery = Known::Known(Some(b));
        errors(&c)
    };
    assert_eq!(
        with(discovery(Some("ns-abc123"), None, None)),
        Vec::<String>::new()
    );
    assert_eq!(
        with(discovery(None, Some("vpc-0a1b"), Some("prod.ep.internal"))),
        Vec::<String>::new()
    );
    assert_eq!(
        with(discovery(None, None, None)),
        vec!["service_discovery: No namespace"]
    );
    assert_eq!(
        with(discovery(Some("ns-1"), Some("vpc-1"), None)),
        vec!["service_discovery.vpc_id: Conflicting namespace settings"]
    );
    assert_eq!(
        with(discovery(Some("namespace"), None, Some("x.internal"))),
        vec![
            "service_discovery.namespace_id: Invalid ID",
            "service_discovery.namespace_name: Name of a namespace not created",
        ]
    );
    assert_eq!(
        with(discovery(None, Some("vpc-"), Some("Prod..internal"))),
        vec![
            "service_discovery.vpc_id: Invalid ID",
            "service_discovery.namespace_name: Invalid namespace name",
        ]
    );
    let mut c = single_config();
    c.service_discovery = Known::Known(Some(discovery(Some("ns-1"), None, None)));
    assert_eq!(
        errors(&c),
        vec!["service_discovery: Service discovery in one task"]
    );
}

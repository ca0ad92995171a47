//! `ep_deployment`'s `service_discovery` with real Terraform against a
//! private moto (ECS, RDS, Amazon MQ, Cloud Map): the services register in
//! a Cloud Map namespace, the Tomcats find search by its discovery name,
//! and the endpoints carry the services' URLs. What the provider left
//! behind is read back with boto3.
//!
//! moto cannot show: DNS answers (it makes a hosted zone but serves no
//! records) or instances registered by running tasks (it runs none), so a
//! Cloud Map service is never "in use" here.

use std::cell::RefCell;
use std::rc::Rc;

use ep_terraform_tests::hold_proxy::HoldProxy;
use ep_terraform_tests::moto::PrivateMoto;
use ep_terraform_tests::{Scenario, Workdir, HEADER};
use serde_json::Value;

/// A moto with a network, snapshots for both stacks, a namespace of the
/// user's own in a second VPC (moto allows one private namespace per VPC)
/// and a third VPC to move the deployment's own namespace to.
struct Aws {
    moto: PrivateMoto,
    subnet: String,
    security_group: String,
    vpc: String,
    third_vpc: String,
    user_namespace: String,
}

impl Aws {
    fn start() -> Aws {
        let moto = PrivateMoto::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("moto");
        let (subnet, security_group) = moto.create_network().expect("network");
        let ids = moto
            .boto3(&format!(
                "for s in ('author', 'live'):\n\
                 \x20   rds.create_db_instance(DBInstanceIdentifier='src-' + s, Engine='mysql', DBInstanceClass='db.t3.medium', MasterUsername='root', MasterUserPassword='password-1', AllocatedStorage=20)\n\
                 \x20   rds.create_db_snapshot(DBInstanceIdentifier='src-' + s, DBSnapshotIdentifier=s + '-1')\n\
                 vpc = ec2.describe_subnets(SubnetIds=['{subnet}'])['Subnets'][0]['VpcId']\n\
                 other = ec2.create_vpc(CidrBlock='10.1.0.0/16')['Vpc']['VpcId']\n\
                 sd = boto3.client('servicediscovery', **kw)\n\
                 op = sd.create_private_dns_namespace(Name='shared.internal', Vpc=other)['OperationId']\n\
                 ns = sd.get_operation(OperationId=op)['Operation']['Targets']['NAMESPACE']\n\
                 third = ec2.create_vpc(CidrBlock='10.2.0.0/16')['Vpc']['VpcId']\n\
                 print(json.dumps([vpc, ns, third]))\n"
            ))
            .expect("snapshots, VPC and the user's namespace");
        let id = |i: usize| ids[i].as_str().unwrap_or_default().to_owned();
        Aws {
            subnet,
            security_group,
            vpc: id(0),
            user_namespace: id(1),
            third_vpc: id(2),
            moto,
        }
    }

    fn query(&self, script: &str) -> Value {
        self.moto
            .boto3(&format!(
                "sd = boto3.client('servicediscovery', **kw)\n{script}"
            ))
            .expect("boto3")
    }

    /// Namespace ID → name, and Cloud Map service ARN → (name, namespace).
    fn cloud_map(&self) -> Value {
        self.query(
            "ns = {n['Id']: n['Name'] for n in sd.list_namespaces()['Namespaces']}\n\
             svc = {s['Arn']: [s['Name'], sd.get_service(Id=s['Id'])['Service']['NamespaceId']] for s in sd.list_services()['Services']}\n\
             print(json.dumps({'namespaces': ns, 'services': svc}))\n",
        )
    }

    /// ECS service name → its registry ARNs.
    fn registries(&self, cluster: &str) -> Value {
        self.query(&format!(
            "s = ecs.describe_services(cluster='{cluster}', services=['author-cm', 'live-cortex', 'live-search'])['services']\n\
             print(json.dumps({{x['serviceName']: [r['registryArn'] for r in x.get('serviceRegistries', [])] for x in s}}))\n"
        ))
    }

    /// `EP_SEARCH_MASTER_URL` of a task definition's container, or null.
    fn search_master(&self, task_definition: &Value) -> Value {
        self.query(&format!(
            "c = ecs.describe_task_definition(taskDefinition='{}')['taskDefinition']['containerDefinitions'][0]\n\
             print(json.dumps({{e['name']: e['value'] for e in c['environment']}}.get('EP_SEARCH_MASTER_URL')))\n",
            task_definition.as_str().unwrap_or_default()
        ))
    }
}

/// The deployment with `discovery` as its `service_discovery` block (or
/// nothing); the VPC passes through `terraform_data`, unknown at plan.
fn config(aws: &Aws, name: &str, discovery: &str) -> String {
    config_in(aws, name, discovery, &aws.vpc)
}

/// As [`config`], with `vpc` as the network's VPC.
fn config_in(aws: &Aws, name: &str, discovery: &str, vpc: &str) -> String {
    let stack = |s: &str| {
        format!(
            r#"  {s} {{
    database {{
      snapshot_identifier = "{s}-1"
      password_secret_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/{name}/{s}/db"
    }}
    broker {{
      user {{
        username = "ep"
        password = "broker-password-1"
      }}
    }}
  }}
"#
        )
    };
    let service = |n: &str, s: &str| {
        format!(
            "  service {{\n    name  = \"{n}\"\n    stack = \"{s}\"\n    image = \"registry.example/ep/{n}@sha256:{}\"\n  }}\n",
            "a".repeat(64)
        )
    };
    format!(
        r#"{HEADER}
{provider}
resource "terraform_data" "network" {{
  input = {{ vpc = "{vpc}" }}
}}

resource "ep_deployment" "demo" {{
  name               = "{name}"
  kind               = "author_and_live"
  subnet_ids         = ["{subnet}"]
  security_group_ids = ["{sg}"]
{discovery}
{author}{live}{cm}{cortex}{search}}}

output "endpoints" {{
  value = ep_deployment.demo.endpoints
}}
"#,
        provider = aws.moto.provider_block(),
        subnet = aws.subnet,
        sg = aws.security_group,
        author = stack("author"),
        live = stack("live"),
        cm = service("cm", "author"),
        cortex = service("cortex", "live"),
        search = service("search", "live"),
    )
}

const OWN_NAMESPACE: &str =
    "  service_discovery {\n    vpc_id = terraform_data.network.output.vpc\n  }\n";

/// Every service registered in `namespace` under its own name, and wired to search there.
fn check_registered(aws: &Aws, wd: &Workdir, namespace: &str, namespace_name: &str) -> Value {
    let v = wd.resource_values("ep_deployment.demo");
    assert_eq!(v["status"], "ready", "{v:#}");
    assert_eq!(v["discovery_namespace_id"], namespace, "{v:#}");
    let map = aws.cloud_map();
    assert_eq!(map["namespaces"][namespace], namespace_name, "{map:#}");
    let registries = aws.registries(v["cluster_arn"].as_str().unwrap_or_default());
    for (key, ecs_name) in [
        ("author/cm", "author-cm"),
        ("live/cortex", "live-cortex"),
        ("live/search", "live-search"),
    ] {
        let arn = &v["discovery_services"][key];
        assert_eq!(
            map["services"][arn.as_str().unwrap_or_default()],
            serde_json::json!([ecs_name, namespace]),
            "{key}: {map:#}"
        );
        assert_eq!(
            registries[ecs_name],
            serde_json::json!([arn]),
            "{registries:#}"
        );
    }
    let search = format!("http://live-search.{namespace_name}:8082/search");
    let tds = &v["task_definitions"];
    assert_eq!(aws.search_master(&tds["live/cortex"]), search);
    assert_eq!(aws.search_master(&tds["live/search"]), Value::Null);
    assert_eq!(
        aws.search_master(&tds["author/cm"]),
        Value::Null,
        "author runs no search"
    );
    let e = &v["endpoints"];
    assert_eq!(e["live"]["search_master_url"], search);
    assert_eq!(
        e["live"]["cortex_url"],
        format!("http://live-cortex.{namespace_name}:8080/cortex")
    );
    assert_eq!(
        e["author"]["cm_url"],
        format!("http://author-cm.{namespace_name}:8080/cm")
    );
    assert_eq!(e["author"]["search_master_url"], Value::Null);
    v
}

#[test]
fn services_register_in_cloud_map_move_namespaces_drop_it_and_destroy_leaves_only_the_users() {
    let aws = Rc::new(Aws::start());
    let name = format!("sd{:x}", std::process::id() % 0xffff);
    let own = format!("{name}.ep.internal");
    let (a1, a2, a3, a4, a5) = (
        aws.clone(),
        aws.clone(),
        aws.clone(),
        aws.clone(),
        aws.clone(),
    );
    let own1 = own.clone();
    let own2 = own.clone();
    let own4 = own.clone();
    let first_namespace = Rc::new(RefCell::new(String::new()));
    let first = first_namespace.clone();
    let a6 = aws.clone();
    let import_name = name.clone();
    let user_ns = aws.user_namespace.clone();
    Scenario::new()
        .env("EP_WAIT_SCALE", "0.01")
        .step(config(&aws, &name, OWN_NAMESPACE), move |wd| {
            let ns = wd.resource_values("ep_deployment.demo")["discovery_namespace_id"].clone();
            let ns = ns.as_str().unwrap_or_default().to_owned();
            let v = check_registered(&a1, wd, &ns, &own1);
            // A Cloud Map service deleted by hand is drift, repaired by the apply.
            let gone = v["discovery_services"]["live/cortex"].as_str().unwrap_or_default().to_owned();
            a1.query(&format!(
                "sd.delete_service(Id='{}')\nprint('1')\n",
                gone.rsplit('/').next().unwrap_or_default()
            ));
            let plan = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
            assert_eq!(plan.code, 2, "drift plans a repair:\n{}", plan.all());
            assert!(
                plan.all().contains("the Cloud Map service of live/cortex is gone"),
                "{}",
                plan.all()
            );
            wd.apply();
            wd.assert_plan_empty(true);
            let v = check_registered(&a1, wd, &ns, &own1);
            assert_ne!(v["discovery_services"]["live/cortex"], gone.as_str());
            *first_namespace.borrow_mut() = ns;
        })
        // The VPC changes through a value unknown at plan (terraform_data is
        // replaced): one apply makes the namespace anew in the new VPC, moves
        // the services to it and deletes the old one; the next plan is empty.
        .step(
            config_in(&aws, &name, OWN_NAMESPACE, &aws.third_vpc),
            move |wd| {
                let ns = wd.resource_values("ep_deployment.demo")["discovery_namespace_id"].clone();
                let ns = ns.as_str().unwrap_or_default().to_owned();
                assert_ne!(ns, *first.borrow(), "a namespace in the new VPC");
                check_registered(&a6, wd, &ns, &own2);
                let map = a6.cloud_map();
                assert_eq!(
                    map["namespaces"],
                    serde_json::json!({ns.as_str(): own2.as_str(), a6.user_namespace.as_str(): "shared.internal"}),
                    "the namespace in the old VPC is deleted"
                );
                assert_eq!(map["services"].as_object().map(|s| s.len()), Some(3), "{map:#}");
            },
        )
        // The user's namespace instead: the services move, the deployment's
        // own namespace and its services are deleted.
        .step(
            config(
                &aws,
                &name,
                &format!(
                    "  service_discovery {{\n    namespace_id = \"{}\"\n  }}\n",
                    aws.user_namespace
                ),
            ),
            move |wd| {
                check_registered(&a2, wd, &a2.user_namespace, "shared.internal");
                let map = a2.cloud_map();
                let namespaces = map["namespaces"].as_object().cloned().unwrap_or_default();
                assert_eq!(namespaces.len(), 1, "the deployment's namespace is deleted: {map:#}");
                assert_eq!(
                    map["services"].as_object().map(|s| s.len()),
                    Some(3),
                    "only the three current registrations are left: {map:#}"
                );
            },
        )
        // No service discovery: registrations and Cloud Map services gone,
        // the user's namespace kept, search no longer wired.
        .step(config(&aws, &name, ""), move |wd| {
            let v = wd.resource_values("ep_deployment.demo");
            assert_eq!(v["discovery_namespace_id"], Value::Null, "{v:#}");
            assert_eq!(v["discovery_services"], Value::Null, "{v:#}");
            assert_eq!(v["endpoints"]["live"]["search_master_url"], Value::Null);
            let registries = a3.registries(v["cluster_arn"].as_str().unwrap_or_default());
            assert_eq!(
                registries,
                serde_json::json!({"author-cm": [], "live-cortex": [], "live-search": []})
            );
            assert_eq!(a3.search_master(&v["task_definitions"]["live/cortex"]), Value::Null);
            let map = a3.cloud_map();
            assert_eq!(map["services"], serde_json::json!({}), "{map:#}");
            assert_eq!(map["namespaces"][&a3.user_namespace], "shared.internal");
        })
        // Its own namespace again, for import and destroy.
        .step(config(&aws, &name, OWN_NAMESPACE), move |wd| {
            let ns = wd.resource_values("ep_deployment.demo")["discovery_namespace_id"].clone();
            check_registered(&a4, wd, ns.as_str().unwrap_or_default(), &own4);
        })
        .import("ep_deployment.demo", move |_| import_name.clone())
        .ignore_on_import(&[
            "subnet_ids",
            "security_group_ids",
            "tags",
            "author",
            "live",
            "service",
            "service_discovery",
        ])
        .destroyed(move || {
            let map = a5.cloud_map();
            assert_eq!(
                map,
                serde_json::json!({"namespaces": {user_ns.as_str(): "shared.internal"}, "services": {}}),
                "only the user's namespace is left after destroy"
            );
        })
        .run();
}

/// Ctrl-C while Cloud Map creates the deployment's namespace (held PENDING
/// by a proxy: moto finishes operations at once): Terraform stops within
/// 5 s, and destroy finds the namespace whose creation the interrupted apply
/// never saw finish — by its name and the deployment's tag — so only the
/// user's namespace is left.
#[test]
fn ctrl_c_while_the_namespace_is_made_and_destroy_still_finds_it() {
    let aws = Aws::start();
    let proxy = HoldProxy::start(&aws.moto.endpoint());
    let name = format!("cc{:x}", std::process::id() % 0xffff);
    let direct = format!("servicediscovery = \"{}\"", aws.moto.endpoint());
    let cfg = config(&aws, &name, OWN_NAMESPACE)
        .replace(&direct, &format!("servicediscovery = \"{}\"", proxy.url()));
    assert!(
        !cfg.contains(&direct),
        "Cloud Map goes through the proxy:\n{cfg}"
    );
    let mut wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.set_env("EP_WAIT_SCALE", "0.01");
    wd.init();
    let waiting = || proxy.requests().iter().any(|r| r.ends_with(" held"));
    wd.apply_stopped_by_ctrl_c(
        waiting,
        std::time::Duration::from_secs(120),
        std::time::Duration::from_millis(500),
    );
    let map = aws.cloud_map();
    assert_eq!(
        map["namespaces"].as_object().map(|n| n.len()),
        Some(2),
        "the namespace being made, and the user's: {map:#}"
    );
    proxy.release();
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(
        aws.cloud_map(),
        serde_json::json!({"namespaces": {aws.user_namespace.as_str(): "shared.internal"}, "services": {}}),
        "destroy deleted the namespace the interrupted apply was making"
    );
}

#[test]
fn discovery_mistakes_are_reported_on_the_attribute_at_validate() {
    let aws = Aws::start();
    let cfg = config(
        &aws,
        "bad",
        "  service_discovery {\n    namespace_id   = \"namespace-1\"\n    namespace_name = \"Bad..name\"\n  }\n",
    );
    let wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.init();
    // Terraform quotes the offending line: each error points at its attribute.
    wd.validate_fails_with(&[
        "Invalid ID",
        "namespace_id   = \"namespace-1\"",
        "Name of a namespace not created",
        "namespace_name = \"Bad..name\"",
    ]);
}

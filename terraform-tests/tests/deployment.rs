//! `ep_deployment` with real Terraform against a private moto (ECS, RDS,
//! Amazon MQ, EC2 for the network), started with
//! `MOTO_ECS_SERVICE_RUNNING=1` so its services report their one task
//! running. What the provider left behind is read back with boto3.
//!
//! moto cannot show: a rollout in progress or rolled back (its deployments
//! never change after creation; `steady.rs` tests those sequences), a
//! broker rebooting, or a database that takes time to restore.

use std::cell::RefCell;
use std::rc::Rc;

use ep_terraform_tests::moto::PrivateMoto;
use ep_terraform_tests::{Scenario, TestEnv, Workdir};
use serde_json::Value;

const WAIT_SCALE: (&str, &str) = ("EP_WAIT_SCALE", "0.01");

use ep_terraform_tests::HEADER;

/// A moto with a VPC, a subnet, a security group and two snapshots per stack.
struct Aws {
    moto: PrivateMoto,
    subnet: String,
    security_group: String,
}

impl Aws {
    fn start() -> Aws {
        Aws::start_with(&[("MOTO_ECS_SERVICE_RUNNING", "1")])
    }

    fn start_with(env: &[(&str, &str)]) -> Aws {
        let moto = PrivateMoto::start(env).expect("moto");
        let (subnet, security_group) = moto.create_network().expect("network");
        moto.boto3(
            "for s in ('author', 'live'):\n\
             \x20   rds.create_db_instance(DBInstanceIdentifier='src-' + s, Engine='mysql', DBInstanceClass='db.t3.medium', MasterUsername='root', MasterUserPassword='password-1', AllocatedStorage=20)\n\
             \x20   for n in (1, 2):\n\
             \x20       rds.create_db_snapshot(DBInstanceIdentifier='src-' + s, DBSnapshotIdentifier=f'{s}-{n}')\n\
             print('1')\n",
        )
        .expect("snapshots");
        Aws {
            subnet,
            security_group,
            moto,
        }
    }

    fn query(&self, script: &str) -> Value {
        self.moto.boto3(script).expect("boto3")
    }

    /// Every DB instance, broker, cluster and service left in moto, apart
    /// from the snapshots' source instances.
    fn leftovers(&self) -> Value {
        self.query(
            "dbs = [d['DBInstanceIdentifier'] for d in rds.describe_db_instances()['DBInstances'] if not d['DBInstanceIdentifier'].startswith('src-')]\n\
             brokers = [b['BrokerName'] for b in mq.list_brokers()['BrokerSummaries']]\n\
             clusters = [c['clusterName'] for c in ecs.describe_clusters(clusters=ecs.list_clusters()['clusterArns'])['clusters'] if c['status'] == 'ACTIVE']\n\
             services = [s['serviceArn'] for c in ecs.list_clusters()['clusterArns'] for arns in [ecs.list_services(cluster=c)['serviceArns']] if arns for s in ecs.describe_services(cluster=c, services=arns)['services'] if s['status'] != 'INACTIVE']\n\
             print(json.dumps(dbs + brokers + clusters + services))\n",
        )
    }

    /// The environment of a registered task definition's only container.
    fn task_env(&self, arn: &str) -> Value {
        self.query(&format!(
            "c = ecs.describe_task_definition(taskDefinition='{arn}')['taskDefinition']['containerDefinitions'][0]\n\
             print(json.dumps({{'env': {{e['name']: e['value'] for e in c['environment']}}, 'secrets': {{s['name']: s['valueFrom'] for s in c.get('secrets', [])}}, 'image': c['image']}}))\n"
        ))
    }
}

/// The configuration; images and the author snapshot go through
/// `terraform_data`, so they are unknown at plan on create and on update.
fn config(aws: &Aws, name: &str, cortex_image: &str, author_snapshot: &str) -> String {
    format!(
        r#"{HEADER}
{provider}
resource "terraform_data" "inputs" {{
  input = {{
    cortex          = "{cortex_image}"
    author_snapshot = "{author_snapshot}"
  }}
}}

resource "ep_deployment" "demo" {{
  name               = "{name}"
  kind               = "author_and_live"
  subnet_ids         = ["{subnet}"]
  security_group_ids = ["{sg}"]
  tags               = {{ team = "platform" }}

  author {{
    database {{
      snapshot_identifier = terraform_data.inputs.output.author_snapshot
      password_secret_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/{name}/author/db"
    }}
    broker {{
      user {{
        username = "ep"
        password = "broker-password-1"
      }}
    }}
  }}
  live {{
    commerce_environment = "prod-live"
    database {{
      snapshot_identifier = "live-1"
      password_secret_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/{name}/live/db"
    }}
    broker {{
      user {{
        username = "ep"
        password = "broker-password-2"
      }}
    }}
  }}

  service {{
    name  = "cm"
    stack = "author"
    image = "registry.example/ep/cm@sha256:{cm}"
  }}
  service {{
    name  = "cortex"
    stack = "live"
    image = terraform_data.inputs.output.cortex
  }}
  service {{
    name   = "search"
    stack  = "live"
    image  = "registry.example/ep/search@sha256:{search}"
    memory = 4096
  }}
}}

output "endpoints" {{
  value = ep_deployment.demo.endpoints
}}
"#,
        provider = aws.moto.provider_block(),
        subnet = aws.subnet,
        sg = aws.security_group,
        cm = "c".repeat(64),
        search = "5".repeat(64),
    )
}

fn image(tag: char) -> String {
    format!(
        "registry.example/ep/cortex@sha256:{}",
        tag.to_string().repeat(64)
    )
}

fn map(v: &Value, attr: &str) -> serde_json::Map<String, Value> {
    v[attr].as_object().cloned().unwrap_or_default()
}

/// The checks every applied step shares: all parts recorded, wired and running.
fn check_wiring(aws: &Aws, wd: &Workdir, cortex_image: &str) -> Value {
    let v = wd.resource_values("ep_deployment.demo");
    assert_eq!(v["status"], "ready", "{v:#}");
    let endpoints = map(&v, "endpoints");
    for stack in ["author", "live"] {
        let e = &endpoints[stack];
        let url = e["database_url"].as_str().unwrap_or_default();
        assert!(
            url.starts_with("jdbc:mysql://")
                && url.ends_with("/commercedb?characterEncoding=UTF-8"),
            "{e:#}"
        );
        assert!(
            e["jms_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("ssl://")),
            "{e:#}"
        );
    }
    let tds = map(&v, "task_definitions");
    assert_eq!(
        tds.keys().collect::<Vec<_>>(),
        ["author/cm", "live/cortex", "live/search"]
    );
    let cortex = aws.task_env(tds["live/cortex"].as_str().unwrap_or_default());
    assert_eq!(cortex["image"], cortex_image);
    assert_eq!(
        cortex["env"]["EP_DB_URL"],
        endpoints["live"]["database_url"]
    );
    assert_eq!(cortex["env"]["EP_JMS_URL"], endpoints["live"]["jms_url"]);
    assert_eq!(cortex["env"]["EP_COMMERCE_ENVNAME"], "prod-live");
    assert_eq!(cortex["env"]["EP_CONTAINER_MEM"], "5120");
    assert!(
        cortex["env"].get("EP_DB_PASS").is_none(),
        "the password is never a plain variable"
    );
    assert!(cortex["secrets"]["EP_DB_PASS"]
        .as_str()
        .is_some_and(|a| a.ends_with("/live/db")));
    let cm = aws.task_env(tds["author/cm"].as_str().unwrap_or_default());
    assert_eq!(cm["env"]["EP_DB_URL"], endpoints["author"]["database_url"]);
    assert_eq!(cm["env"]["EP_COMMERCE_ENVNAME"], "author");
    let running = aws.query(&format!(
        "c = '{}'\n\
         s = ecs.describe_services(cluster=c, services=['author-cm', 'live-cortex', 'live-search'])['services']\n\
         print(json.dumps({{x['serviceName']: x['taskDefinition'] for x in s if x['status'] == 'ACTIVE'}}))\n",
        v["cluster_arn"].as_str().unwrap_or_default()
    ));
    for (key, name) in [
        ("author/cm", "author-cm"),
        ("live/cortex", "live-cortex"),
        ("live/search", "live-search"),
    ] {
        assert_eq!(
            running[name], tds[key],
            "{name} runs its registered revision"
        );
    }
    v
}

/// `ep-plan-summary` on `terraform show -json tfplan`.
fn plan_summary(wd: &Workdir) -> String {
    let json = wd.ok(&["show", "-json", "tfplan"]).stdout;
    let file = wd.file("plan.json");
    std::fs::write(&file, json).expect("write plan.json");
    let bin = TestEnv::get()
        .provider_bin
        .with_file_name("ep-plan-summary");
    let out = std::process::Command::new(&bin)
        .arg(&file)
        .output()
        .expect("run ep-plan-summary");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn author_and_live_create_roll_one_image_move_a_database_repair_import_and_destroy() {
    let aws = Rc::new(Aws::start());
    let name = format!("d{:x}", std::process::id() % 0xffff);
    let before: Rc<RefCell<Value>> = Rc::default();
    let (a1, a2, a3, a4, a5) = (
        aws.clone(),
        aws.clone(),
        aws.clone(),
        aws.clone(),
        aws.clone(),
    );
    let (b1, b2, b3) = (before.clone(), before.clone(), before.clone());
    let import_name = name.clone();
    Scenario::new()
        .env(WAIT_SCALE.0, WAIT_SCALE.1)
        .step(config(&aws, &name, &image('a'), "author-1"), move |wd| {
            let v = check_wiring(&a1, wd, &image('a'));
            // A service deleted behind Terraform's back is found and recreated.
            a1.query(&format!(
                "ecs.delete_service(cluster='{}', service='live-search', force=True)\nprint('1')\n",
                v["cluster_arn"].as_str().unwrap_or_default()
            ));
            let plan = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
            assert_eq!(plan.code, 2, "drift plans a repair:\n{}", plan.all());
            assert!(plan.all().contains("the service live/search is gone"), "{}", plan.all());
            wd.apply();
            wd.assert_plan_empty(true);
            *b1.borrow_mut() = check_wiring(&a1, wd, &image('a'));
        })
        // A new cortex image: only cortex gets a new revision.
        .step(config(&aws, &name, &image('b'), "author-1"), move |wd| {
            let v = check_wiring(&a2, wd, &image('b'));
            let (old, new) = (map(&b2.borrow(), "task_definitions"), map(&v, "task_definitions"));
            assert_ne!(old["live/cortex"], new["live/cortex"]);
            assert_eq!(old["author/cm"], new["author/cm"]);
            assert_eq!(old["live/search"], new["live/search"]);
            assert_eq!(map(&b2.borrow(), "databases"), map(&v, "databases"));
            // A known change: the plan says which service rolls and why.
            let main = std::fs::read_to_string(wd.file("main.tf")).unwrap_or_default();
            wd.write("main.tf", &main.replace("memory = 4096", "memory = 5120"));
            let plan = wd.ok(&["plan", "-input=false", "-no-color", "-out=tfplan"]).all();
            assert!(plan.contains("live/search: rolls (size)"), "{plan}");
            assert!(!plan.contains("live/cortex: rolls"), "{plan}");
            // The same, from the saved plan, for a reviewer in Jenkins.
            let summary = plan_summary(wd);
            assert!(
                summary.contains("ep_deployment.demo — updated\n      live/search: rolls (size)\n"),
                "{summary}"
            );
            wd.write("main.tf", &main);
            *b2.borrow_mut() = v;
        })
        // A new author snapshot: a new author database, cm moved to it, the old one deleted.
        .step(config(&aws, &name, &image('b'), "author-2"), move |wd| {
            let v = check_wiring(&a3, wd, &image('b'));
            let (old, new) = (map(&b3.borrow(), "databases"), map(&v, "databases"));
            assert_ne!(old["author"], new["author"]);
            assert_eq!(old["live"], new["live"]);
            let (old_td, new_td) = (map(&b3.borrow(), "task_definitions"), map(&v, "task_definitions"));
            assert_ne!(old_td["author/cm"], new_td["author/cm"], "cm follows its database");
            assert_eq!(old_td["live/cortex"], new_td["live/cortex"]);
            let instances = a3.query(
                "print(json.dumps([d['DBInstanceIdentifier'] for d in rds.describe_db_instances()['DBInstances']]))\n",
            );
            let gone = old["author"].clone();
            assert!(!instances.as_array().is_some_and(|a| a.contains(&gone)), "old database deleted: {instances}");
        })
        // Broker users change: created (one with a write-only password), updated, rebooted.
        .step(
            config(&aws, &name, &image('b'), "author-2").replace(
                "password = \"broker-password-1\"\n      }",
                "password = \"broker-password-3\"\n      }\n      user {\n        username = \"ops\"\n        password_wo = \"broker-password-4\"\n        password_wo_version = 1\n      }",
            ),
            move |wd| {
                let v = wd.resource_values("ep_deployment.demo");
                // The write-only password reached Amazon MQ (the user exists) and no state.
                let ops = &v["author"]["broker"]["user"][1];
                assert_eq!(ops["username"], "ops", "{v:#}");
                assert_eq!(ops["password_wo"], Value::Null);
                assert_eq!(ops["password_wo_version"], 1);
                let users = a5.query(&format!(
                    "print(json.dumps(sorted(u['Username'] for u in mq.list_users(BrokerId='{}')['Users'])))\n",
                    v["brokers"]["author"].as_str().unwrap_or_default()
                ));
                assert_eq!(users, serde_json::json!(["ep", "ops"]));
            },
        )
        // Every part found again by name and tags; the inputs come from configuration.
        .import("ep_deployment.demo", move |_| import_name.clone())
        .ignore_on_import(&["subnet_ids", "security_group_ids", "tags", "author", "live", "service"])
        .destroyed(move || {
            assert_eq!(a4.leftovers(), Value::Array(vec![]), "nothing left in moto after destroy");
        })
        .run();
}

#[test]
fn bad_input_is_reported_on_the_attribute_at_validate() {
    let aws = Aws::start();
    // Every value literal, so validate sees them all.
    let cfg = config(&aws, "Bad_Name", &image('a'), "author-1")
        .replace(
            "terraform_data.inputs.output.author_snapshot",
            "\"author-1\"",
        )
        .replace(
            "terraform_data.inputs.output.cortex",
            &format!("\"{}\"", image('a')),
        )
        .replace(
            "password = \"broker-password-1\"",
            "password = \"short,pw\"",
        )
        .replace("memory = 4096", "memory = 1000")
        .replace("name  = \"cm\"", "name  = \"storefront\"");
    let wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.init();
    wd.validate_fails_with(&[
        "Invalid deployment name",
        "Invalid broker password",
        "Task size Fargate does not run",
        "Unknown service",
    ]);
}

/// Not at plan (an `ep_rds_snapshot` in the same apply usually makes the
/// snapshot, its identifier known before it exists), but before the apply
/// creates anything: a snapshot that does not exist, on its attribute.
#[test]
fn a_snapshot_that_does_not_exist_stops_the_apply_before_anything_is_created() {
    let aws = Aws::start();
    let cfg = config(&aws, "nosnap", &image('a'), "author-1").replace(
        "snapshot_identifier = \"live-1\"",
        "snapshot_identifier = \"live-9\"",
    );
    let mut wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.set_env(WAIT_SCALE.0, WAIT_SCALE.1);
    wd.init();
    wd.ok(&["plan", "-input=false", "-no-color"]);
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    let text = out.all();
    assert!(text.contains("Snapshot not found"), "{text}");
    assert!(
        text.contains("\"live-9\" to restore the live database"),
        "{text}"
    );
    assert!(
        text.contains("snapshot_identifier = \"live-9\""),
        "the error points at the attribute:\n{text}"
    );
    assert_eq!(aws.leftovers(), Value::Array(vec![]), "nothing was created");
}

#[test]
fn bad_input_hidden_behind_an_unknown_value_stops_the_apply_before_any_call() {
    let aws = Aws::start();
    // The service list holds a value from terraform_data, so plan cannot
    // judge it; the apply must, before creating anything.
    let cfg =
        config(&aws, "late", &image('a'), "author-1").replace("memory = 4096", "memory = 1000");
    let mut wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.set_env(WAIT_SCALE.0, WAIT_SCALE.1);
    wd.init();
    wd.ok(&["validate", "-no-color"]);
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0);
    assert!(
        out.all().contains("Task size Fargate does not run"),
        "{}",
        out.all()
    );
    assert_eq!(aws.leftovers(), Value::Array(vec![]), "nothing was created");
}

/// The deployment's instance in state (attributes and whether it is tainted).
fn state_instance(wd: &Workdir) -> Value {
    let raw = std::fs::read_to_string(wd.file("terraform.tfstate")).unwrap_or_default();
    let state: Value = serde_json::from_str(&raw).unwrap_or_default();
    state["resources"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["type"] == "ep_deployment"))
        .map(|r| r["instances"][0].clone())
        .unwrap_or_default()
}

/// Services that never settle (moto reports no running task), so the apply
/// waits in the steady-state wait: Ctrl-C there stops it within seconds, the
/// parts made so far are in state, and destroy removes every one of them.
#[test]
fn ctrl_c_while_services_settle_keeps_every_part_in_state_and_destroy_removes_them() {
    let aws = Aws::start_with(&[("MOTO_ECS_SERVICE_RUNNING", "0")]);
    let cfg = config(&aws, "stuck", &image('a'), "author-1");
    let mut wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.set_env(WAIT_SCALE.0, WAIT_SCALE.1);
    wd.init();
    let services_created = || {
        aws.query("print(json.dumps(sum(len(ecs.list_services(cluster=c)['serviceArns']) for c in ecs.list_clusters()['clusterArns'])))\n")
            .as_u64()
            == Some(3)
    };
    wd.apply_stopped_by_ctrl_c(
        services_created,
        std::time::Duration::from_secs(120),
        std::time::Duration::from_millis(500),
    );
    let recorded = state_instance(&wd);
    assert_eq!(recorded["status"], "tainted", "{recorded:#}");
    let attrs = &recorded["attributes"];
    assert_eq!(attrs["status"], "applying", "{attrs:#}");
    for part in ["databases", "brokers"] {
        assert_eq!(map(attrs, part).len(), 2, "{part} recorded: {attrs:#}");
    }
    assert_eq!(map(attrs, "services").len(), 3, "{attrs:#}");
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(
        aws.leftovers(),
        Value::Array(vec![]),
        "destroy removed what the interrupted apply made"
    );
}

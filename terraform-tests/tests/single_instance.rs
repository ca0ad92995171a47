//! `ep_deployment` with `kind = "single_instance"`, with real Terraform
//! against a private moto (`MOTO_ECS_SERVICE_RUNNING=1`: its services
//! report their one task running). moto runs ECS services on the EC2 launch
//! type without container instances, so no instance is registered; the
//! cluster is created beforehand as a user's would be.

use std::cell::RefCell;
use std::rc::Rc;

use ep_terraform_tests::moto::PrivateMoto;
use ep_terraform_tests::{Scenario, Workdir};
use serde_json::Value;

use ep_terraform_tests::HEADER;

struct Aws {
    moto: PrivateMoto,
    cluster: String,
}

impl Aws {
    fn start() -> Aws {
        let moto = PrivateMoto::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("moto");
        let cluster = moto
            .boto3("print(json.dumps(ecs.create_cluster(clusterName='dev-hosts')['cluster']['clusterArn']))\n")
            .expect("cluster");
        Aws {
            cluster: cluster.as_str().unwrap_or_default().to_owned(),
            moto,
        }
    }

    fn query(&self, script: &str) -> Value {
        self.moto.boto3(script).expect("boto3")
    }

    /// Every active service and task definition, DB instance and broker left in moto.
    fn leftovers(&self) -> Value {
        self.query(
            "dbs = [d['DBInstanceIdentifier'] for d in rds.describe_db_instances()['DBInstances']]\n\
             brokers = [b['BrokerName'] for b in mq.list_brokers()['BrokerSummaries']]\n\
             services = [s['serviceArn'] for c in ecs.list_clusters()['clusterArns'] for arns in [ecs.list_services(cluster=c)['serviceArns']] if arns for s in ecs.describe_services(cluster=c, services=arns)['services'] if s['status'] != 'INACTIVE']\n\
             tds = ecs.list_task_definitions(status='ACTIVE')['taskDefinitionArns']\n\
             print(json.dumps(dbs + brokers + services + tds))\n",
        )
    }

    /// The containers of a registered task definition, by name.
    fn containers(&self, arn: &str) -> Value {
        self.query(&format!(
            "t = ecs.describe_task_definition(taskDefinition='{arn}')['taskDefinition']\n\
             out = {{'networkMode': t.get('networkMode'), 'compat': t.get('requiresCompatibilities')}}\n\
             for c in t['containerDefinitions']:\n\
             \x20   out[c['name']] = {{'image': c['image'], 'links': c.get('links', []), 'dependsOn': {{d['containerName']: d['condition'] for d in c.get('dependsOn', [])}}, 'env': {{e['name']: e['value'] for e in c.get('environment', [])}}, 'secrets': {{s['name']: s['valueFrom'] for s in c.get('secrets', [])}}, 'ports': [[p['containerPort'], p.get('hostPort')] for p in c.get('portMappings', [])], 'memory': c.get('memory')}}\n\
             print(json.dumps(out))\n"
        ))
    }
}

fn image(name: &str, tag: char) -> String {
    format!(
        "registry.example/ep/{name}@sha256:{}",
        tag.to_string().repeat(64)
    )
}

/// The configuration; the cortex and database images go through
/// `terraform_data`, so they are unknown at plan.
fn config(aws: &Aws, name: &str, cm: &str) -> String {
    format!(
        r#"{HEADER}
{provider}
resource "terraform_data" "inputs" {{
  input = {{
    cortex   = "{cortex}"
    database = "{database}"
  }}
}}

resource "ep_deployment" "dev" {{
  name        = "{name}"
  kind        = "single_instance"
  cluster_arn = "{cluster}"

  single_instance {{
    database_image      = terraform_data.inputs.output.database
    activemq_image      = "registry.example/activemq@sha256:{mq}"
    password_secret_arn = "arn:aws:ssm:us-east-1:123456789012:parameter/{name}/db"
    cm_host_port        = 9181
  }}

  service {{
    name  = "cortex"
    stack = "single"
    image = terraform_data.inputs.output.cortex
  }}
  service {{
    name  = "cm"
    stack = "single"
    image = "{cm}"
  }}
  service {{
    name  = "search"
    stack = "single"
    image = "{search}"
  }}
}}

output "endpoints" {{
  value = ep_deployment.dev.endpoints
}}
"#,
        provider = aws.moto.provider_block(),
        cluster = aws.cluster,
        cortex = image("cortex", 'a'),
        database = image("mysql", 'd'),
        search = image("search", '5'),
        mq = "7".repeat(64),
    )
}

fn check(aws: &Aws, wd: &Workdir, cm: &str) -> Value {
    let v = wd.resource_values("ep_deployment.dev");
    assert_eq!(v["status"], "ready", "{v:#}");
    assert_eq!(v["databases"], Value::Null, "no RDS for this kind");
    assert_eq!(v["brokers"], Value::Null, "no Amazon MQ for this kind");
    let e = &v["endpoints"]["single"];
    assert_eq!(
        e["database_url"],
        "jdbc:mysql://mysql:3306/commercedb?characterEncoding=UTF-8"
    );
    assert_eq!(e["jms_url"], "tcp://activemq:61616");
    let td = v["task_definitions"]["single/instance"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let t = aws.containers(&td);
    assert_eq!(t["networkMode"], "bridge", "{t:#}");
    assert_eq!(t["compat"], serde_json::json!(["EC2"]));
    assert_eq!(t["mysql"]["image"], image("mysql", 'd'));
    assert_eq!(t["cm"]["image"], cm);
    let cortex = &t["cortex"];
    assert_eq!(cortex["env"]["EP_DB_URL"], e["database_url"]);
    assert_eq!(cortex["env"]["EP_JMS_URL"], "tcp://activemq:61616");
    assert_eq!(cortex["env"]["EP_COMMERCE_ENVNAME"], "single");
    assert_eq!(
        cortex["env"]["EP_SEARCH_MASTER_URL"],
        "http://search:8082/search"
    );
    assert_eq!(cortex["env"]["EP_CONTAINER_MEM"], "5120");
    assert!(
        cortex["env"].get("EP_DB_PASS").is_none(),
        "the password is never a plain variable"
    );
    assert!(cortex["secrets"]["EP_DB_PASS"]
        .as_str()
        .is_some_and(|a| a.ends_with("/db")));
    assert_eq!(
        cortex["links"],
        serde_json::json!(["mysql", "activemq", "search"])
    );
    assert_eq!(cortex["dependsOn"]["mysql"], "HEALTHY");
    assert_eq!(cortex["ports"], serde_json::json!([[8080, 9080]]));
    assert_eq!(t["cm"]["ports"], serde_json::json!([[8080, 9181]]));
    assert_eq!(t["activemq"]["ports"], serde_json::json!([[8161, 8161]]));
    assert_eq!(t["search"]["env"]["EP_SEARCH_ROLE"], "standalone");
    let running = aws.query(&format!(
        "s = ecs.describe_services(cluster='{}', services=['single-instance'])['services'][0]\n\
         print(json.dumps([s['taskDefinition'], s['desiredCount'], s.get('launchType')]))\n",
        aws.cluster
    ));
    assert_eq!(running, serde_json::json!([td, 1, "EC2"]));
    v
}

#[test]
fn single_instance_create_roll_one_image_repair_move_import_and_destroy() {
    let aws = Rc::new(Aws::start());
    let name = format!("s{:x}", std::process::id() % 0xffff);
    let before: Rc<RefCell<Value>> = Rc::default();
    let (a1, a2, a3, a4) = (aws.clone(), aws.clone(), aws.clone(), aws.clone());
    let (b1, b2) = (before.clone(), before.clone());
    let import_id = format!("{name}@{}", aws.cluster);
    let (cm1, cm2) = (image("cm", 'c'), image("cm", 'e'));
    let cm1c = cm1.clone();
    let cm2c = cm2.clone();
    Scenario::new()
        .env("EP_WAIT_SCALE", "0.01")
        .step(config(&aws, &name, &cm1), move |wd| {
            check(&a1, wd, &cm1c);
            // The service deleted behind Terraform's back is found and recreated.
            a1.query(&format!(
                "ecs.delete_service(cluster='{}', service='single-instance', force=True)\nprint('1')\n",
                a1.cluster
            ));
            let plan = wd.run(&["plan", "-detailed-exitcode", "-input=false", "-no-color"]);
            assert_eq!(plan.code, 2, "drift plans a repair:\n{}", plan.all());
            assert!(plan.all().contains("the service single/instance is gone"), "{}", plan.all());
            wd.apply();
            wd.assert_plan_empty(true);
            *b1.borrow_mut() = check(&a1, wd, &cm1c);
        })
        // A new cm image: a new revision of the one task definition, the one service rolled.
        .step(config(&aws, &name, &cm2), move |wd| {
            let old = b2.borrow()["task_definitions"]["single/instance"].clone();
            let plan_text = {
                // What the plan said, re-created from the previous config for the words.
                let v = check(&a2, wd, &cm2c);
                assert_ne!(v["task_definitions"]["single/instance"], old, "a new revision");
                assert_eq!(v["services"], b2.borrow()["services"], "the same service");
                let deregistered = a2.query(&format!(
                    "print(json.dumps(ecs.describe_task_definition(taskDefinition='{}')['taskDefinition']['status']))\n",
                    old.as_str().unwrap_or_default()
                ));
                assert_eq!(deregistered, "INACTIVE");
                let main = std::fs::read_to_string(wd.file("main.tf")).unwrap_or_default();
                wd.write("main.tf", &main.replace("cm_host_port        = 9181", "cm_host_port        = 9182"));
                let plan = wd.ok(&["plan", "-input=false", "-no-color"]).all();
                wd.write("main.tf", &main);
                plan
            };
            // Terraform wraps warnings: compare with the line breaks folded.
            let folded = plan_text.split_whitespace().collect::<Vec<_>>().join(" ");
            assert!(
                folded.contains("single/instance: new task definition revision, its one task restarts with every container (host ports)"),
                "{plan_text}"
            );
        })
        // A capacity provider: the same service moves to it (a forced deployment), no new revision.
        .step(
            config(&aws, &name, &cm2).replace(
                "cm_host_port        = 9181",
                "cm_host_port        = 9181\n    capacity_provider   = \"dev-asg\"",
            ),
            move |wd| {
                let v = wd.resource_values("ep_deployment.dev");
                let moved = a4.query(&format!(
                    "s = ecs.describe_services(cluster='{}', services=['single-instance'])['services'][0]\n\
                     print(json.dumps([s['serviceArn'], [c['capacityProvider'] for c in s.get('capacityProviderStrategy', [])], s['taskDefinition']]))\n",
                    a4.cluster
                ));
                assert_eq!(
                    moved,
                    serde_json::json!([
                        v["services"]["single/instance"],
                        ["dev-asg"],
                        v["task_definitions"]["single/instance"]
                    ])
                );
            },
        )
        .import("ep_deployment.dev", move |_| import_id.clone())
        .ignore_on_import(&["single_instance", "service"])
        .destroyed(move || {
            assert_eq!(a3.leftovers(), Value::Array(vec![]), "nothing left in moto after destroy");
            let clusters = a3.query("print(json.dumps(len(ecs.list_clusters()['clusterArns'])))\n");
            assert_eq!(clusters, 1, "the user's cluster is kept");
        })
        .run();
}

#[test]
fn blocks_of_the_wrong_kind_and_a_missing_cluster_are_reported_on_the_attribute() {
    let aws = Aws::start();
    // Every value literal, so validate sees them all.
    let cfg = config(&aws, "dev", &image("cm", 'c'))
        .replace("terraform_data.inputs.output.cortex", &format!("\"{}\"", image("cortex", 'a')))
        .replace("terraform_data.inputs.output.database", &format!("\"{}\"", image("mysql", 'd')))
        .replace(&format!("  cluster_arn = \"{}\"\n", aws.cluster), "")
        .replace("stack = \"single\"\n    image = \"registry.example/ep/search", "stack = \"live\"\n    image = \"registry.example/ep/search")
        .replace(
            "  service {\n    name  = \"cortex\"",
            "  author {\n    commerce_environment = \"x\"\n  }\n\n  service {\n    name  = \"cortex\"",
        );
    let wd = Workdir::new(&[("main.tf", &cfg)]);
    wd.init();
    let text = wd.validate_fails_with(&[
        "Missing cluster",
        "Block of the other kind",
        "Unknown stack",
        "with ep_deployment.dev,",
    ]);
    assert!(
        text.contains("cluster_arn") && text.contains("author"),
        "{text}"
    );
    // The other way round: an Author and Live deployment with a single_instance block.
    let cfg = config(&aws, "dev", &image("cm", 'c'))
        .replace(
            "terraform_data.inputs.output.database",
            &format!("\"{}\"", image("mysql", 'd')),
        )
        .replace(
            "kind        = \"single_instance\"",
            "kind        = \"author_and_live\"\n  subnet_ids  = [\"subnet-1\"]",
        );
    wd.write("main.tf", &cfg);
    let text = wd.run(&["validate", "-no-color"]).all();
    assert!(
        text.contains("Block of the other kind") && text.contains("single_instance"),
        "{text}"
    );
}

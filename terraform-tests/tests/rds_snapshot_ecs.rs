//! `ep_rds_snapshot`'s `ecs` runner with real Terraform against a private
//! moto (its RDS, ECS, SSM and CloudWatch Logs), looked at through boto3.
//!
//! What moto shows: the task definition registered per run with the
//! passwords as `secrets` (SSM parameters by ARN) and no plain password,
//! RunTask with FARGATE and the awsvpc network, the wait until `STOPPED`,
//! the task definition deregistered and the parameters gone afterwards,
//! StopTask on timeout and on Ctrl-C, a runner change that plans no new
//! snapshot. What it cannot: moto's containers always report exit code 0
//! and no `stopCode`, and nothing writes the container's log, so the
//! failure verdicts and the log tail in a diagnostic are unit tests of
//! `ecs_runner::verdict`. Its tasks advance one status per DescribeTasks
//! by default; the tests that need a task that never stops by itself set
//! moto's `ecs::task` transition to manual.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::moto::PrivateMoto;
use ep_terraform_tests::Workdir;
use serde_json::Value;

const APP_PASSWORD: &str = "App-Passw0rd-ecs1";
const ROOT_PASSWORD: &str = "Root-Passw0rd-ecs2";
const LOG_GROUP: &str = "/ep/datapop";

use ep_terraform_tests::HEADER;

/// A private moto with a cluster, a network ECS can place tasks in (moto
/// needs DNS host names on the VPC for a task's network interface) and the
/// log group; `never_stop` keeps its tasks RUNNING until StopTask.
struct Aws {
    moto: PrivateMoto,
    cluster: String,
    subnet: String,
    group: String,
}

impl Aws {
    fn start(never_stop: bool) -> Self {
        let moto = PrivateMoto::start(&[]).expect("moto");
        if never_stop {
            let out = std::process::Command::new("curl")
                .args(["-s", "-S", "-f", "-X", "POST", "-H", "Content-Type: application/json"])
                .args([
                    "--data",
                    r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000}}"#,
                ])
                .arg(format!("{}/moto-api/state-manager/set-transition", moto.endpoint()))
                .output()
                .expect("curl");
            assert!(out.status.success(), "set-transition: {out:?}");
        }
        let ids = moto
            .boto3(&format!(
                "logs = boto3.client('logs', **kw)\n\
                 vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']\n\
                 ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={{'Value': True}})\n\
                 sn = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.1.0/24')['Subnet']['SubnetId']\n\
                 sg = ec2.create_security_group(GroupName='datapop', Description='d', VpcId=vpc)['GroupId']\n\
                 c = ecs.create_cluster(clusterName='tools')['cluster']['clusterArn']\n\
                 logs.create_log_group(logGroupName='{LOG_GROUP}')\n\
                 print(json.dumps([c, sn, sg]))\n"
            ))
            .expect("network");
        let s = |i: usize| ids[i].as_str().expect("id").to_owned();
        Aws {
            cluster: s(0),
            subnet: s(1),
            group: s(2),
            moto,
        }
    }

    fn py(&self, script: &str) -> Value {
        self.moto.boto3(script).expect("boto3")
    }

    /// Every task of the cluster, described.
    fn tasks(&self) -> Value {
        self.py(&format!(
            "arns = ecs.list_tasks(cluster='{c}')['taskArns']\n\
             ts = ecs.describe_tasks(cluster='{c}', tasks=arns)['tasks'] if arns else []\n\
             print(json.dumps(ts, default=str))\n",
            c = self.cluster
        ))
    }

    /// Every revision of the family, described (deregistered ones too).
    fn revisions(&self, family: &str) -> Value {
        self.py(&format!(
            "out = []\n\
             for st in ('ACTIVE', 'INACTIVE'):\n\
             \x20   for a in ecs.list_task_definitions(familyPrefix='{family}', status=st)['taskDefinitionArns']:\n\
             \x20       out.append(ecs.describe_task_definition(taskDefinition=a)['taskDefinition'])\n\
             print(json.dumps(out, default=str))\n"
        ))
    }

    /// The SSM parameters under `prefix`.
    fn parameters(&self, prefix: &str) -> Value {
        self.py(&format!(
            "ps = ssm.get_parameters_by_path(Path='{prefix}', Recursive=True)['Parameters']\n\
             print(json.dumps([p['Name'] for p in ps]))\n"
        ))
    }

    fn db_objects(&self, name: &str) -> (usize, usize) {
        let v = self.py(&format!(
            "i = [d for d in rds.describe_db_instances()['DBInstances'] if d['DBInstanceIdentifier'].startswith('{name}')]\n\
             s = [d for d in rds.describe_db_snapshots()['DBSnapshots'] if d['DBSnapshotIdentifier'].startswith('{name}')]\n\
             print(json.dumps([len(i), len(s)]))\n"
        ));
        (
            v[0].as_u64().unwrap_or(99) as usize,
            v[1].as_u64().unwrap_or(99) as usize,
        )
    }
}

fn package(dir: &tempfile::TempDir, seed: u64) -> PathBuf {
    let p = dir.path().join(format!("package-{seed}.zip"));
    synthetic::write_zip(&SynthOptions::small(seed), &p).expect("package");
    p
}

fn config(
    aws: &Aws,
    name: &str,
    pkg: &std::path::Path,
    cpu_memory: (u32, u32),
    extra: &str,
) -> String {
    format!(
        r#"{HEADER}
{provider}

resource "ep_rds_snapshot" "s" {{
  name               = "{name}"
  deployment_package = "{pkg}"
  environment        = "author"
  database_password  = "{APP_PASSWORD}"
  master_password    = "{ROOT_PASSWORD}"
  runner             = "ecs"
  ecs {{
    cluster_arn        = "{cluster}"
    image              = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ep/data-pop-tool:1"
    subnet_ids         = ["{subnet}"]
    security_group_ids = ["{group}"]
    execution_role_arn = "arn:aws:iam::123456789012:role/datapop-execution"
    log_group          = "{LOG_GROUP}"
    cpu                = {cpu}
    memory             = {memory}
  }}
{extra}
}}
"#,
        provider = aws.moto.provider_block(),
        pkg = pkg.display(),
        cluster = aws.cluster,
        subnet = aws.subnet,
        group = aws.group,
        cpu = cpu_memory.0,
        memory = cpu_memory.1,
    )
}

fn workdir() -> Workdir {
    let mut wd = Workdir::new(&[]);
    wd.set_env("EP_WAIT_SCALE", "0.01");
    wd
}

fn instance_id(wd: &Workdir) -> String {
    wd.resource_values("ep_rds_snapshot.s")["instance_identifier"]
        .as_str()
        .expect("instance_identifier")
        .to_owned()
}

/// The one revision registered for the run against `instance`: its one
/// container, checked for the contract and for passwords.
fn check_revision(aws: &Aws, instance: &str) -> Value {
    let revs = aws.revisions(&format!("ep-datapop-{instance}"));
    let revs = revs.as_array().expect("revisions");
    assert_eq!(revs.len(), 1, "one revision per run: {revs:?}");
    let td = &revs[0];
    assert_eq!(td["status"], "INACTIVE", "deregistered after the run: {td}");
    assert_eq!(td["networkMode"], "awsvpc");
    assert_eq!(td["requiresCompatibilities"][0], "FARGATE");
    assert_eq!(
        td["executionRoleArn"],
        "arn:aws:iam::123456789012:role/datapop-execution"
    );
    let text = td.to_string();
    assert!(
        !text.contains(APP_PASSWORD) && !text.contains(ROOT_PASSWORD),
        "no password in the task definition: {text}"
    );
    let c = &td["containerDefinitions"][0];
    assert_eq!(c["name"], "data-population");
    let env: std::collections::BTreeMap<String, String> = c["environment"]
        .as_array()
        .expect("environment")
        .iter()
        .map(|kv| {
            (
                kv["name"].as_str().unwrap_or("").to_owned(),
                kv["value"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        env.get("EP_DATA_POP_TOOL_CMD").map(String::as_str),
        Some("reset-db")
    );
    assert_eq!(
        env.get("EP_COMMERCE_ENVNAME").map(String::as_str),
        Some("author")
    );
    assert_eq!(
        env.get("EP_DB_SCHEMA_NAME").map(String::as_str),
        Some("commercedb")
    );
    assert_eq!(env.get("EP_DB_USER").map(String::as_str), Some("ep"));
    assert_eq!(
        env.get("EP_DB_ROOT_USER").map(String::as_str),
        Some("epadmin")
    );
    assert_eq!(env.get("EP_DB_PORT").map(String::as_str), Some("3306"));
    assert!(
        env.get("EP_DB_HOSTNAME")
            .is_some_and(|h| h.starts_with(instance)),
        "{env:?}"
    );
    assert!(!env.contains_key("EP_DB_PASS") && !env.contains_key("EP_DB_ROOT_PASS"));
    let secrets: Vec<(String, String)> = c["secrets"]
        .as_array()
        .expect("secrets")
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap_or("").to_owned(),
                s["valueFrom"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["EP_DB_PASS", "EP_DB_ROOT_PASS"]);
    for (n, from) in &secrets {
        assert!(
            from.starts_with("arn:aws:ssm:us-east-1:")
                && from.ends_with(&format!(":parameter/ep/rds-snapshot/{instance}/{n}")),
            "{n} from an SSM parameter ARN: {from}"
        );
    }
    assert_eq!(c["logConfiguration"]["logDriver"], "awslogs");
    assert_eq!(c["logConfiguration"]["options"]["awslogs-group"], LOG_GROUP);
    assert_eq!(
        c["logConfiguration"]["options"]["awslogs-stream-prefix"],
        "ep-datapop"
    );
    td.clone()
}

#[test]
fn a_run_registers_secrets_runs_fargate_awsvpc_waits_for_stopped_and_cleans_up() {
    let aws = Aws::start(false);
    let dir = tempfile::tempdir().expect("tempdir");
    let pkg = package(&dir, 61);
    let wd = workdir();
    wd.write("main.tf", &config(&aws, "ep-ecs", &pkg, (512, 2048), ""));
    wd.init();
    wd.apply();
    let instance = instance_id(&wd);
    let td = check_revision(&aws, &instance);
    assert_eq!(td["cpu"], "512");
    assert_eq!(td["memory"], "2048");

    let tasks = aws.tasks();
    let tasks = tasks.as_array().expect("tasks");
    assert_eq!(tasks.len(), 1, "one task: {tasks:?}");
    let t = &tasks[0];
    assert_eq!(t["lastStatus"], "STOPPED", "awaited until STOPPED: {t}");
    assert_eq!(t["launchType"], "FARGATE");
    assert_eq!(t["startedBy"], "ep_rds_snapshot");
    assert_eq!(t["taskDefinitionArn"], td["taskDefinitionArn"]);
    let attachment = t["attachments"][0].to_string();
    assert!(
        attachment.contains(&aws.subnet),
        "awsvpc in the subnet: {attachment}"
    );
    assert!(!t.to_string().contains(APP_PASSWORD) && !t.to_string().contains(ROOT_PASSWORD));

    assert_eq!(
        aws.parameters("/ep/rds-snapshot"),
        serde_json::json!([]),
        "parameters deleted"
    );
    assert_eq!(
        aws.db_objects("ep-ecs"),
        (0, 1),
        "snapshot taken, instance deleted"
    );

    // The runner's settings do not change the data: an in-place update, no new task.
    wd.write("main.tf", &config(&aws, "ep-ecs", &pkg, (1024, 4096), ""));
    let plan = wd.ok(&["plan", "-no-color", "-input=false"]);
    assert!(
        plan.stdout.contains("1 to change, 0 to destroy"),
        "{}",
        plan.all()
    );
    wd.apply();
    assert_eq!(aws.tasks().as_array().map(Vec::len), Some(1), "no new run");
    wd.assert_plan_empty(true);
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(aws.db_objects("ep-ecs"), (0, 0));
}

#[test]
fn a_tool_timeout_stops_the_task_and_leaves_nothing_behind() {
    let aws = Aws::start(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let pkg = package(&dir, 62);
    let wd = workdir();
    wd.write(
        "main.tf",
        &config(
            &aws,
            "ep-ecs-to",
            &pkg,
            (1024, 2048),
            "  phase_timeouts {\n    tool = \"4s\"\n  }\n",
        ),
    );
    wd.init();
    let out = wd.run(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(out.all().contains("Timed out after 4s"), "{}", out.all());
    assert!(!out.all().contains(APP_PASSWORD) && !out.all().contains(ROOT_PASSWORD));
    let tasks = aws.tasks();
    let t = &tasks[0];
    assert_eq!(t["lastStatus"], "STOPPED", "StopTask on timeout: {t}");
    assert!(
        t["stoppedReason"]
            .as_str()
            .is_some_and(|r| r.contains("ep_rds_snapshot")),
        "stopped by the provider: {t}"
    );
    // `…:task-definition/ep-datapop-<instance>:<revision>`
    let instance = t["taskDefinitionArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .and_then(|f| f.split(':').next())
        .and_then(|f| f.strip_prefix("ep-datapop-"))
        .expect("the family names the instance")
        .to_owned();
    check_revision(&aws, &instance);
    assert_eq!(
        aws.parameters("/ep/rds-snapshot"),
        serde_json::json!([]),
        "parameters deleted"
    );
    assert_eq!(
        aws.db_objects("ep-ecs-to"),
        (0, 0),
        "instance deleted, no snapshot"
    );
}

#[test]
fn ctrl_c_stops_the_task_and_the_next_apply_runs_again() {
    let aws = Aws::start(true);
    let dir = tempfile::tempdir().expect("tempdir");
    let pkg = package(&dir, 63);
    let wd = workdir();
    wd.write(
        "main.tf",
        &config(&aws, "ep-ecs-int", &pkg, (1024, 2048), ""),
    );
    wd.init();
    let started = || aws.tasks().as_array().is_some_and(|t| !t.is_empty());
    let (out, took) =
        wd.apply_interrupted(started, Duration::from_secs(120), Duration::from_secs(1));
    assert_ne!(out.code, 0, "{}", out.all());
    assert!(
        took < Duration::from_secs(10),
        "took {took:?}:\n{}",
        out.all()
    );
    let tasks = aws.tasks();
    assert_eq!(
        tasks[0]["lastStatus"], "STOPPED",
        "StopTask on Ctrl-C: {}",
        tasks[0]
    );
    assert_eq!(
        aws.parameters("/ep/rds-snapshot"),
        serde_json::json!([]),
        "parameters deleted"
    );
    let revs = aws
        .py("print(json.dumps(ecs.list_task_definitions(status='ACTIVE')['taskDefinitionArns']))");
    assert_eq!(revs, serde_json::json!([]), "deregistered");

    // Stopped from outside this time: the next run is awaited until STOPPED.
    let stopper = {
        let cluster = aws.cluster.clone();
        let endpoint = aws.moto.endpoint();
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            let py = ep_terraform_tests::consul::tools_python();
            while Instant::now() < deadline {
                let script = format!(
                    "import boto3\n\
                     ecs = boto3.client('ecs', endpoint_url='{endpoint}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
                     arns = ecs.list_tasks(cluster='{cluster}', desiredStatus='RUNNING')['taskArns']\n\
                     ts = ecs.describe_tasks(cluster='{cluster}', tasks=arns)['tasks'] if arns else []\n\
                     run = [t['taskArn'] for t in ts if t['lastStatus'] == 'RUNNING']\n\
                     [ecs.stop_task(cluster='{cluster}', task=a, reason='done') for a in run]\n\
                     print(len(run))\n"
                );
                let out = std::process::Command::new(&py)
                    .arg("-c")
                    .arg(script)
                    .output();
                if out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "1") {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            false
        })
    };
    wd.apply();
    assert!(
        stopper.join().unwrap_or(false),
        "the second task was stopped from outside"
    );
    assert_eq!(aws.db_objects("ep-ecs-int"), (0, 1));
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
}

#[test]
fn bad_runner_settings_are_reported_at_validate_on_the_attribute() {
    let aws_free = |runner: &str, block: &str, extra: &str| {
        format!(
            r#"{HEADER}
resource "ep_rds_snapshot" "s" {{
  name               = "ep-bad"
  deployment_package = "/nonexistent/package.zip"
  environment        = "author"
  database_password  = "x"
{runner}
{block}
{extra}
}}
"#
        )
    };
    let block = |size: &str| {
        format!(
            "  ecs {{\n    cluster_arn = \"c\"\n    image = \"i\"\n    subnet_ids = [\"s\"]\n    \
             security_group_ids = [\"g\"]\n    execution_role_arn = \"arn:aws:iam::1:role/r\"\n    \
             log_group = \"l\"\n{size}  }}\n"
        )
    };
    let cases = [
        (
            aws_free("  runner = \"ecs\"", "", ""),
            "needs an ecs block",
            "runner",
        ),
        (
            aws_free("", &block(""), ""),
            "without the ecs runner",
            "ecs",
        ),
        (
            aws_free("  runner = \"local\"", &block(""), ""),
            "without the ecs runner",
            "ecs",
        ),
        (
            aws_free(
                "  runner = \"ecs\"",
                &block("    cpu = 1024\n    memory = 1024\n"),
                "",
            ),
            "Fargate would refuse",
            "memory",
        ),
        (
            aws_free("  runner = \"ecs\"", &block("    cpu = 1000\n"), ""),
            "Fargate would refuse",
            "cpu",
        ),
        (
            aws_free(
                "  runner = \"ecs\"",
                &block(""),
                "  tunnel {\n    host = \"127.0.0.1\"\n  }\n",
            ),
            "connects to the instance itself",
            "tunnel",
        ),
        (
            aws_free("  runner = \"k8s\"", "", ""),
            "Unsupported runner",
            "runner",
        ),
    ];
    let wd = workdir();
    wd.write("main.tf", &cases[0].0);
    wd.init();
    for (cfg, message, attr) in &cases {
        wd.write("main.tf", cfg);
        let all = wd.validate_fails();
        assert!(all.contains(message), "expected {message:?}:\n{all}");
        // Terraform shows a diagnostic on a block (`ecs`, `tunnel`) at the
        // resource's first line, and one on an attribute at that attribute.
        let shown = if ["ecs", "tunnel"].contains(attr) {
            "resource \"ep_rds_snapshot\" \"s\" {".to_owned()
        } else {
            format!("{attr} =")
        };
        let block = all
            .split("Error: ")
            .find(|b| b.contains(message))
            .unwrap_or_default();
        assert!(block.contains(&shown), "the error points at {attr}:\n{all}");
    }
}

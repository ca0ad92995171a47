//! The examples users copy, run through `terraform test` (their
//! `tests/*.tftest.hcl`) against the provider built from this tree.

mod image_support;

use ep_imagebuild::synthetic::{self, SynthOptions};
use ep_terraform_tests::{TestEnv, Workdir};
use image_support::{busybox_rootfs, ecr_repository_exists, example_files};

/// Copies an example's `.tf` files and `tests/` into a fresh working directory.
fn workdir_for(example: &str) -> Workdir {
    let files = example_files(example);
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    Workdir::new(&refs)
}

#[test]
fn quickstart_terraform_test() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(11), &package).unwrap();
    let wd = workdir_for("quickstart");
    wd.init();
    let out = wd.ok(&[
        "test",
        "-no-color",
        &format!("-var=deployment_package={}", package.display()),
        &format!("-var=aws_endpoint={}", env.moto),
        &format!("-var=registry_endpoint=http://{}", env.auth_registry),
    ]);
    assert!(out.stdout.contains("2 passed, 0 failed"), "{}", out.all());
}

#[test]
fn images_example_builds_base_and_five_services() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(12), &package).unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let prefix = format!("example-{}", std::process::id());
    let wd = workdir_for("images");
    wd.init();
    let vars = [
        format!("-var=deployment_package={}", package.display()),
        format!("-var=base_rootfs={}", rootfs.display()),
        format!("-var=aws_endpoint={}", env.moto),
        format!("-var=registry_endpoint=http://{}", env.auth_registry),
        format!("-var=repository_prefix={prefix}"),
    ];
    let with_vars = |cmd: &[&str]| -> Vec<String> {
        cmd.iter()
            .map(|s| (*s).to_owned())
            .chain(vars.iter().cloned())
            .collect()
    };
    let run = |cmd: &[&str]| {
        let args = with_vars(cmd);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        wd.ok(&refs)
    };
    run(&["apply", "-auto-approve", "-no-color"]);
    let images = wd.outputs()["images"].clone();
    let names: Vec<&String> = images.as_object().unwrap().keys().collect();
    assert_eq!(names, ["batch", "cm", "cortex", "integration", "search"]);
    for (name, uri) in images.as_object().unwrap() {
        let uri = uri.as_str().unwrap();
        assert!(uri.contains(&format!("/{prefix}/{name}@sha256:")), "{uri}");
    }
    // Every service image sits on the Tomcat base: same first layer.
    let state = wd.state_json();
    let resources = state["values"]["root_module"]["resources"]
        .as_array()
        .unwrap();
    let first_layers: std::collections::BTreeSet<String> = resources
        .iter()
        .filter(|r| r["type"] == "ep_image")
        .map(|r| {
            r["values"]["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(first_layers.len(), 1, "not all images share the base layer");
    let plan = {
        let args = with_vars(&["plan", "-detailed-exitcode", "-no-color"]);
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        wd.run(&refs)
    };
    assert_eq!(plan.code, 0, "re-plan not empty:\n{}", plan.all());
    run(&["destroy", "-auto-approve", "-no-color"]);
}

/// The Author and Live example end to end: images into the local registry
/// behind a private moto's ECR, both snapshots populated into a real MariaDB
/// through the tunnel, the deployment on the private moto's ECS, RDS and MQ.
#[test]
fn author_and_live_example_terraform_test() {
    use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions};
    use ep_terraform_tests::mariadb::{MariaDb, MariaDbOptions};
    use ep_terraform_tests::moto::PrivateMoto;

    let env = TestEnv::get();
    let moto = PrivateMoto::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("moto");
    let (subnet, sg) = moto.create_network().expect("network");
    let vpc = moto
        .boto3(&format!(
            "print(json.dumps(ec2.describe_subnets(SubnetIds=['{subnet}'])['Subnets'][0]['VpcId']))\n"
        ))
        .expect("the subnet's VPC");
    let vpc = vpc.as_str().unwrap_or_default();
    let db = MariaDb::start(MariaDbOptions::default()).expect("MariaDB");
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(13), &package).unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let consul = ConsulDouble::start(ConsulDoubleOptions::with_token("example-t0ken"))
        .expect("start the Consul double");
    let mut wd = workdir_for("author-and-live");
    wd.set_env("EP_WAIT_SCALE", "0.01");
    wd.init();
    let secrets = "{author=\"arn:aws:ssm:us-east-1:123456789012:parameter/ex/author\",live=\"arn:aws:ssm:us-east-1:123456789012:parameter/ex/live\"}";
    let out = wd.ok(&[
        "test",
        "-no-color",
        &format!("-var=name=ex{:x}", std::process::id() % 0xffff),
        &format!("-var=deployment_package={}", package.display()),
        &format!("-var=base_rootfs={}", rootfs.display()),
        &format!("-var=subnet_ids=[\"{subnet}\"]"),
        &format!("-var=security_group_ids=[\"{sg}\"]"),
        &format!("-var=vpc_id={vpc}"),
        "-var=database_password=App-Passw0rd-9f",
        &format!("-var=database_password_secret_arns={secrets}"),
        "-var=broker_password=broker-password-1",
        "-var=master_username=root",
        &format!("-var=master_password={}", db.root_password()),
        "-var=tunnel_host=127.0.0.1",
        &format!("-var=tunnel_port={}", db.port()),
        &format!("-var=aws_endpoint={}", moto.endpoint()),
        &format!("-var=registry_endpoint=http://{}", env.auth_registry),
        &format!("-var=consul_address={}", consul.address()),
        "-var=consul_token=example-t0ken",
    ]);
    assert!(out.stdout.contains("2 passed, 0 failed"), "{}", out.all());
    for stack in ["author", "live"] {
        let sql = format!(
            "SELECT VALUE FROM commerce_{stack}.TSETTING WHERE NAME='COMMERCE/ENVIRONMENT'"
        );
        assert_eq!(
            db.query(&sql).unwrap_or_default(),
            stack,
            "{stack} data was populated"
        );
    }
}

#[test]
fn endpoint_publication_example_against_the_consul_double() {
    use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions};
    let consul = ConsulDouble::start(ConsulDoubleOptions::with_token("example-t0ken"))
        .expect("start the Consul double");
    let wd = workdir_for("endpoint-publication");
    wd.init();
    let out = wd.ok(&[
        "test",
        "-no-color",
        &format!("-var=consul_address={}", consul.address()),
        "-var=consul_token=example-t0ken",
    ]);
    assert!(out.stdout.contains("1 passed, 0 failed"), "{}", out.all());
    // terraform test destroys what it applied: only this publication's keys were there.
    let state = consul.state().expect("state");
    assert_eq!(
        state["Entries"].as_array().map(Vec::len),
        Some(0),
        "{state:#}"
    );
    assert!(
        state["Index"].as_u64().unwrap_or(0) > 1,
        "nothing was written: {state:#}"
    );
}

#[test]
fn single_instance_database_example_builds_author_and_live() {
    let env = TestEnv::get();
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(13), &package).unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let prefix = format!("example-db-{}", std::process::id());
    let mut wd = workdir_for("single-instance-database");
    // A private provider cache: earlier runs' data directories are not reused.
    wd.set_env(
        "EP_IMAGE_CACHE_DIR",
        &tmp.path().join("cache").display().to_string(),
    );
    wd.init();
    let vars = [
        format!("-var=deployment_package={}", package.display()),
        format!("-var=base=dir:{}", rootfs.display()),
        format!("-var=aws_endpoint={}", env.moto),
        format!("-var=registry_endpoint=http://{}", env.auth_registry),
        format!("-var=repository_prefix={prefix}"),
    ];
    let run = |cmd: &[&str]| {
        let mut args: Vec<&str> = cmd.to_vec();
        args.extend(vars.iter().map(String::as_str));
        wd.run(&args)
    };
    let out = run(&["apply", "-auto-approve", "-no-color"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        ecr_repository_exists(env, &format!("{prefix}/mysql")),
        "create_repository made the ECR repository"
    );
    let images = wd.outputs()["images"].clone();
    let uris: Vec<(&String, &str)> = images
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k, v.as_str().unwrap()))
        .collect();
    assert_eq!(uris.len(), 2, "{images:#}");
    for (env_name, uri) in &uris {
        assert!(
            uri.contains(&format!("/{prefix}/mysql@sha256:")),
            "{env_name}: {uri}"
        );
    }
    assert_ne!(uris[0].1, uris[1].1, "author and live hold different data");
    let plan = run(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(plan.code, 0, "re-plan not empty:\n{}", plan.all());
    let out = run(&["destroy", "-auto-approve", "-no-color"]);
    assert_eq!(out.code, 0, "{}", out.all());
}

/// The single-instance example end to end: the service images and the
/// database image (the package's tool run against the machine's MariaDB)
/// pushed to the local registry behind a private moto's ECR, and the one
/// ECS task running them all on a cluster made as a user's would be.
#[test]
fn single_instance_example_terraform_test() {
    use ep_terraform_tests::consul::{ConsulDouble, ConsulDoubleOptions};
    use ep_terraform_tests::moto::PrivateMoto;

    let env = TestEnv::get();
    let moto = PrivateMoto::start(&[("MOTO_ECS_SERVICE_RUNNING", "1")]).expect("moto");
    let cluster = moto
        .boto3("print(json.dumps(ecs.create_cluster(clusterName='dev-hosts')['cluster']['clusterArn']))\n")
        .expect("cluster");
    let tmp = tempfile::tempdir().unwrap();
    let package = tmp.path().join("package.zip");
    synthetic::write_zip(&SynthOptions::small(14), &package).unwrap();
    let rootfs = tmp.path().join("rootfs");
    busybox_rootfs(&rootfs);
    let consul = ConsulDouble::start(ConsulDoubleOptions::with_token("example-t0ken"))
        .expect("start the Consul double");
    let name = format!("si{:x}", std::process::id() % 0xffff);
    let mut wd = workdir_for("single-instance");
    wd.set_env("EP_WAIT_SCALE", "0.01");
    wd.set_env(
        "EP_IMAGE_CACHE_DIR",
        &tmp.path().join("cache").display().to_string(),
    );
    wd.init();
    let out = wd.ok(&[
        "test",
        "-no-color",
        &format!("-var=name={name}"),
        &format!("-var=deployment_package={}", package.display()),
        &format!("-var=base_rootfs={}", rootfs.display()),
        &format!("-var=database_base=dir:{}", rootfs.display()),
        &format!(
            "-var=database_password_secret_arn=arn:aws:ssm:us-east-1:123456789012:parameter/{name}/db"
        ),
        "-var=activemq_image=registry.example/activemq:5.18",
        &format!("-var=cluster_arn={}", cluster.as_str().unwrap_or_default()),
        &format!("-var=aws_endpoint={}", moto.endpoint()),
        &format!("-var=registry_endpoint=http://{}", env.auth_registry),
        &format!("-var=consul_address={}", consul.address()),
        "-var=consul_token=example-t0ken",
    ]);
    assert!(out.stdout.contains("2 passed, 0 failed"), "{}", out.all());
    let state = consul.state().expect("state");
    assert_eq!(
        state["Entries"].as_array().map(Vec::len),
        Some(0),
        "{state:#}"
    );
    // terraform test destroyed it all: the repositories it made and the service.
    let left = moto
        .boto3(
            "repos = [r['repositoryName'] for r in ecr.describe_repositories()['repositories']]\n\
             services = [s['status'] for arns in [ecs.list_services(cluster='dev-hosts')['serviceArns']] if arns for s in ecs.describe_services(cluster='dev-hosts', services=arns)['services'] if s['status'] != 'INACTIVE']\n\
             print(json.dumps(repos + services))\n",
        )
        .expect("leftovers");
    assert_eq!(left, serde_json::json!([]), "nothing left after destroy");
}

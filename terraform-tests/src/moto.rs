//! A private moto server for tests that need moto configured differently
//! from the shared one (e.g. `MOTO_ECS_SERVICE_RUNNING`), and boto3 as an
//! independent client to look at what the provider left in it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::consul::tools_python;

/// Why a private moto could not be used.
#[derive(Debug, thiserror::Error)]
pub enum MotoError {
    /// The server did not come up.
    #[error("cannot start moto: {0}")]
    Startup(String),
    /// A boto3 script failed.
    #[error("boto3 script failed: {0}")]
    Script(String),
}

/// A moto server on its own 127.0.0.1 port, stopped on drop.
pub struct PrivateMoto {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl PrivateMoto {
    /// Starts moto with extra environment (e.g. `MOTO_ECS_SERVICE_RUNNING=1`)
    /// and waits until it answers (30 s at most).
    pub fn start(env: &[(&str, &str)]) -> Result<Self, MotoError> {
        let startup = |m: String| MotoError::Startup(m);
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| startup(format!("free port: {e}")))?
            .port();
        let dir = tempfile::tempdir().map_err(|e| startup(format!("temp dir: {e}")))?;
        let log = std::fs::File::create(dir.path().join("log"))
            .map_err(|e| startup(format!("log: {e}")))?;
        let server: PathBuf = tools_python().with_file_name("moto_server");
        let mut cmd = Command::new(&server);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd
            .spawn()
            .map_err(|e| startup(format!("{}: {e}", server.display())))?;
        let moto = PrivateMoto {
            child,
            port,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(moto);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(startup(format!("no answer on port {port} within 30 s")))
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A `provider "ep"` block pointing every AWS service at this moto.
    pub fn provider_block(&self) -> String {
        crate::env::provider_block(&self.endpoint(), None)
    }

    /// Runs a Python snippet with `rds`, `ecs`, `mq`, `ssm`, `ec2` and `ecr` boto3 clients
    /// bound to this moto; what it prints as JSON (`print(json.dumps(…))`)
    /// is returned.
    pub fn boto3(&self, script: &str) -> Result<serde_json::Value, MotoError> {
        let prelude = format!(
            "import json, boto3\n\
             kw = dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n\
             rds, ecs, mq, ssm, ec2, ecr = (boto3.client(s, **kw) for s in ('rds', 'ecs', 'mq', 'ssm', 'ec2', 'ecr'))\n",
            self.endpoint()
        );
        let out = Command::new(tools_python())
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .output()
            .map_err(|e| MotoError::Script(e.to_string()))?;
        if !out.status.success() {
            return Err(MotoError::Script(
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(text.trim()).map_err(|e| MotoError::Script(format!("{e}: {text}")))
    }
}

impl PrivateMoto {
    /// Creates a VPC with one subnet and one security group; their IDs.
    pub fn create_network(&self) -> Result<(String, String), MotoError> {
        let ids = self.boto3(
            "vpc = ec2.create_vpc(CidrBlock='10.0.0.0/16')['Vpc']['VpcId']\n\
             sn = ec2.create_subnet(VpcId=vpc, CidrBlock='10.0.1.0/24')['Subnet']['SubnetId']\n\
             sg = ec2.create_security_group(GroupName='ep', Description='ep', VpcId=vpc)['GroupId']\n\
             print(json.dumps([sn, sg]))\n",
        )?;
        match (ids[0].as_str(), ids[1].as_str()) {
            (Some(sn), Some(sg)) => Ok((sn.to_owned(), sg.to_owned())),
            _ => Err(MotoError::Script(format!("unexpected answer {ids}"))),
        }
    }
}

impl Drop for PrivateMoto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

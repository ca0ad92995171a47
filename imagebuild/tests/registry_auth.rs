//! Authenticated pushes: ECR credentials from moto's emulated
//! `GetAuthorizationToken` used against the basic-auth registry through an
//! endpoint override, Docker config credentials, and credential errors.

mod support;

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine as _;
use ep_imagebuild::registry::{
    AuthProvider, ClientOptions, DockerConfigAuth, EcrAuth, ManifestStatus, PushOutcome,
    RegistryClient, RegistryError, RepoRef, StaticAuth,
};
use support::{build_image, random_blob_file, skopeo_inspect, testenv, unique_repo, TestEnv};

/// What moto reports as the account's registry; unreachable here, so the
/// client is told to use the auth registry's address instead.
const ECR_HOST: &str = "123456789012.dkr.ecr.us-east-1.amazonaws.com";

async fn ecr_auth(env: &TestEnv) -> EcrAuth {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_ecr::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_ecr::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .load()
        .await;
    EcrAuth::new(&config, Some(&env.moto))
}

fn ecr_client(env: &TestEnv, auth: Arc<dyn AuthProvider>) -> RegistryClient {
    let mut endpoints = HashMap::new();
    endpoints.insert(ECR_HOST.to_owned(), format!("http://{}", env.auth_registry));
    RegistryClient::new(ClientOptions {
        endpoint_overrides: endpoints,
        ..ClientOptions::default()
    })
    .unwrap()
    .with_auth(ECR_HOST, auth)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecr_auth_push_through_endpoint_override() {
    let env = testenv();
    let auth = ecr_auth(&env).await;
    assert_eq!(
        auth.proxy_endpoint().await.unwrap().as_deref(),
        Some(format!("https://{ECR_HOST}").as_str())
    );
    let creds = auth.credentials(ECR_HOST).await.unwrap();
    assert!(!format!("{creds:?}").contains(&env.auth_password));
    let client = ecr_client(&env, Arc::new(auth));

    let dir = tempfile::tempdir().unwrap();
    let size = 12 * 1024 * 1024 + 7;
    let (big, big_d) = random_blob_file(dir.path(), "big", size, 100);
    let (small, small_d) = random_blob_file(dir.path(), "small", 999, 101);
    let image = build_image(&[(big, big_d, size as u64), (small, small_d, 999)], "ecr");
    let repo = RepoRef::new(ECR_HOST, unique_repo("ecr")).unwrap();
    let report = client
        .push_image(&repo, &image.push(&["1.0"]))
        .await
        .unwrap();
    assert!(
        report
            .blobs
            .iter()
            .all(|(_, o)| matches!(o, PushOutcome::Uploaded(_))),
        "{report:?}"
    );
    assert_eq!(report.tags, vec![("1.0".into(), ManifestStatus::Pushed)]);

    let inspect = skopeo_inspect(
        &env.auth_registry,
        &repo.repository,
        "1.0",
        Some((&env.auth_user, &env.auth_password)),
    );
    assert_eq!(
        inspect["Digest"].as_str(),
        Some(image.manifest_digest.as_str())
    );

    let again = client
        .push_image(&repo, &image.push(&["1.0"]))
        .await
        .unwrap();
    assert!(again.blobs.iter().all(|(_, o)| *o == PushOutcome::Skipped));
    assert_eq!(again.tags, vec![("1.0".into(), ManifestStatus::Unchanged)]);
    assert_eq!(
        client.list_tags(&repo).await.unwrap(),
        vec!["1.0".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_give_a_clear_401_without_secrets() {
    let env = testenv();
    let wrong = "wrong-secret-8c1f2e";
    let client = ecr_client(
        &env,
        Arc::new(StaticAuth::basic(env.auth_user.clone(), wrong)),
    );
    let dir = tempfile::tempdir().unwrap();
    let (l, d) = random_blob_file(dir.path(), "l", 2048, 7);
    let image = build_image(&[(l, d, 2048)], "wrong");
    let repo = RepoRef::new(ECR_HOST, unique_repo("denied")).unwrap();
    let err = client
        .push_image(&repo, &image.push(&["x"]))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    let display = err.to_string();
    let debug = format!("{err:?}");
    assert!(
        display.contains(ECR_HOST) && display.contains(&repo.repository) && display.contains("401"),
        "{display}"
    );
    for text in [&display, &debug] {
        assert!(!text.contains(wrong), "secret leaked: {text}");
        assert!(!text.contains(&env.auth_password), "secret leaked: {text}");
        assert!(
            !text.to_ascii_lowercase().contains("authorization: "),
            "header leaked: {text}"
        );
        let b64 =
            base64::engine::general_purpose::STANDARD.encode(format!("{}:{wrong}", env.auth_user));
        assert!(!text.contains(&b64), "encoded secret leaked: {text}");
    }

    // Anonymous against the auth registry: also a 401 naming the repository.
    let anon = RegistryClient::new(ClientOptions {
        insecure_registries: vec![env.auth_registry.clone()],
        ..ClientOptions::default()
    })
    .unwrap();
    let repo = RepoRef::new(env.auth_registry.clone(), unique_repo("anon")).unwrap();
    let err = anon.list_tags(&repo).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(err.to_string().contains(&repo.repository));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_auths_and_credential_helpers() {
    let env = testenv();
    let dir = tempfile::tempdir().unwrap();
    let (l, d) = random_blob_file(dir.path(), "l", 4096, 9);
    let image = build_image(&[(l, d, 4096)], "docker-config");
    let opts = || ClientOptions {
        insecure_registries: vec![env.auth_registry.clone()],
        ..ClientOptions::default()
    };

    // `auths` with base64 user:password.
    let cfg = dir.path().join("config.json");
    let auth_b64 = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", env.auth_user, env.auth_password));
    std::fs::write(
        &cfg,
        serde_json::json!({ "auths": { format!("http://{}", env.auth_registry): { "auth": auth_b64 } } }).to_string(),
    )
    .unwrap();
    let provider = DockerConfigAuth::from_path(&cfg).unwrap();
    assert!(!format!("{provider:?}").contains(&env.auth_password));
    let client = RegistryClient::new(opts())
        .unwrap()
        .with_default_auth(Arc::new(provider));
    let repo = RepoRef::new(env.auth_registry.clone(), unique_repo("dcfg")).unwrap();
    client.push_image(&repo, &image.push(&["a"])).await.unwrap();

    // `credHelpers` → docker-credential-<name> get, registry on stdin.
    let helpers = dir.path().join("bin");
    std::fs::create_dir(&helpers).unwrap();
    let script = helpers.join("docker-credential-eptest");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nread server\n[ \"$1\" = get ] || exit 2\n[ \"$server\" = \"{}\" ] || {{ echo 'credentials not found in native keychain'; exit 1; }}\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{}\",\"Secret\":\"{}\"}}' \"$server\"\n",
            env.auth_registry, env.auth_user, env.auth_password
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let cfg2 = dir.path().join("config2.json");
    std::fs::write(
        &cfg2,
        serde_json::json!({ "credHelpers": { env.auth_registry.clone(): "eptest" }, "credsStore": "eptest" }).to_string(),
    )
    .unwrap();
    let provider = DockerConfigAuth::from_path(&cfg2)
        .unwrap()
        .with_helper_dir(&helpers);
    assert!(provider
        .credentials(&env.auth_registry)
        .await
        .unwrap()
        .is_some());
    // credsStore fallback for another registry: the helper has nothing → anonymous.
    assert!(provider
        .credentials("other.example")
        .await
        .unwrap()
        .is_none());
    let client = RegistryClient::new(opts())
        .unwrap()
        .with_default_auth(Arc::new(provider));
    let repo = RepoRef::new(env.auth_registry.clone(), unique_repo("helper")).unwrap();
    let report = client.push_image(&repo, &image.push(&["b"])).await.unwrap();
    assert_eq!(report.tags, vec![("b".into(), ManifestStatus::Pushed)]);

    // A helper that is missing: a clear provider error.
    let cfg3 = dir.path().join("config3.json");
    std::fs::write(
        &cfg3,
        serde_json::json!({ "credsStore": "does-not-exist" }).to_string(),
    )
    .unwrap();
    let provider = DockerConfigAuth::from_path(&cfg3)
        .unwrap()
        .with_helper_dir(&helpers);
    let client = RegistryClient::new(opts())
        .unwrap()
        .with_default_auth(Arc::new(provider));
    let err = client.list_tags(&repo).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Auth { .. })
            && err.to_string().contains("docker-credential-does-not-exist"),
        "{err}"
    );
}

/// Credentials that go stale (like an expired ECR token) until invalidated.
#[derive(Debug)]
struct Expiring {
    user: String,
    good: String,
    stale: std::sync::atomic::AtomicBool,
    invalidations: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl AuthProvider for Expiring {
    async fn credentials(
        &self,
        _registry: &str,
    ) -> Result<Option<ep_imagebuild::registry::Credentials>, ep_imagebuild::registry::AuthError>
    {
        let pw = if self.stale.load(std::sync::atomic::Ordering::SeqCst) {
            "expired-token".to_owned()
        } else {
            self.good.clone()
        };
        Ok(Some(ep_imagebuild::registry::Credentials::Basic(
            self.user.clone(),
            pw,
        )))
    }

    fn invalidate(&self, _registry: &str) {
        self.invalidations
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.stale.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_credentials_are_refreshed_mid_push() {
    let env = testenv();
    let provider = Arc::new(Expiring {
        user: env.auth_user.clone(),
        good: env.auth_password.clone(),
        stale: false.into(),
        invalidations: 0.into(),
    });
    let client = ecr_client(&env, provider.clone());
    let dir = tempfile::tempdir().unwrap();
    let repo = RepoRef::new(ECR_HOST, unique_repo("expiry")).unwrap();
    let (a, da) = random_blob_file(dir.path(), "a", 5000, 61);
    client
        .push_image(&repo, &build_image(&[(a, da, 5000)], "e1").push(&["a"]))
        .await
        .unwrap();
    assert_eq!(
        provider
            .invalidations
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );

    // The credentials expire between two pushes of one long-lived client.
    provider
        .stale
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let size = 11 * 1024 * 1024;
    let (b, db) = random_blob_file(dir.path(), "b", size, 62);
    let report = client
        .push_image(
            &repo,
            &build_image(&[(b, db, size as u64)], "e2").push(&["b"]),
        )
        .await
        .unwrap();
    assert!(matches!(report.blobs[0].1, PushOutcome::Uploaded(_)));
    assert_eq!(
        provider
            .invalidations
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
}

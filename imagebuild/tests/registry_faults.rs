//! Pushes through the fault-injecting proxy (503, 429, dropped connections),
//! the bearer-token flow (token expiry and revocation mid-push), and
//! concurrent pushes sharing layers through one client.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ep_imagebuild::registry::{
    ClientOptions, PushOutcome, RegistryClient, RegistryError, RepoRef, RetryPolicy, StaticAuth,
};
use support::proxy::{patient_retry, BearerFront, FaultProxy, ProxyConfig};
use support::{build_image, random_blob_file, testenv, unique_repo, TestImage};

fn proxied_client(proxy: &FaultProxy) -> RegistryClient {
    proxy.client(patient_retry())
}

fn plain_client(registry: &str) -> RegistryClient {
    let mut endpoints = HashMap::new();
    endpoints.insert(registry.to_owned(), format!("http://{registry}"));
    RegistryClient::new(ClientOptions {
        endpoint_overrides: endpoints,
        ..ClientOptions::default()
    })
    .unwrap()
}

fn upstream(registry: &str) -> std::net::SocketAddr {
    registry.parse().expect("EP_TESTENV_REGISTRY is host:port")
}

/// Every blob of `image` reads back from the registry and hashes right.
async fn verify_blobs(client: &RegistryClient, repo: &RepoRef, image: &TestImage) {
    for b in &image.blobs {
        let bytes = client
            .get_blob_bytes(repo, &b.digest, 64 << 20)
            .await
            .unwrap();
        assert_eq!(bytes.len() as u64, b.size);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_survive_injected_faults() {
    let env = testenv();
    let dir = tempfile::tempdir().unwrap();
    let big = 21 * 1024 * 1024;
    let (l1, d1) = random_blob_file(dir.path(), "big", big, 500);
    let (l2, d2) = random_blob_file(dir.path(), "small", 70_000, 501);
    let (l3, d3) = random_blob_file(dir.path(), "mid", 3 * 1024 * 1024, 502);
    let image = build_image(
        &[
            (l1, d1, big as u64),
            (l2, d2, 70_000),
            (l3, d3, 3 * 1024 * 1024),
        ],
        "faults",
    );

    let clean = plain_client(&env.registry);
    let clean_repo = RepoRef::new(env.registry.clone(), unique_repo("clean")).unwrap();
    let reference = clean
        .push_image(&clean_repo, &image.push(&["v"]))
        .await
        .unwrap();

    let mut total_faults = 0;
    for seed in 1..=5u64 {
        let proxy = FaultProxy::start(ProxyConfig {
            upstream: upstream(&env.registry),
            fault_rate: 0.2,
            seed,
            bearer: None,
        })
        .await;
        // Fresh client per seed: nothing known, everything goes up through the faults.
        let client = proxied_client(&proxy);
        let repo = RepoRef::new(proxy.host_port(), unique_repo(&format!("faults{seed}"))).unwrap();
        let report = client
            .push_image(&repo, &image.push(&["v"]))
            .await
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(
            report.manifest_digest, reference.manifest_digest,
            "seed {seed}"
        );
        assert!(
            report
                .blobs
                .iter()
                .all(|(_, o)| matches!(o, PushOutcome::Uploaded(_))),
            "seed {seed}: {report:?}"
        );
        total_faults += proxy.faults();
        drop(proxy);

        // Checked directly against the registry, not through the proxy.
        let direct = RepoRef::new(env.registry.clone(), repo.repository.clone()).unwrap();
        verify_blobs(&clean, &direct, &image).await;
        let head = clean.head_manifest(&direct, "v").await.unwrap().unwrap();
        assert_eq!(head.digest, reference.manifest_digest);
    }
    assert!(
        total_faults >= 5,
        "the proxy injected only {total_faults} faults"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_bounded_attempts() {
    let env = testenv();
    let proxy = FaultProxy::start(ProxyConfig {
        upstream: upstream(&env.registry),
        fault_rate: 1.0,
        seed: 9,
        bearer: None,
    })
    .await;
    let client = proxy.client(RetryPolicy {
        max_attempts: 3,
        initial_backoff: Duration::from_millis(1),
        max_backoff: Duration::from_millis(5),
        max_retry_after: Duration::from_millis(5),
    });
    let repo = RepoRef::new(proxy.host_port(), unique_repo("giveup")).unwrap();
    let err = client.list_tags(&repo).await.unwrap_err();
    let msg = err.to_string();
    eprintln!("final error: {msg}");
    assert!(
        msg.contains(&repo.repository) && msg.contains(&proxy.host_port()),
        "{msg}"
    );
    // Transport errors are reported without URLs (upload URLs carry state).
    assert!(!msg.contains("http://"), "{msg}");
    // The ping (3 tries) plus the tag request (3 tries).
    let n = proxy.requests().len();
    assert!(n <= 6, "{n} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_expire_and_are_refreshed() {
    let env = testenv();
    let proxy = FaultProxy::start(ProxyConfig {
        upstream: upstream(&env.registry),
        fault_rate: 0.0,
        seed: 0,
        bearer: Some(BearerFront {
            user: "robot".into(),
            password: "p4ss-bearer".into(),
            ttl: Duration::from_secs(2),
        }),
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let client = proxied_client(&proxy).with_auth(
        &proxy.host_port(),
        Arc::new(StaticAuth::basic("robot", "p4ss-bearer")),
    );
    let repo = RepoRef::new(proxy.host_port(), unique_repo("bearer")).unwrap();

    let (a, da) = random_blob_file(dir.path(), "a", 12 * 1024 * 1024, 1);
    let image = build_image(&[(a.clone(), da.clone(), 12 * 1024 * 1024)], "bearer1");
    client
        .push_image(&repo, &image.push(&["one"]))
        .await
        .unwrap();
    let first = proxy.token_requests();
    assert!(first >= 1);

    // Revoked (as if expired early): 401 mid-push → new token → push completes.
    proxy.revoke_tokens();
    let (b, db) = random_blob_file(dir.path(), "b", 3000, 2);
    let image2 = build_image(&[(a, da, 12 * 1024 * 1024), (b, db, 3000)], "bearer2");
    let report = client
        .push_image(&repo, &image2.push(&["two"]))
        .await
        .unwrap();
    assert!(proxy.token_requests() > first);
    assert_eq!(report.blobs[0].1, PushOutcome::Skipped);

    // Expired by time: refreshed before use.
    let before = proxy.token_requests();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(client.list_tags(&repo).await.unwrap().len(), 2);
    assert!(proxy.token_requests() > before);

    // Mount from another repository needs a token for both.
    let repo2 = RepoRef::new(proxy.host_port(), unique_repo("bearer-m")).unwrap();
    let blob = image.blobs[0]
        .clone()
        .with_mount_from(repo.repository.clone());
    assert!(matches!(
        client.push_blob(&repo2, &blob).await.unwrap(),
        PushOutcome::Mounted { .. }
    ));

    // Wrong password: the token server's 401, no secret in the error.
    let bad = proxied_client(&proxy).with_auth(
        &proxy.host_port(),
        Arc::new(StaticAuth::basic("robot", "nope-123")),
    );
    let err = bad.list_tags(&repo).await.unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err:?}"
    );
    assert!(!format!("{err} {err:?}").contains("nope-123"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_upload_shared_blobs_once() {
    let env = testenv();
    let proxy = FaultProxy::start(ProxyConfig {
        upstream: upstream(&env.registry),
        fault_rate: 0.0,
        seed: 0,
        bearer: None,
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let shared_big = 15 * 1024 * 1024;
    let (s1, sd1) = random_blob_file(dir.path(), "s1", shared_big, 31);
    let (s2, sd2) = random_blob_file(dir.path(), "s2", 40_000, 32);
    let mut images = Vec::new();
    for i in 0..4u64 {
        let (u, ud) = random_blob_file(dir.path(), &format!("u{i}"), 1000 + i as usize, 40 + i);
        images.push(build_image(
            &[
                (s1.clone(), sd1.clone(), shared_big as u64),
                (s2.clone(), sd2.clone(), 40_000),
                (u, ud, 1000 + i),
            ],
            &format!("img{i}"),
        ));
    }
    let client = proxied_client(&proxy);
    // Two images per repository: same-repo and cross-repo sharing.
    let repos = [
        RepoRef::new(proxy.host_port(), unique_repo("conc-x")).unwrap(),
        RepoRef::new(proxy.host_port(), unique_repo("conc-y")).unwrap(),
    ];
    let pushes = images.iter().enumerate().map(|(i, img)| {
        let client = client.clone();
        let repo = repos[i % 2].clone();
        let push = img.push(&[&format!("t{i}")]);
        tokio::spawn(async move { client.push_image(&repo, &push).await })
    });
    let mut reports = Vec::new();
    for h in futures_util::future::join_all(pushes).await {
        reports.push(h.unwrap().unwrap());
    }
    for shared in [&sd1, &sd2] {
        let outcomes: Vec<&PushOutcome> = reports
            .iter()
            .flat_map(|r| r.blobs.iter().filter(|(d, _)| d == shared).map(|(_, o)| o))
            .collect();
        assert_eq!(outcomes.len(), 4);
        let uploaded = outcomes
            .iter()
            .filter(|o| matches!(o, PushOutcome::Uploaded(_)))
            .count();
        let mounted = outcomes
            .iter()
            .filter(|o| matches!(o, PushOutcome::Mounted { .. }))
            .count();
        assert_eq!(uploaded, 1, "{shared}: {outcomes:?}");
        assert_eq!(mounted, 1, "{shared}: {outcomes:?}");
    }
    // The registry saw exactly one completed upload per distinct blob, and
    // one streamed PATCH (only the shared big layer is above the threshold).
    let by_digest = proxy.uploads_by_digest();
    assert_eq!(by_digest.get(sd1.as_str()), Some(&1));
    assert_eq!(by_digest.get(sd2.as_str()), Some(&1));
    assert!(by_digest.values().all(|n| *n == 1), "{by_digest:?}");
    assert_eq!(by_digest.len(), 2 + 4 + 4);
    assert_eq!(proxy.forwarded_patches(), 1);
}

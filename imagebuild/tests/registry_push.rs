//! Pushes and reads against the plain local registry (`scripts/testenv`).

mod support;

use ep_imagebuild::digest::Digest;
use ep_imagebuild::registry::{
    media_types, BlobSource, ClientOptions, ManifestStatus, MountOutcome, PushOutcome,
    RegistryClient, RegistryError, RepoRef,
};
use support::{build_image, random_blob_file, skopeo_inspect, testenv, unique_repo};

fn new_client(registry: &str) -> RegistryClient {
    RegistryClient::new(ClientOptions {
        // Exercises the insecure probe: HTTPS fails, plain HTTP is used.
        insecure_registries: vec![registry.to_owned()],
        ..ClientOptions::default()
    })
    .expect("client")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_inspect_repush_and_mount() {
    let env = testenv();
    let dir = tempfile::tempdir().unwrap();
    let big_size = 21 * 1024 * 1024 + 123;
    let (big, big_d) = random_blob_file(dir.path(), "big", big_size, 1);
    let (small, small_d) = random_blob_file(dir.path(), "small", 3000, 2);
    let layers = vec![
        (big, big_d.clone(), big_size as u64),
        (small, small_d.clone(), 3000),
    ];
    let image = build_image(&layers, "push-test");
    let client = new_client(&env.registry);
    let repo_a = RepoRef::new(env.registry.clone(), unique_repo("a")).unwrap();

    let report = client
        .push_image(&repo_a, &image.push(&["v1", "latest"]))
        .await
        .unwrap();
    assert_eq!(report.manifest_digest, image.manifest_digest);
    assert_eq!(report.by_digest, ManifestStatus::Pushed);
    assert_eq!(
        report.tags,
        vec![
            ("v1".into(), ManifestStatus::Pushed),
            ("latest".into(), ManifestStatus::Pushed)
        ]
    );
    let sizes: Vec<_> = report.blobs.iter().map(|(_, o)| o.clone()).collect();
    assert_eq!(sizes[0], PushOutcome::Uploaded(big_size as u64));
    assert_eq!(sizes[1], PushOutcome::Uploaded(3000));
    assert!(matches!(sizes[2], PushOutcome::Uploaded(_)));

    // An independent tool sees the image.
    let inspect = skopeo_inspect(&env.registry, &repo_a.repository, "v1", None);
    assert_eq!(
        inspect["Digest"].as_str(),
        Some(image.manifest_digest.as_str())
    );
    let skopeo_layers: Vec<&str> = inspect["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    assert_eq!(skopeo_layers, vec![big_d.as_str(), small_d.as_str()]);

    // Second push: nothing to do.
    let again = client
        .push_image(&repo_a, &image.push(&["v1", "latest"]))
        .await
        .unwrap();
    assert!(
        again.blobs.iter().all(|(_, o)| *o == PushOutcome::Skipped),
        "{again:?}"
    );
    assert_eq!(again.by_digest, ManifestStatus::Unchanged);
    assert!(again
        .tags
        .iter()
        .all(|(_, s)| *s == ManifestStatus::Unchanged));

    // A fresh client (no memory of repo A) mounts from an explicit candidate.
    let fresh = new_client(&env.registry);
    let repo_b = RepoRef::new(env.registry.clone(), unique_repo("b")).unwrap();
    let blob = BlobSource::from_file(big_d.clone(), big_size as u64, &layers[0].0)
        .with_mount_from(repo_a.repository.clone());
    assert_eq!(
        fresh.push_blob(&repo_b, &blob).await.unwrap(),
        PushOutcome::Mounted {
            from: repo_a.repository.clone()
        }
    );
    assert_eq!(
        fresh.blob_exists(&repo_b, &big_d).await.unwrap(),
        Some(big_size as u64)
    );

    // The first client remembers where the small blob lives and mounts on its own.
    let repo_c = RepoRef::new(env.registry.clone(), unique_repo("c")).unwrap();
    let small_blob = BlobSource::from_file(small_d.clone(), 3000, &layers[1].0);
    assert_eq!(
        client.push_blob(&repo_c, &small_blob).await.unwrap(),
        PushOutcome::Mounted {
            from: repo_a.repository.clone()
        }
    );

    // Mount from a repository that lacks the blob: 202 → upload instead.
    let (other, other_d) = random_blob_file(dir.path(), "other", 5000, 3);
    let empty_repo = unique_repo("empty");
    match fresh
        .mount_blob(&repo_b, &other_d, &empty_repo)
        .await
        .unwrap()
    {
        MountOutcome::NotMounted { upload_url } => assert!(upload_url.starts_with("http")),
        m => panic!("expected NotMounted, got {m:?}"),
    }
    let other_blob =
        BlobSource::from_file(other_d.clone(), 5000, &other).with_mount_from(empty_repo);
    assert_eq!(
        fresh.push_blob(&repo_b, &other_blob).await.unwrap(),
        PushOutcome::Uploaded(5000)
    );
    let got = fresh
        .get_blob_bytes(&repo_b, &other_d, 10_000)
        .await
        .unwrap();
    assert_eq!(Digest::of(&got), other_d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_tags_and_delete() {
    let env = testenv();
    let dir = tempfile::tempdir().unwrap();
    let (l, d) = random_blob_file(dir.path(), "l", 10_000, 10);
    let image = build_image(&[(l, d, 10_000)], "tags-test");
    let client = new_client(&env.registry);
    let repo = RepoRef::new(env.registry.clone(), unique_repo("tags")).unwrap();
    let tags = ["t1", "t2", "t3", "t4", "t5"];
    client.push_image(&repo, &image.push(&tags)).await.unwrap();

    let mut listed = client.list_tags_paged(&repo, Some(2)).await.unwrap();
    listed.sort();
    assert_eq!(listed, tags);
    let mut all = client.list_tags(&repo).await.unwrap();
    all.sort();
    assert_eq!(all, tags);
    let missing = RepoRef::new(env.registry.clone(), unique_repo("nothing")).unwrap();
    assert!(client.list_tags(&missing).await.unwrap().is_empty());

    let head = client.head_manifest(&repo, "t3").await.unwrap().unwrap();
    assert_eq!(head.digest, image.manifest_digest);
    assert_eq!(head.media_type, media_types::OCI_MANIFEST);
    assert_eq!(head.size, image.manifest.len() as u64);
    let got = client
        .get_manifest(&repo, "t1", &[])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got.bytes, image.manifest);
    assert_eq!(got.digest, image.manifest_digest);
    assert_eq!(got.media_type, media_types::OCI_MANIFEST);
    let by_digest = client
        .get_manifest(
            &repo,
            image.manifest_digest.as_str(),
            &[media_types::OCI_MANIFEST],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(by_digest.bytes, image.manifest);
    assert_eq!(client.get_manifest(&repo, "nope", &[]).await.unwrap(), None);

    // Config blob read back, verified, with a size limit.
    let config = &image.blobs[1];
    let bytes = client
        .get_blob_bytes(&repo, &config.digest, 1 << 20)
        .await
        .unwrap();
    assert_eq!(Digest::of(&bytes), config.digest);
    let too_small = client
        .get_blob_bytes(&repo, &config.digest, 10)
        .await
        .unwrap_err();
    assert!(
        matches!(too_small, RegistryError::TooLarge { .. }),
        "{too_small}"
    );

    assert!(client
        .delete_manifest(&repo, &image.manifest_digest)
        .await
        .unwrap());
    assert_eq!(
        client
            .head_manifest(&repo, image.manifest_digest.as_str())
            .await
            .unwrap(),
        None
    );
    assert_eq!(client.head_manifest(&repo, "t1").await.unwrap(), None);
    assert!(!client
        .delete_manifest(&repo, &image.manifest_digest)
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_content_is_never_stored() {
    let env = testenv();
    let dir = tempfile::tempdir().unwrap();
    let client = new_client(&env.registry);
    let repo = RepoRef::new(env.registry.clone(), unique_repo("verify")).unwrap();
    for (size, name) in [(4000usize, "small"), (12 * 1024 * 1024, "big")] {
        let (path, _) = random_blob_file(dir.path(), name, size, 20);
        let declared = Digest::of(name.as_bytes());
        let blob = BlobSource::from_file(declared.clone(), size as u64, &path);
        let err = client.push_blob(&repo, &blob).await.unwrap_err();
        assert!(matches!(err, RegistryError::DigestMismatch { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains(&env.registry)
                && msg.contains(&repo.repository)
                && msg.contains(declared.as_str()),
            "{msg}"
        );
        assert_eq!(client.blob_exists(&repo, &declared).await.unwrap(), None);
        // Declared size wrong.
        let (_, real) = random_blob_file(dir.path(), name, size, 20);
        let blob = BlobSource::from_file(real, size as u64 + 1, &path);
        let err = client.push_blob(&repo, &blob).await.unwrap_err();
        assert!(matches!(err, RegistryError::SizeMismatch { .. }), "{err}");
    }
    // A manifest pushed under a digest that is not its own.
    let err = client
        .push_manifest(
            &repo,
            Digest::of(b"x").as_str(),
            media_types::OCI_MANIFEST,
            b"{}",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::DigestMismatch { .. }));
    let err = client
        .push_manifest(&repo, "bad/tag", media_types::OCI_MANIFEST, b"{}")
        .await
        .unwrap_err();
    assert!(matches!(err, RegistryError::InvalidArgument(_)));
    // A manifest referencing blobs the registry lacks: the registry's error code is reported.
    let orphan = serde_json::json!({
        "schemaVersion": 2, "mediaType": media_types::OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": Digest::of(b"nope").to_string(), "size": 4},
        "layers": []
    });
    let err = client
        .push_manifest(
            &repo,
            "orphan",
            media_types::OCI_MANIFEST,
            &serde_json::to_vec(&orphan).unwrap(),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP 400")
            && msg.contains("MANIFEST_BLOB_UNKNOWN")
            && msg.contains(&repo.repository),
        "{msg}"
    );
}

//! Publishing: compare what should be under the prefix with what is, then
//! write and remove only what differs, each write conditioned on what was
//! read. Keys this resource does not own are never touched unless
//! `overwrite` is set; refusals are reported before anything is written.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;

use crate::framework::{AttrPath, Diagnostic, Diagnostics, Op};
use crate::stores::{Committed, Entry, Expect, Remove, Store, StoreError, Write};

use super::layout::{self, Desired};
use super::model::{value_digest, PublicationModel};
use super::target::{store_diagnostic, Target};

/// The keys `m` publishes, by full store key, or the layout errors.
pub fn desired_full(
    m: &PublicationModel,
    target: &Target,
) -> Result<BTreeMap<String, (String, Desired)>, Diagnostics> {
    let d = layout::desired(
        m.values.as_ref(),
        m.sensitive_values.as_ref(),
        m.endpoints.as_ref(),
    )
    .map_err(|errs| {
        errs.into_iter()
            .map(|e| Diagnostic::error("Invalid key", e.message).at(e.path))
            .collect::<Diagnostics>()
    })?;
    Ok(d.into_iter()
        .map(|(rel, v)| (target.full_key(&m.prefix, &rel), (rel, v)))
        .collect())
}

/// Whether the stored entry already holds what should be published.
pub fn holds(target: &Target, cur: &Entry, want: &Desired) -> bool {
    cur.value == want.value && (matches!(target, Target::Consul(_)) || cur.secure == want.secure)
}

/// The plan of one publication against what the store holds.
#[derive(Default)]
struct Changes {
    writes: Vec<Write>,
    removes: Vec<Remove>,
    refused: Diagnostics,
    kept: Vec<String>,
}

/// Whether `full` is this resource's: written by it (`owned`), or a write
/// it sent without seeing the answer whose value is there (`pending`).
fn is_ours(
    full: &str,
    cur: &Entry,
    owned: &BTreeSet<String>,
    pending: &BTreeMap<String, String>,
) -> bool {
    owned.contains(full) || pending.get(full) == Some(&value_digest(&cur.value))
}

fn changes(
    target: &Target,
    desired: &BTreeMap<String, (String, Desired)>,
    prior: &BTreeMap<String, (String, Desired)>,
    (owned, pending): (&BTreeSet<String>, &BTreeMap<String, String>),
    current: &BTreeMap<String, Entry>,
    overwrite: bool,
) -> Changes {
    let mut c = Changes::default();
    for (full, (rel, want)) in desired {
        let cur = current.get(full);
        let ours = cur.is_some_and(|e| is_ours(full, e, owned, pending));
        if ours && cur.is_some_and(|e| holds(target, e, want)) {
            continue;
        }
        let expect = match cur {
            None => Expect::Absent,
            Some(e) if ours || overwrite => Expect::Version(e.version),
            Some(_) => {
                c.refused.push(
                    Diagnostic::error(
                        "Key exists and is not this resource's",
                        format!(
                            "{full:?} already exists and was not written by this publication. \
                             Set overwrite = true to take it over, or publish under another key."
                        ),
                    )
                    .at(want.source.path(rel)),
                );
                continue;
            }
        };
        c.writes.push(Write {
            key: full.clone(),
            value: want.value.clone(),
            secure: want.secure,
            expect,
        });
    }
    for full in owned.iter().filter(|k| !desired.contains_key(*k)) {
        let Some(cur) = current.get(full) else {
            continue;
        };
        match prior.get(full) {
            Some((_, was)) if holds(target, cur, was) => c.removes.push(Remove {
                key: full.clone(),
                version: cur.version,
            }),
            _ => c.kept.push(full.clone()),
        }
    }
    c
}

/// The attribute path of the key a store error names, if it is one of ours.
fn error_path(e: &StoreError, desired: &BTreeMap<String, (String, Desired)>) -> Option<AttrPath> {
    let key = match e {
        StoreError::Conflict { key, .. } => key.as_str(),
        StoreError::TooLarge { what, .. } => desired
            .keys()
            .find(|k| what == &format!("the value of {k:?}"))?
            .as_str(),
        _ => return None,
    };
    desired.get(key).map(|(rel, d)| d.source.path(rel))
}

/// Lists the full prefix, as a diagnostic on failure.
pub async fn list<P: crate::framework::typed::PrivateType>(
    op: &Op<P>,
    store: &Store,
    full_prefix: &str,
) -> Result<BTreeMap<String, Entry>, Diagnostics> {
    op.run(store.list(full_prefix))
        .await
        .map_err(|i| Diagnostics::from(i.to_diagnostic(&format!("reading {}", store.describe()))))?
        .map_err(|e| store_diagnostic(&format!("Cannot read {full_prefix:?}"), &e, None))
}

/// Publishes `config` (over `prior`, on update). On failure the state
/// checkpointed says which keys were written.
pub async fn publish(
    op: &Op<()>,
    store: &Store,
    target: &Target,
    prior: Option<&PublicationModel>,
    mut config: PublicationModel,
) -> Result<PublicationModel, Diagnostics> {
    let desired = desired_full(&config, target)?;
    let prior_desired = match prior {
        Some(p) => desired_full(p, target).unwrap_or_default(),
        None => BTreeMap::new(),
    };
    let owned: BTreeSet<String> = prior
        .and_then(|p| p.keys.clone())
        .unwrap_or_default()
        .into_iter()
        .collect();
    let full_prefix = target.full_prefix(&config.prefix);
    let current = list(op, store, &full_prefix).await?;
    let pending = prior
        .and_then(|p| p.unconfirmed.clone())
        .unwrap_or_default();
    let c = changes(
        target,
        &desired,
        &prior_desired,
        (&owned, &pending),
        &current,
        config.overwrite == Some(true),
    );
    if c.refused.has_errors() {
        return Err(c.refused);
    }
    if !c.kept.is_empty() {
        op.warn(
            "Keys left in place",
            format!(
                "No longer published, but changed outside Terraform, so not removed: {}",
                c.kept.join(", ")
            ),
        );
    }
    config.id = Some(target.id(&config.prefix));
    tracing::info!(
        store = %store.describe(),
        prefix = %full_prefix,
        writes = c.writes.len(),
        removes = c.removes.len(),
        "publishing"
    );
    let committed = Mutex::new(Committed::default());
    let outcome = op.run(store.apply(&c.writes, &c.removes, &committed)).await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => {
            let path = error_path(&e, &desired);
            Some(store_diagnostic(
                &format!("Cannot publish to {}", store.describe()),
                &e,
                path,
            ))
        }
        Err(i) => Some(Diagnostics::from(i.to_diagnostic("publishing"))),
    };
    match failure {
        None => {
            config.unconfirmed = None;
            config.keys = Some(desired.keys().cloned().collect());
            Ok(config)
        }
        Some(mut diags) => {
            let done = committed
                .into_inner()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            // Writes sent but not confirmed: the next run may find them
            // committed, and then knows they are this resource's.
            let mut unconfirmed = pending;
            for w in &c.writes {
                unconfirmed.insert(w.key.clone(), value_digest(&w.value));
            }
            for k in &done.written {
                unconfirmed.remove(k);
            }
            config.unconfirmed = Some(unconfirmed).filter(|u| !u.is_empty());
            let mut now_owned = owned;
            for k in &done.removed {
                now_owned.remove(k);
            }
            now_owned.extend(done.written.iter().cloned());
            config.keys = Some(now_owned.into_iter().collect());
            op.checkpoint(&config)?;
            if !done.written.is_empty() || !done.removed.is_empty() {
                diags.push(Diagnostic::warning(
                    "Published in part",
                    format!(
                        "Before the failure, {} key(s) were written and {} removed; the state \
                         records them (`keys`). Consul transactions are atomic one by one, not \
                         across the split of a large set.",
                        done.written.len(),
                        done.removed.len()
                    ),
                ));
            }
            Err(diags)
        }
    }
}

/// Removes the keys `state` owns that still hold its values; reports the others.
pub async fn unpublish(
    op: &Op<()>,
    store: &Store,
    target: &Target,
    mut state: PublicationModel,
) -> Result<(), Diagnostics> {
    let desired = desired_full(&state, target).unwrap_or_default();
    let owned: BTreeSet<String> = state.keys.clone().unwrap_or_default().into_iter().collect();
    let current = list(op, store, &target.full_prefix(&state.prefix)).await?;
    let mut removes = Vec::new();
    let mut kept = Vec::new();
    // Writes whose answer was lost: removed when they hold the value sent.
    let pending = state.unconfirmed.clone().unwrap_or_default();
    for (full, sent) in pending.iter().filter(|(k, _)| !owned.contains(*k)) {
        if let Some(cur) = current
            .get(full)
            .filter(|e| value_digest(&e.value) == *sent)
        {
            removes.push(Remove {
                key: full.clone(),
                version: cur.version,
            });
        }
    }
    for full in &owned {
        let Some(cur) = current.get(full) else {
            continue;
        };
        match desired.get(full) {
            Some((_, want)) if cur.value == want.value => removes.push(Remove {
                key: full.clone(),
                version: cur.version,
            }),
            _ => kept.push(full.clone()),
        }
    }
    if !kept.is_empty() {
        op.warn(
            "Keys left in place",
            format!(
                "These keys were changed outside Terraform since they were published, so \
                 destroy left them: {}",
                kept.join(", ")
            ),
        );
    }
    let committed = Mutex::new(Committed::default());
    let outcome = op.run(store.apply(&[], &removes, &committed)).await;
    let err = match outcome {
        Ok(Ok(())) => return Ok(()),
        Ok(Err(e)) => store_diagnostic(
            &format!("Cannot remove keys from {}", store.describe()),
            &e,
            None,
        ),
        Err(i) => Diagnostics::from(i.to_diagnostic("removing keys")),
    };
    let done = committed
        .into_inner()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !done.removed.is_empty() {
        let gone: BTreeSet<&String> = done.removed.iter().collect();
        state.keys = Some(owned.into_iter().filter(|k| !gone.contains(k)).collect());
        op.checkpoint(&state)?;
    }
    Err(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::publication::layout::Source;

    fn want(v: &str) -> (String, Desired) {
        (
            v.to_owned(),
            Desired {
                value: v.to_owned(),
                secure: false,
                source: Source::Values,
            },
        )
    }

    fn entry(v: &str, version: u64) -> Entry {
        Entry {
            value: v.to_owned(),
            version,
            secure: false,
        }
    }

    fn consul() -> Target {
        Target::Consul(crate::resources::publication::model::ConsulBlock {
            address: None,
            scheme: None,
            token: None,
            datacenter: None,
            namespace: None,
            ca_file: None,
        })
    }

    #[test]
    fn only_what_differs_is_written_and_foreign_keys_are_refused() {
        let desired: BTreeMap<_, _> = [
            ("p/same".to_owned(), want("same")),
            ("p/new".to_owned(), want("new")),
            ("p/mine".to_owned(), want("mine2")),
            ("p/theirs".to_owned(), want("x")),
        ]
        .into();
        let current: BTreeMap<_, _> = [
            ("p/same".to_owned(), entry("same", 3)),
            ("p/mine".to_owned(), entry("mine", 4)),
            ("p/theirs".to_owned(), entry("y", 5)),
        ]
        .into();
        let owned: BTreeSet<String> = ["p/same".to_owned(), "p/mine".to_owned()].into();
        let c = changes(
            &consul(),
            &desired,
            &BTreeMap::new(),
            (&owned, &BTreeMap::new()),
            &current,
            false,
        );
        let w: Vec<(&str, Expect)> = c
            .writes
            .iter()
            .map(|w| (w.key.as_str(), w.expect))
            .collect();
        assert_eq!(
            w,
            vec![("p/mine", Expect::Version(4)), ("p/new", Expect::Absent)]
        );
        assert_eq!(c.refused.iter().count(), 1);
        let c = changes(
            &consul(),
            &desired,
            &BTreeMap::new(),
            (&owned, &BTreeMap::new()),
            &current,
            true,
        );
        assert_eq!(c.writes.len(), 3);
        assert!(!c.refused.has_errors());
    }

    #[test]
    fn an_identical_foreign_value_is_refused_but_a_lost_write_of_ours_is_adopted() {
        let desired: BTreeMap<_, _> = [
            ("p/same".to_owned(), want("v")),
            ("p/lost".to_owned(), want("w")),
        ]
        .into();
        let current: BTreeMap<_, _> = [
            ("p/same".to_owned(), entry("v", 3)),
            ("p/lost".to_owned(), entry("w", 4)),
        ]
        .into();
        let none = BTreeSet::new();
        let c = changes(
            &consul(),
            &desired,
            &BTreeMap::new(),
            (&none, &BTreeMap::new()),
            &current,
            false,
        );
        assert_eq!(c.refused.iter().count(), 2, "same value, still not ours");
        let pending: BTreeMap<_, _> = [("p/lost".to_owned(), value_digest("w"))].into();
        let c = changes(
            &consul(),
            &desired,
            &BTreeMap::new(),
            (&none, &pending),
            &current,
            false,
        );
        assert_eq!(c.refused.iter().count(), 1);
        assert!(
            c.writes.is_empty(),
            "the lost write holds the value: adopted"
        );
    }

    #[test]
    fn removals_only_of_owned_keys_still_holding_our_value() {
        let prior: BTreeMap<_, _> =
            [("p/a".to_owned(), want("a")), ("p/b".to_owned(), want("b"))].into();
        let current: BTreeMap<_, _> = [
            ("p/a".to_owned(), entry("a", 7)),
            ("p/b".to_owned(), entry("changed", 8)),
            ("p/c".to_owned(), entry("c", 9)),
        ]
        .into();
        let owned: BTreeSet<String> = ["p/a".to_owned(), "p/b".to_owned()].into();
        let c = changes(
            &consul(),
            &BTreeMap::new(),
            &prior,
            (&owned, &BTreeMap::new()),
            &current,
            false,
        );
        assert_eq!(c.removes.len(), 1);
        assert_eq!(c.removes[0].key, "p/a");
        assert_eq!(c.removes[0].version, 7);
        assert_eq!(c.kept, vec!["p/b".to_owned()]);
    }
}

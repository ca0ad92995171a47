//! Consul writes through `/v1/txn`: each write a `cas` on the index read
//! (index 0 = the key must not exist), each removal a `delete-cas`. A
//! transaction holds at most 64 operations (Consul before 1.14) and 512 KB;
//! larger sets are split, and the split is not atomic: batches already
//! committed stay committed and are recorded as such.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::consul::ConsulClient;
use super::{record, Committed, Expect, Remove, StoreError, Write};

/// Operations per transaction (Consul before 1.14; 128 since).
pub const MAX_OPS: usize = 64;
/// Request body limit (Consul's default `txn_max_req_len`, 512 KiB).
pub const MAX_BODY: usize = 512 * 1024;

/// One operation of a transaction, with the key it concerns.
struct TxnOp {
    key: String,
    json: serde_json::Value,
    size: usize,
    write: bool,
}

fn ops_of(writes: &[Write], removes: &[Remove], namespace: Option<&str>) -> Vec<TxnOp> {
    let mut out = Vec::with_capacity(writes.len() + removes.len());
    // Consul Enterprise takes the namespace per operation; without one the
    // token's namespace (or `default`) applies.
    let scoped = |mut json: serde_json::Value| {
        if let (Some(ns), Some(kv)) = (namespace, json.get_mut("KV")) {
            kv["Namespace"] = json!(ns);
        }
        json
    };
    for w in writes {
        let index = match w.expect {
            Expect::Absent => 0,
            Expect::Version(v) => v,
        };
        let value = base64::engine::general_purpose::STANDARD.encode(w.value.as_bytes());
        let json =
            scoped(json!({"KV": {"Verb": "cas", "Key": w.key, "Value": value, "Index": index}}));
        // Size as serialised, plus the separating comma.
        let size = json.to_string().len() + 1;
        out.push(TxnOp {
            key: w.key.clone(),
            json,
            size,
            write: true,
        });
    }
    for r in removes {
        let json = scoped(json!({"KV": {"Verb": "delete-cas", "Key": r.key, "Index": r.version}}));
        let size = json.to_string().len() + 1;
        out.push(TxnOp {
            key: r.key.clone(),
            json,
            size,
            write: false,
        });
    }
    out
}

/// Splits operations into transactions within both limits. An operation
/// too large on its own travels alone, so Consul's 413 names its key.
fn batches(ops: Vec<TxnOp>) -> Vec<Vec<TxnOp>> {
    let mut out: Vec<Vec<TxnOp>> = Vec::new();
    let mut cur: Vec<TxnOp> = Vec::new();
    let mut size = 2;
    for op in ops {
        if !cur.is_empty() && (cur.len() == MAX_OPS || size + op.size > MAX_BODY) {
            out.push(std::mem::take(&mut cur));
            size = 2;
        }
        size += op.size;
        cur.push(op);
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TxnErrors {
    errors: Option<Vec<TxnError>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct TxnError {
    op_index: usize,
    what: String,
}

/// The error a failed transaction means, naming the key where Consul says which.
fn failure(client: &ConsulClient, batch: &[TxnOp], status: u16, body: &str) -> StoreError {
    match status {
        409 => {
            let parsed: Option<TxnErrors> = serde_json::from_str(body).ok();
            let first = parsed
                .and_then(|p| p.errors)
                .and_then(|e| e.into_iter().next());
            match first {
                Some(e) => StoreError::Conflict {
                    key: batch
                        .get(e.op_index)
                        .map_or_else(|| format!("operation {}", e.op_index), |o| o.key.clone()),
                    detail: e.what,
                },
                None => client.status_error("PUT /v1/txn", status, body),
            }
        }
        413 => {
            let what = match batch {
                [one] => format!("the value of {:?}", one.key),
                many => format!(
                    "a transaction of {} operations ({:?} … {:?})",
                    many.len(),
                    many.first().map(|o| o.key.as_str()).unwrap_or_default(),
                    many.last().map(|o| o.key.as_str()).unwrap_or_default()
                ),
            };
            StoreError::TooLarge {
                what,
                detail: body.trim().chars().take(300).collect(),
            }
        }
        _ => client.status_error("PUT /v1/txn", status, body),
    }
}

/// Applies `writes` and `removes`; see the module documentation.
pub async fn apply(
    client: &ConsulClient,
    writes: &[Write],
    removes: &[Remove],
    committed: &std::sync::Mutex<Committed>,
) -> Result<(), StoreError> {
    let ops = ops_of(writes, removes, client.namespace());
    // Refused before anything is sent: no partial publication for a value
    // that can never fit (base64 makes values a third larger).
    if let Some(op) = ops.iter().find(|o| o.size + 2 > MAX_BODY) {
        return Err(StoreError::TooLarge {
            what: format!("the value of {:?}", op.key),
            detail: format!(
                "base64-encoded in a transaction it takes {} bytes; Consul's default \
                 txn_max_req_len is {MAX_BODY} bytes",
                op.size
            ),
        });
    }
    let batches = batches(ops);
    let total = batches.len();
    if total > 1 {
        tracing::info!(
            transactions = total,
            "publishing in several Consul transactions: the split is not atomic"
        );
    }
    for (n, batch) in batches.into_iter().enumerate() {
        let body = serde_json::Value::Array(batch.iter().map(|o| o.json.clone()).collect());
        let resp = client
            .request(reqwest::Method::PUT, "/v1/txn", &[])?
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .map_err(|e| client.unreachable(&e))?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| client.unreachable(&e))?;
        if status != 200 {
            let err = failure(client, &batch, status, &text);
            tracing::warn!(
                transaction = n + 1,
                of = total,
                status,
                "Consul transaction failed"
            );
            return Err(err);
        }
        record(committed, |c| {
            for op in &batch {
                if op.write {
                    c.written.push(op.key.clone());
                } else {
                    c.removed.push(op.key.clone());
                }
            }
        });
        tracing::debug!(
            transaction = n + 1,
            of = total,
            ops = batch.len(),
            "committed"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(key: &str, len: usize) -> Write {
        Write {
            key: key.to_owned(),
            value: "x".repeat(len),
            secure: false,
            expect: Expect::Absent,
        }
    }

    #[test]
    fn splits_at_64_operations() {
        let writes: Vec<Write> = (0..130).map(|i| write(&format!("p/k{i}"), 5)).collect();
        let b = batches(ops_of(&writes, &[], None));
        assert_eq!(b.iter().map(Vec::len).collect::<Vec<_>>(), vec![64, 64, 2]);
    }

    #[test]
    fn splits_at_512_kb_and_sends_an_oversize_operation_alone() {
        // Three values of 200 KB: base64 makes each ~267 KB, so one per transaction.
        let writes: Vec<Write> = (0..3)
            .map(|i| write(&format!("p/big{i}"), 200_000))
            .collect();
        let b = batches(ops_of(&writes, &[], None));
        assert_eq!(b.len(), 3);
        for batch in &b {
            let size: usize = batch.iter().map(|o| o.size).sum();
            assert!(size <= MAX_BODY, "{size}");
        }
        let huge = [write("p/huge", 600_000), write("p/small", 1)];
        let b = batches(ops_of(&huge, &[], None));
        assert_eq!(b.len(), 2);
        assert_eq!(b[0][0].key, "p/huge");
    }

    #[test]
    fn writes_are_cas_with_the_read_index_and_removals_delete_cas() {
        let mut w = write("p/a", 1);
        w.expect = Expect::Version(42);
        let ops = ops_of(
            &[w, write("p/b", 1)],
            &[Remove {
                key: "p/c".into(),
                version: 7,
            }],
            None,
        );
        assert_eq!(ops[0].json["KV"]["Verb"], "cas");
        assert_eq!(ops[0].json["KV"]["Index"], 42);
        assert_eq!(ops[1].json["KV"]["Index"], 0);
        assert_eq!(ops[2].json["KV"]["Verb"], "delete-cas");
        assert_eq!(ops[2].json["KV"]["Index"], 7);
        assert_eq!(ops[0].json["KV"]["Value"], "eA==");
        assert!(ops[0].json["KV"].get("Namespace").is_none());
    }

    #[test]
    fn every_operation_names_the_namespace() {
        let remove = Remove {
            key: "p/c".into(),
            version: 7,
        };
        let ops = ops_of(&[write("p/a", 1)], &[remove], Some("team-a"));
        assert!(ops.iter().all(|o| o.json["KV"]["Namespace"] == "team-a"));
    }
}

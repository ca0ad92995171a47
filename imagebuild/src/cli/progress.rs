//! Build progress on the terminal: one bar per layer on a TTY, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal as _;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use ep_imagebuild::build::{BlobPush, LayerReport, Progress};
use ep_imagebuild::digest::Digest;

/// Progress for the `build` command.
pub(crate) struct CliProgress {
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
    quiet: bool,
}

impl CliProgress {
    /// Bars when stderr is a terminal; plain lines otherwise; nothing when `quiet`.
    pub(crate) fn new(quiet: bool) -> Self {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(|| {
            (
                MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                Mutex::new(HashMap::new()),
            )
        });
        CliProgress { bars, quiet }
    }

    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        match &self.bars {
            Some((multi, _)) => {
                let _ = multi.println(text);
            }
            None => eprintln!("{text}"),
        }
    }
}

fn short(d: &Digest) -> &str {
    d.hex().get(..12).unwrap_or(d.hex())
}

impl Progress for CliProgress {
    fn message(&self, text: &str) {
        self.line(&format!("==> {text}"));
    }

    fn layer_started(&self, name: &str, bytes: u64) {
        if let Some((multi, bars)) = &self.bars {
            let bar = multi.add(ProgressBar::new(bytes));
            let style = ProgressStyle::with_template(
                "{prefix:>14} [{bar:30}] {bytes:>10}/{total_bytes:<10} {msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(name.to_string());
            if let Ok(mut m) = bars.lock() {
                m.insert(name.to_string(), bar);
            }
        }
    }

    fn layer_advanced(&self, name: &str, bytes: u64) {
        if let Some((_, bars)) = &self.bars {
            if let Some(bar) = bars.lock().ok().and_then(|m| m.get(name).cloned()) {
                bar.inc(bytes);
            }
        }
    }

    fn layer_finished(&self, layer: &LayerReport) {
        let text = format!(
            "{} {} ({} bytes{})",
            if layer.cache_hit { "cached" } else { "built" },
            short(&layer.digest),
            layer.size,
            if layer.files > 0 {
                format!(", {} files", layer.files)
            } else {
                String::new()
            }
        );
        match &self.bars {
            Some((_, bars)) => {
                if let Some(bar) = bars.lock().ok().and_then(|m| m.get(&layer.name).cloned()) {
                    bar.finish_with_message(text);
                }
            }
            None => self.line(&format!("layer {}: {text}", layer.name)),
        }
    }

    fn blob_pushed(&self, digest: &Digest, outcome: &BlobPush) {
        let what = match outcome {
            BlobPush::Uploaded { bytes } => format!("uploaded {bytes} bytes"),
            BlobPush::Copied { bytes } => format!("copied {bytes} bytes from the base registry"),
            BlobPush::Skipped => "already present".to_string(),
            BlobPush::Mounted { from } => format!("mounted from {from}"),
        };
        self.line(&format!("blob {}: {what}", short(digest)));
    }
}

//! JSON-line logging in the format Terraform reads from plugin stderr.
//!
//! Terraform's plugin client (go-plugin + hclog) reads the provider's stderr
//! line by line. A line that is a JSON object with `@level`, `@message` and
//! `@timestamp` becomes a structured entry of Terraform's own log (shown with
//! `TF_LOG=debug` and friends); every other key of the object is kept as a
//! key/value pair. Anything else is logged verbatim at debug level, except
//! lines starting with `panic: `, which Terraform records as a plugin crash.
//!
//! Use the [`tracing`] macros anywhere in the provider; [`init`] installs the
//! subscriber that writes those lines (the plugin's `run` calls it).
//!
//! # The rule for secrets
//!
//! **Never log configuration values of sensitive attributes** (passwords,
//! client secrets, tokens, private keys), neither as a message nor as a field,
//! not even at trace level, and not inside a `Debug` dump of a larger struct.
//! Terraform's log files end up in CI artefacts and bug reports. Wrap such
//! values in [`Secret`] as soon as they are read so that `{:?}`/`{}` print
//! `(sensitive)`, or pass them through [`redact`] when only a string is at hand.
//!
//! # Level
//!
//! The level comes from the first of `TF_LOG_PROVIDER_EP`, `TF_LOG_PROVIDER`
//! and `TF_LOG` that holds a valid value (`TRACE`, `DEBUG`, `INFO`, `WARN`,
//! `ERROR`, `OFF`, or `JSON`, which means `TRACE`; case-insensitive), and is
//! `INFO` when none does. Terraform passes its environment to the plugins it
//! starts and filters again on its side, so a line we write is only shown when
//! Terraform's own level lets it through.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The value of `@module` in every line this provider writes.
pub const MODULE: &str = "provider.terraform-provider-ep";

/// What [`Secret`] and [`redact`] print instead of a sensitive value.
pub const REDACTED: &str = "(sensitive)";

/// Environment variables consulted for the level, most specific first.
pub const LEVEL_ENV_VARS: [&str; 3] = ["TF_LOG_PROVIDER_EP", "TF_LOG_PROVIDER", "TF_LOG"];

/// Crates whose own diagnostics are capped at `INFO`: at trace level the
/// HTTP/2 and TLS stacks would drown the provider's lines.
const NOISY_TARGETS: [&str; 7] = [
    "h2",
    "hyper",
    "hyper_util",
    "tower",
    "tonic",
    "rustls",
    "tokio_rustls",
];

/// Crates capped at `DEBUG`: at trace level the AWS SDK's HTTP layers dump
/// request and response bodies, which can carry secrets.
const BODY_DUMPING_TARGETS: [&str; 4] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sigv4",
];

static INIT: Once = Once::new();

/// Installs the JSON-line subscriber on stderr and a panic hook that Terraform
/// recognises as a plugin crash.
///
/// Idempotent: calls after the first do nothing. If another global `tracing`
/// subscriber was installed earlier (for example by a test harness), that one
/// is kept.
pub fn init() {
    INIT.call_once(|| {
        let level = level_from_env(|name| std::env::var(name).ok());
        let subscriber = tracing_subscriber::registry()
            .with(JsonLinesLayer::stderr().with_filter(target_filter(level)));
        // An existing global subscriber is not an error worth reporting.
        let _ = tracing::subscriber::set_global_default(subscriber);
        install_panic_hook();
    });
}

/// The level filter: `level` for everything, except the noisy transport
/// crates (capped at `INFO`) and the AWS SDK's HTTP layers (capped at `DEBUG`).
fn target_filter(level: LevelFilter) -> Targets {
    let targets = NOISY_TARGETS
        .iter()
        .fold(Targets::new().with_default(level), |t, name| {
            t.with_target(*name, level.min(LevelFilter::INFO))
        });
    BODY_DUMPING_TARGETS.iter().fold(targets, |t, name| {
        t.with_target(*name, level.min(LevelFilter::DEBUG))
    })
}

/// Reads the level from [`LEVEL_ENV_VARS`] through `lookup`; `INFO` when none
/// of them holds a valid level.
pub fn level_from_env(lookup: impl Fn(&str) -> Option<String>) -> LevelFilter {
    LEVEL_ENV_VARS
        .iter()
        .filter_map(|name| lookup(name))
        .find_map(|value| parse_level(&value))
        .unwrap_or(LevelFilter::INFO)
}

/// Parses one of Terraform's level names (case-insensitive); `JSON` is `TRACE`
/// as in Terraform. `None` for an empty or unknown value.
pub fn parse_level(value: &str) -> Option<LevelFilter> {
    match value.trim().to_ascii_uppercase().as_str() {
        "TRACE" | "JSON" => Some(LevelFilter::TRACE),
        "DEBUG" => Some(LevelFilter::DEBUG),
        "INFO" => Some(LevelFilter::INFO),
        "WARN" => Some(LevelFilter::WARN),
        "ERROR" => Some(LevelFilter::ERROR),
        "OFF" => Some(LevelFilter::OFF),
        _ => None,
    }
}

/// Replaces a sensitive string by [`REDACTED`] (an empty string stays empty, so
/// "was it set?" remains visible in logs).
pub fn redact(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        REDACTED.to_owned()
    }
}

/// A value that must never appear in logs or error messages.
///
/// `Debug` and `Display` print [`REDACTED`]; the value itself is reachable
/// only through [`Secret::expose`] or [`Secret::into_inner`], which makes every
/// use of it visible in review. It deliberately implements neither
/// `Serialize` nor `Deref`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a sensitive value.
    pub fn new(value: T) -> Self {
        Self(value)
    }

    /// Borrows the sensitive value; do not log the result.
    pub fn expose(&self) -> &T {
        &self.0
    }

    /// Unwraps the sensitive value; do not log the result.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> From<T> for Secret<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl<T> fmt::Display for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Where a [`JsonLinesLayer`] writes its lines.
#[derive(Clone)]
enum Sink {
    /// The process's stderr, one `write_all` per line.
    Stderr,
    /// An in-memory buffer (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    Buffer(Arc<Mutex<Vec<u8>>>),
}

impl Sink {
    fn write_line(&self, line: &str) {
        match self {
            Sink::Stderr => {
                // A failed write to stderr has nowhere to be reported.
                let _ = std::io::stderr().lock().write_all(line.as_bytes());
            }
            Sink::Buffer(buffer) => {
                if let Ok(mut buffer) = buffer.lock() {
                    buffer.extend_from_slice(line.as_bytes());
                }
            }
        }
    }
}

/// A [`tracing_subscriber::Layer`] writing every event as one JSON object per
/// line: `@level`, `@message`, `@module`, `@timestamp`, then the fields of the
/// enclosing spans (outermost first) and of the event itself.
pub struct JsonLinesLayer {
    sink: Sink,
}

impl JsonLinesLayer {
    /// A layer writing to the process's stderr.
    pub fn stderr() -> Self {
        Self { sink: Sink::Stderr }
    }

    /// A layer writing into `buffer` (for tests).
    #[cfg(test)]
    fn buffer(buffer: Arc<Mutex<Vec<u8>>>) -> Self {
        Self {
            sink: Sink::Buffer(buffer),
        }
    }
}

/// The recorded fields of a span, kept in its extensions.
struct SpanFields(Map<String, Value>);

impl<S> Layer<S> for JsonLinesLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = Map::new();
        attrs.record(&mut JsonVisitor(&mut fields));
        span.extensions_mut().insert(SpanFields(fields));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            values.record(&mut JsonVisitor(fields));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Map::new();
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope.from_root() {
                if let Some(SpanFields(span_fields)) = span.extensions().get::<SpanFields>() {
                    for (key, value) in span_fields {
                        fields.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        event.record(&mut JsonVisitor(&mut fields));
        let line = format_line(
            *event.metadata().level(),
            fields,
            time::OffsetDateTime::now_utc(),
        );
        self.sink.write_line(&line);
    }
}

/// Builds one log line (with its trailing newline). `fields` holds the
/// event's fields; its `message` becomes `@message`, keys starting with `@`
/// are renamed with a leading `_` so they cannot shadow the reserved keys.
fn format_line(level: Level, mut fields: Map<String, Value>, now: time::OffsetDateTime) -> String {
    let message = match fields.remove("message") {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let mut object = Map::new();
    object.insert("@level".into(), Value::String(level_name(level).into()));
    object.insert("@message".into(), Value::String(message));
    object.insert("@module".into(), Value::String(MODULE.into()));
    object.insert("@timestamp".into(), Value::String(format_timestamp(now)));
    for (key, value) in fields {
        let key = if key.starts_with('@') {
            format!("_{key}")
        } else {
            key
        };
        object.insert(key, value);
    }
    let mut line = Value::Object(object).to_string();
    line.push('\n');
    line
}

/// hclog's level names.
fn level_name(level: Level) -> &'static str {
    match level {
        Level::TRACE => "trace",
        Level::DEBUG => "debug",
        Level::INFO => "info",
        Level::WARN => "warn",
        Level::ERROR => "error",
    }
}

/// RFC 3339 in UTC with exactly six fractional digits, the layout go-plugin
/// parses (`2006-01-02T15:04:05.000000Z07:00`); any other layout makes
/// Terraform drop the structure of the line.
pub fn format_timestamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.microsecond()
    )
}

/// Records `tracing` fields as JSON values.
struct JsonVisitor<'a>(&'a mut Map<String, Value>);

impl Visit for JsonVisitor<'_> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        let value = serde_json::Number::from_f64(value)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(value.to_string()));
        self.0.insert(field.name().into(), value);
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::Bool(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        self.0.insert(field.name().into(), Value::String(text));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
}

/// Prints panics the way Terraform recognises them: a plain `panic: ` line
/// followed by the location and a backtrace. Terraform records these lines
/// and shows them as "The ... plugin crashed!" even when logging is off.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_owned());
        let location = info
            .location()
            .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
            .unwrap_or_else(|| "unknown location".to_owned());
        let thread = std::thread::current();
        let backtrace = std::backtrace::Backtrace::force_capture();
        let text = format!(
            "panic: {message}\n\nthread '{}' panicked at {location}\n{backtrace}\n",
            thread.name().unwrap_or("<unnamed>")
        );
        let _ = std::io::stderr().lock().write_all(text.as_bytes());
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(f: impl FnOnce()) -> Vec<Value> {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry()
            .with(JsonLinesLayer::buffer(buffer.clone()).with_filter(LevelFilter::TRACE));
        tracing::subscriber::with_default(subscriber, f);
        let bytes = buffer.lock().map(|b| b.clone()).unwrap_or_default();
        let text = String::from_utf8(bytes).unwrap_or_default();
        assert!(text.ends_with('\n'), "lines end with a newline: {text:?}");
        text.lines()
            .map(|line| serde_json::from_str(line).unwrap_or(Value::Null))
            .collect()
    }

    #[test]
    fn event_is_one_json_line_with_reserved_keys_and_fields() {
        let lines = capture(|| {
            let span = tracing::info_span!("rpc", tf_rpc = "ApplyResourceChange");
            let _guard = span.enter();
            tracing::warn!(
                count = 3,
                ok = true,
                path = "a\"b\\c\nd",
                "quote \" newline \n tab \t unicode é"
            );
        });
        assert_eq!(lines.len(), 1);
        let line = &lines[0];
        assert_eq!(line["@level"], "warn");
        assert_eq!(line["@message"], "quote \" newline \n tab \t unicode é");
        assert_eq!(line["@module"], MODULE);
        assert_eq!(line["count"], 3);
        assert_eq!(line["ok"], true);
        assert_eq!(line["path"], "a\"b\\c\nd");
        assert_eq!(line["tf_rpc"], "ApplyResourceChange");
        let ts = line["@timestamp"].as_str().unwrap_or_default();
        assert_eq!(ts.len(), "2026-11-29T19:33:32.123456Z".len(), "{ts}");
        assert!(ts.ends_with('Z'));
    }

    #[test]
    fn reserved_keys_come_first_and_cannot_be_shadowed() {
        let mut fields = Map::new();
        fields.insert("message".into(), Value::String("hi".into()));
        fields.insert("@level".into(), Value::String("error".into()));
        let when = time::OffsetDateTime::from_unix_timestamp_nanos(1_795_980_812_123_456_789)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let line = format_line(Level::DEBUG, fields, when);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(
            line.starts_with(r#"{"@level":"debug","@message":"hi","@module":"provider.terraform-provider-ep","@timestamp":""#),
            "{line}"
        );
        assert!(line.contains(r#""_@level":"error""#), "{line}");
    }

    #[test]
    fn timestamp_has_microseconds_and_utc() {
        let when = time::OffsetDateTime::from_unix_timestamp_nanos(1_795_980_812_000_001_999)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        assert_eq!(format_timestamp(when), "2026-11-29T19:33:32.000001Z");
    }

    #[test]
    fn level_from_env_prefers_specific_and_defaults_to_info() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        assert_eq!(level_from_env(env(&[])), LevelFilter::INFO);
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "debug")])),
            LevelFilter::DEBUG
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "debug"), ("TF_LOG_PROVIDER", "ERROR")])),
            LevelFilter::ERROR
        );
        assert_eq!(
            level_from_env(env(&[("TF_LOG", "json"), ("TF_LOG_PROVIDER", "bogus")])),
            LevelFilter::TRACE
        );
        assert_eq!(level_from_env(env(&[("TF_LOG", "off")])), LevelFilter::OFF);
    }

    #[test]
    fn transport_and_sdk_targets_are_capped() {
        let filter = target_filter(LevelFilter::TRACE);
        assert!(filter.would_enable("terraform_provider_ep::plugin", &Level::TRACE));
        assert!(!filter.would_enable("h2::proto", &Level::DEBUG));
        assert!(filter.would_enable("h2::proto", &Level::INFO));
        assert!(!filter.would_enable("aws_smithy_runtime::client", &Level::TRACE));
        assert!(filter.would_enable("aws_smithy_runtime::client", &Level::DEBUG));
        let quiet = target_filter(LevelFilter::WARN);
        assert!(!quiet.would_enable("terraform_provider_ep", &Level::INFO));
        assert!(!quiet.would_enable("h2", &Level::INFO));
    }

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?} {secret}"), "(sensitive) (sensitive)");
        assert_eq!(secret.expose(), "hunter2");
        assert_eq!(redact("hunter2"), REDACTED);
        assert_eq!(redact(""), "");
        let lines = capture(|| tracing::info!(password = ?secret, "configured"));
        assert_eq!(lines[0]["password"], REDACTED);
    }
}

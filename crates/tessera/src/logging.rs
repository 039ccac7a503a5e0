//! Log output (issue 16): text for a person at a terminal, JSON lines for a collector, never
//! colour codes into a pipe or a file. Lines logged while a request is served carry its
//! `request_id` (the listener's span).
//!
//! Every issued token is an INFO line, so at INFO the log is on the issuance path and its cost
//! counts (issue 16 allows 5% with metrics). Two things keep it small, measured with
//! `bench/run-ops.sh`: JSON lines are written by [`JsonLines`] straight into the line buffer
//! (tracing-subscriber's JSON formatter serialises every event through `serde_json` and parses
//! the span's fields back from text on every line), and lines below WARN are written to stderr
//! in batches by [`Sink`] (at most [`FLUSH_EVERY`] late) instead of one `write(2)` per line;
//! WARN and ERROR lines are written at once.

use std::fmt::{self, Write as _};
use std::io::{IsTerminal as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::Registry;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::{Layer, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt as _;

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Text with colours on a terminal, JSON lines otherwise.
    Auto,
    /// Text (`key=value` fields); colours only on a terminal.
    Text,
    /// One JSON object per line: `timestamp`, `level`, `message`, the event's fields, `target`,
    /// and `span` (with `request_id`) inside a request.
    Json,
}

impl std::str::FromStr for LogFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        <Self as clap::ValueEnum>::from_str(s, true).map_err(|_| format!("log_format {s:?} is not auto, text or json"))
    }
}

/// How late a buffered line may reach stderr.
pub const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Buffered bytes past which the buffer is written at once.
const FLUSH_AT: usize = 64 * 1024;

/// Installs the global subscriber. `RUST_LOG` filters; `default_level` otherwise.
pub fn init(format: LogFormat, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let terminal = std::io::stderr().is_terminal();
    let json = match format {
        LogFormat::Auto => !terminal,
        LogFormat::Text => false,
        LogFormat::Json => true,
    };
    let sink = Sink::start();
    let lines = tracing_subscriber::fmt::layer().with_writer(sink);
    let lines: Box<dyn Layer<Registry> + Send + Sync> = if json {
        // No colour codes: JsonLines writes none (and ignores the ANSI setting).
        lines.with_ansi(false).fmt_fields(JsonFields).event_format(JsonLines).boxed()
    } else {
        // Colour codes only for a person at a terminal, never into journald or a log file.
        lines.with_ansi(terminal).boxed()
    };
    // The filter as a layer filters globally: trace export sees what the log lines see.
    let subscriber = tracing_subscriber::registry().with(lines).with(filter);
    #[cfg(feature = "otel")]
    let subscriber = subscriber.with(otel::layer());
    subscriber.init();
}

/// Trace export (`--features otel`): the spans of each request (with its request id) and their
/// events, to an OTLP/HTTP collector named by the standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`); nothing is exported when neither is set. Batched on
/// the SDK's own thread: a request never waits for the collector.
#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use tracing_subscriber::Layer;
    use tracing_subscriber::registry::LookupSpan;

    static PROVIDER: std::sync::OnceLock<opentelemetry_sdk::trace::SdkTracerProvider> = std::sync::OnceLock::new();

    pub fn layer<S>() -> Option<impl Layer<S>>
    where
        S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    {
        let named = |k| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !named("OTEL_EXPORTER_OTLP_ENDPOINT") && !named("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return None;
        }
        let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("tessera: OpenTelemetry export not started: {e}");
                return None;
            }
        };
        let resource = opentelemetry_sdk::Resource::builder().with_service_name("tessera").build();
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("tessera");
        let _ = PROVIDER.set(provider);
        Some(tracing_opentelemetry::layer().with_tracer(tracer))
    }

    /// Exports what is batched (call before the process exits).
    pub fn shutdown() {
        if let Some(provider) = PROVIDER.get() {
            let _ = provider.shutdown();
        }
    }
}

/// Writes what is buffered (call before the process exits).
pub fn flush() {
    #[cfg(feature = "otel")]
    otel::shutdown();
    if let Some(sink) = SINK.get() {
        sink.flush();
    }
}

static SINK: std::sync::OnceLock<Sink> = std::sync::OnceLock::new();

/// Stderr behind a buffer, written by a background thread every [`FLUSH_EVERY`].
#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Sink {
    fn start() -> Self {
        let sink = SINK.get_or_init(|| Sink(Arc::new(Mutex::new(Vec::with_capacity(FLUSH_AT))))).clone();
        let ticking = sink.clone();
        std::thread::Builder::new()
            .name("log-flush".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(FLUSH_EVERY);
                    ticking.flush();
                }
            })
            .expect("log flush thread");
        sink
    }

    fn flush(&self) {
        let mut buf = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if !buf.is_empty() {
            let _ = std::io::stderr().write_all(&buf);
            buf.clear();
        }
    }
}

/// One line's writer: appends to the buffer; a WARN or ERROR line is written out when dropped.
struct LineWriter {
    sink: Sink,
    urgent: bool,
}

impl std::io::Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let mut buf = self.sink.0.lock().unwrap_or_else(|e| e.into_inner());
        buf.extend_from_slice(bytes);
        if buf.len() >= FLUSH_AT {
            let _ = std::io::stderr().write_all(&buf);
            buf.clear();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        if self.urgent {
            self.sink.flush();
        }
    }
}

impl<'a> MakeWriter<'a> for Sink {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> LineWriter {
        LineWriter { sink: self.clone(), urgent: true }
    }

    fn make_writer_for(&'a self, meta: &tracing::Metadata<'_>) -> LineWriter {
        LineWriter { sink: self.clone(), urgent: *meta.level() <= Level::WARN }
    }
}

/// A span's fields as the inside of a JSON object (`"request_id":"…"`), formatted once when
/// the span opens and copied into each of its lines as is.
struct JsonFields;

impl<'w> FormatFields<'w> for JsonFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(&self, writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut w = writer;
        let mut v = Fields { out: &mut w, first: true, result: Ok(()) };
        fields.record(&mut v);
        v.result
    }

    fn add_fields(&self, current: &'w mut FormattedFields<Self>, fields: &tracing::span::Record<'_>) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut v = Fields { out: &mut current.fields, first, result: Ok(()) };
        fields.record(&mut v);
        v.result
    }
}

/// The JSON line: the same shape as tracing-subscriber's flattened JSON (`timestamp`, `level`,
/// the fields with `message`, `target`, `span`), written without an intermediate value.
struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        SystemTime.format_time(&mut w)?;
        write!(w, "\",\"level\":\"{}\"", meta.level())?;
        let mut v = Fields { out: &mut w, first: false, result: Ok(()) };
        event.record(&mut v);
        v.result?;
        w.write_str(",\"target\":")?;
        string(&mut w, meta.target())?;
        if let Some(span) = ctx.lookup_current() {
            w.write_str(",\"span\":{")?;
            let ext = span.extensions();
            if let Some(fields) = ext.get::<FormattedFields<N>>().filter(|f| !f.fields.is_empty()) {
                w.write_str(&fields.fields)?;
                w.write_char(',')?;
            }
            w.write_str("\"name\":")?;
            string(&mut w, span.name())?;
            w.write_char('}')?;
        }
        w.write_str("}\n")
    }
}

/// Writes fields as `"name":value` pairs, comma-separated (and led by a comma unless first).
struct Fields<'a, W: fmt::Write> {
    out: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<W: fmt::Write> Fields<'_, W> {
    fn key(&mut self, field: &Field) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.out.write_char(',')?;
        }
        string(self.out, field.name())?;
        self.out.write_char(':')
    }

    fn put(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_ok() {
            self.result = self.key(field).and_then(|()| value(self.out));
        }
    }
}

impl<W: fmt::Write> Visit for Fields<'_, W> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, |w| string(w, value));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, |w| write!(w, "{value}"));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        // JSON has no NaN or infinity: those become strings.
        self.put(field, |w| if value.is_finite() { write!(w, "{value}") } else { string(w, &value.to_string()) });
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

fn string(w: &mut impl fmt::Write, s: &str) -> fmt::Result {
    w.write_char('"')?;
    Escaped(w).write_str(s)?;
    w.write_char('"')
}

/// RFC 8259 §7 string escaping.
struct Escaped<'a, W: fmt::Write>(&'a mut W);

impl<W: fmt::Write> fmt::Write for Escaped<'_, W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut start = 0;
        for (i, c) in s.char_indices() {
            let escape = match c {
                '"' => "\\\"",
                '\\' => "\\\\",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                c if (c as u32) < 0x20 || c == '\u{7f}' => "",
                _ => continue,
            };
            self.0.write_str(&s[start..i])?;
            if escape.is_empty() {
                write!(self.0, "\\u{:04x}", c as u32)?;
            } else {
                self.0.write_str(escape)?;
            }
            start = i + c.len_utf8();
        }
        self.0.write_str(&s[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_rfc8259_says() {
        let mut out = String::new();
        string(&mut out, "a\"b\\c\nd\u{1b}[31m é").unwrap();
        assert_eq!(out, "\"a\\\"b\\\\c\\nd\\u001b[31m é\"");
        let back: String = serde_json::from_str(&out).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1b}[31m é");
    }
}

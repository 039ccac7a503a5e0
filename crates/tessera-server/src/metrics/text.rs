//! The Prometheus text exposition format, version 0.0.4: `# HELP` and `# TYPE` once per
//! family, then its samples together; label values escaped (`\`, `"`, newline).

use std::fmt::Write as _;

/// The content type of a scrape answer.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A scrape answer being written.
#[derive(Default)]
pub(crate) struct Text(pub(crate) String);

impl Text {
    /// Starts a family: `kind` is `counter`, `gauge` or `histogram`.
    pub(crate) fn family(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub(crate) fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.0.push(',');
                }
                self.0.push_str(k);
                self.0.push_str("=\"");
                escape(&mut self.0, v);
                self.0.push('"');
            }
            self.0.push('}');
        }
        self.0.push(' ');
        number(&mut self.0, value);
        self.0.push('\n');
    }

    /// A family of one unlabelled counter.
    pub(crate) fn counter(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, "counter");
        self.sample(name, &[], value);
    }

    /// A family of one unlabelled gauge.
    pub(crate) fn gauge(&mut self, name: &str, help: &str, value: f64) {
        self.family(name, help, "gauge");
        self.sample(name, &[], value);
    }

    /// The samples of one histogram series (`_bucket`, `_sum`, `_count`) of family `name`.
    pub(crate) fn histogram(&mut self, name: &str, labels: &[(&str, &str)], (buckets, sum): (Vec<(f64, u64)>, f64)) {
        let bucket = format!("{name}_bucket");
        let mut count = 0;
        for (le, n) in buckets {
            let le = if le.is_infinite() { "+Inf".to_owned() } else { le.to_string() };
            let mut with_le: Vec<(&str, &str)> = labels.to_vec();
            with_le.push(("le", &le));
            self.sample(&bucket, &with_le, n as f64);
            count = n;
        }
        self.sample(&format!("{name}_sum"), labels, sum);
        self.sample(&format!("{name}_count"), labels, count as f64);
    }
}

fn escape(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

fn number(out: &mut String, v: f64) {
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped_and_integers_print_plain() {
        let mut t = Text::default();
        t.sample("m", &[("client_id", "a\"b\\c\nd")], 3.0);
        t.sample("m", &[], 0.25);
        assert_eq!(t.0, "m{client_id=\"a\\\"b\\\\c\\nd\"} 3\nm 0.25\n");
    }
}

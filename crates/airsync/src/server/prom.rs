//! The exposition of one scrape, encoded by `prometheus-client` in the
//! OpenMetrics text format. The values are read from each part's counters
//! at scrape time (`metrics.rs` fills an [`Exposition`]), so the families
//! are handed to the encoder as one collector of constant values: the
//! names, kinds, labels and help texts stay those the dashboards, alerts
//! and runbooks use.

use airsync_airtable::Histogram;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// The content type of [`Exposition::finish`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// One exposition being gathered.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

/// The kind of a metric family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

#[derive(Debug)]
struct Family {
    /// The family's name; a counter's without its `_total`, which the
    /// encoder adds to each sample.
    name: String,
    kind: Kind,
    help: String,
    samples: Vec<Sample>,
}

type Labels = Vec<(String, String)>;

#[derive(Debug)]
enum Sample {
    Value {
        labels: Labels,
        value: f64,
    },
    Histogram {
        labels: Labels,
        /// Per-bucket (not cumulative) counts by upper bound, the last at
        /// `f64::MAX` for `+Inf`.
        buckets: Vec<(f64, u64)>,
        sum: f64,
        count: u64,
    },
}

/// A counter's family name: its samples' name without `_total`.
fn family_name(name: &str, kind: Kind) -> &str {
    match kind {
        Kind::Counter => name.strip_suffix("_total").unwrap_or(name),
        Kind::Gauge | Kind::Histogram => name,
    }
}

/// The labels, their values escaped as the text format wants (backslash,
/// quote, newline): `prometheus-client` writes label values as given.
fn owned(labels: &[(&str, &str)]) -> Labels {
    labels
        .iter()
        .map(|(k, v)| {
            let escaped = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            ((*k).to_owned(), escaped)
        })
        .collect()
}

impl Exposition {
    /// Starts a family with its help text; a counter is named as its
    /// samples are, `..._total`.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        self.families.push(Family {
            name: family_name(name, kind).to_owned(),
            kind,
            help: help.to_owned(),
            samples: Vec::new(),
        });
    }

    fn current(&mut self, name: &str) -> Option<&mut Family> {
        self.families
            .iter_mut()
            .rev()
            .find(|f| f.name == family_name(name, f.kind))
    }

    /// One sample of the family named `name` (started before).
    pub fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        if let Some(family) = self.current(name) {
            family.samples.push(Sample::Value {
                labels: owned(labels),
                value,
            });
        }
    }

    /// A histogram's samples, in the family named `name` (started before):
    /// a bucket per bound, then `+Inf`, the sum and the count.
    pub fn histogram(&mut self, name: &str, labels: &[(&str, &str)], histogram: &Histogram) {
        let bounds = histogram.bounds();
        let counts = histogram.counts();
        let mut buckets: Vec<(f64, u64)> =
            bounds.iter().copied().zip(counts.iter().copied()).collect();
        buckets.push((f64::MAX, counts.get(bounds.len()).copied().unwrap_or(0)));
        if let Some(family) = self.current(name) {
            family.samples.push(Sample::Histogram {
                labels: owned(labels),
                buckets,
                sum: histogram.sum_seconds(),
                count: histogram.count(),
            });
        }
    }

    /// The text, in the OpenMetrics format ([`CONTENT_TYPE`]).
    pub fn finish(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Gathered(self.families)));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
        out
    }
}

/// The families of one scrape, as constant values.
#[derive(Debug)]
struct Gathered(Vec<Family>);

impl Collector for Gathered {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0 {
            let kind = match family.kind {
                Kind::Counter => MetricType::Counter,
                Kind::Gauge => MetricType::Gauge,
                Kind::Histogram => MetricType::Histogram,
            };
            let mut metric = encoder.encode_descriptor(&family.name, &family.help, None, kind)?;
            for sample in &family.samples {
                let labels = match sample {
                    Sample::Value { labels, .. } | Sample::Histogram { labels, .. } => labels,
                };
                if labels.is_empty() {
                    encode_sample(&mut metric, family.kind, sample)?;
                } else {
                    let mut labelled = metric.encode_family(labels)?;
                    encode_sample(&mut labelled, family.kind, sample)?;
                }
            }
        }
        Ok(())
    }
}

fn encode_sample(
    metric: &mut MetricEncoder<'_>,
    kind: Kind,
    sample: &Sample,
) -> Result<(), std::fmt::Error> {
    match sample {
        Sample::Value { value, .. } => {
            let whole = value.is_finite() && value.fract() == 0.0 && value.abs() < 1e15;
            match kind {
                Kind::Counter if whole && *value >= 0.0 => {
                    metric.encode_counter::<NoLabelSet, _, u64>(&(*value as u64), None)
                }
                Kind::Counter => metric.encode_counter::<NoLabelSet, _, f64>(value, None),
                _ if whole => metric.encode_gauge(&(*value as i64)),
                _ => metric.encode_gauge(value),
            }
        }
        Sample::Histogram {
            buckets,
            sum,
            count,
            ..
        } => metric.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_histograms_follow_the_openmetrics_text_format() {
        let mut e = Exposition::default();
        e.family("x_total", Kind::Counter, "Things.");
        e.sample("x_total", &[("route", "/a\"b\\c\nd")], 3.0);
        e.family("up", Kind::Gauge, "Up.");
        e.sample("up", &[], 1.0);
        e.family("ratio", Kind::Gauge, "A share.");
        e.sample("ratio", &[], 0.5);
        e.family("lat_seconds", Kind::Histogram, "Latency.");
        let mut latency = Histogram::new(&[0.1, 1.0]);
        for seconds in [0.0625, 0.0625, 0.125, 1.25] {
            latency.observe(seconds);
        }
        e.histogram("lat_seconds", &[("route", "/a")], &latency);
        let text = e.finish();
        for expected in [
            "# HELP x Things.\n# TYPE x counter\nx_total{route=\"/a\\\"b\\\\c\\nd\"} 3\n",
            "up 1\n",
            "ratio 0.5\n",
            "# TYPE lat_seconds histogram\n",
            "lat_seconds_bucket{le=\"0.1\",route=\"/a\"} 2\n",
            "lat_seconds_bucket{le=\"1.0\",route=\"/a\"} 3\n",
            "lat_seconds_bucket{le=\"+Inf\",route=\"/a\"} 4\n",
            "lat_seconds_count{route=\"/a\"} 4\n",
            "lat_seconds_sum{route=\"/a\"} 1.5\n",
        ] {
            assert!(text.contains(expected), "{expected:?} is not in:\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}

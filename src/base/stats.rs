//! Pure statistics: the Wilson score interval that bounds a violation rate, and the
//! HdrHistogram plumbing behind every latency and duration in a report (one histogram shape,
//! its V2 + base64 encoding for `trials.jsonl`, merging, and the percentiles a report shows).
//!
//! Nothing here does I/O, reads a clock or draws a random number: every function is a function
//! of its arguments, so summaries rebuilt from `trials.jsonl` are identical to the live ones.
//! Percentiles come from `hdrhistogram`, never from hand-written code.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use serde::{Deserialize, Serialize};

/// The two-sided 95% normal quantile, `Φ⁻¹(0.975)`.
pub const Z_95: f64 = 1.959963984540054;

/// Lowest latency the histograms tell apart: 1 µs.
pub const LATENCY_US_MIN: u64 = 1;
/// Highest latency the histograms track: 60 s. Anything longer is recorded as 60 s
/// (`saturating_record`): a commit that slow is a stall, and its exact length does not matter.
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Three significant figures: a bucket is at most 0.1% wide.
pub const LATENCY_SIGFIG: u8 = 3;

/// An empty histogram of microseconds, 1 µs .. 60 s, 3 significant figures. Every histogram
/// crashfuzz writes has this shape, so merging two never needs to resize.
pub fn new_latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, LATENCY_SIGFIG).expect("constant bounds are valid")
}

/// V2 serialization (uncompressed: a trial's histogram holds few distinct values), base64
/// (standard alphabet, padded) so it fits in a JSON string.
pub fn encode_histogram(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::new();
    V2Serializer::new().serialize(h, &mut bytes).expect("serializing into a Vec cannot fail");
    STANDARD.encode(bytes)
}

/// The inverse of [`encode_histogram`]; `""` (what a trial without commits records) is an empty
/// latency histogram.
pub fn decode_histogram(s: &str) -> Result<Histogram<u64>, String> {
    if s.is_empty() {
        return Ok(new_latency_histogram());
    }
    let bytes = STANDARD.decode(s).map_err(|e| format!("histogram is not base64: {e}"))?;
    Deserializer::new().deserialize(&mut bytes.as_slice()).map_err(|e| format!("histogram does not decode: {e:?}"))
}

/// Adds `from` into `into`. Histograms of the same shape merge exactly; a histogram from
/// elsewhere that holds values beyond `into`'s range has each of those values saturated to the
/// top of the range rather than lost, so counts always add up.
pub fn merge_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    if into.add(from).is_ok() {
        return;
    }
    for v in from.iter_recorded() {
        into.saturating_record_n(v.value_iterated_to(), v.count_at_value());
    }
}

/// What a report shows of a latency (or duration) histogram, in microseconds; every value is
/// `None` when nothing was recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: Option<u64>,
    pub p99: Option<u64>,
    pub p999: Option<u64>,
    pub max: Option<u64>,
}

impl LatencySummary {
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            p50: Some(h.value_at_quantile(0.5)),
            p99: Some(h.value_at_quantile(0.99)),
            p999: Some(h.value_at_quantile(0.999)),
            max: Some(h.max()),
        }
    }
}

/// The median of a histogram, or `None` when it is empty. HdrHistogram's median is the highest
/// value equivalent to the lower middle element: exact to the histogram's 3 significant figures.
pub fn median(h: &Histogram<u64>) -> Option<u64> {
    (!h.is_empty()).then(|| h.value_at_quantile(0.5))
}

/// The median of `values` (the lower middle one of an even count) with a distribution-free 95%
/// interval on it: the order statistics of ranks `n/2 ∓ 1.96·√n/2`, which bracket the true
/// median with at least 95% probability whatever the distribution (the binomial sign-test
/// interval, by its normal approximation). `None` for no values. For 300 paired differences the
/// interval spans ranks 133 to 168.
pub fn median_with_interval(values: &[i64]) -> Option<(i64, i64, i64)> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let n = sorted.len() as f64;
    let half_width = Z_95 * n.sqrt() / 2.0;
    let last = sorted.len() - 1;
    // 1-based ranks, rounded outwards, as 0-based indexes within the values.
    let lo = ((n / 2.0 - half_width).floor() as usize).saturating_sub(1).min(last);
    let hi = ((n / 2.0 + half_width).ceil() as usize).min(last);
    Some((sorted[lo], sorted[last / 2], sorted[hi]))
}

/// The Wilson score interval at 95% for `successes` out of `trials`: a bound on the true rate
/// that stays honest at 0 and at `trials` (where the normal approximation would claim a rate of
/// exactly 0% or 100%). With no trials nothing is known: `(0.0, 1.0)`.
///
/// `0/45` gives an upper bound of about 7.9%: seeing no violation in 45 crash states says the
/// rate is probably below 7.9%, not that it is zero.
pub fn wilson_interval(successes: u64, trials: u64) -> (f64, f64) {
    assert!(successes <= trials, "wilson_interval: {successes} successes out of {trials} trials");
    if trials == 0 {
        return (0.0, 1.0);
    }
    let n = trials as f64;
    let p = successes as f64 / n;
    let z2 = Z_95 * Z_95;
    let denominator = 1.0 + z2 / n;
    let centre = p + z2 / (2.0 * n);
    let half_width = Z_95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    let lo = (centre - half_width) / denominator;
    let hi = (centre + half_width) / denominator;
    // In exact arithmetic lo ≤ p ≤ hi within [0, 1]; at k = 0 and k = n rounding can step a
    // hair outside, which a report must never show (e.g. an upper bound below the observed rate).
    (lo.clamp(0.0, 1.0).min(p), hi.clamp(0.0, 1.0).max(p))
}

/// The Wilson 95% upper bound alone: what "at most this rate" a report quotes.
pub fn wilson_upper(successes: u64, trials: u64) -> f64 {
    wilson_interval(successes, trials).1
}

/// A rate as a percentage with about two significant figures: `7.9%`, `19%`, `0.38%`.
pub fn percent(rate: f64) -> String {
    let p = rate * 100.0;
    match p {
        p if p >= 10.0 => format!("{p:.0}%"),
        p if p >= 1.0 => format!("{p:.1}%"),
        p if p >= 0.1 => format!("{p:.2}%"),
        p => format!("{p:.3}%"),
    }
}

/// `k/n (≤ u%)`, u the Wilson 95% upper bound; `–` when nothing was checked.
pub fn rate_with_bound(k: u64, n: u64) -> String {
    if n == 0 {
        return "–".to_string();
    }
    format!("{k}/{n} (≤ {})", percent(wilson_upper(k, n)))
}

/// `k/n` with what it means, for the pages: a zero with its Wilson 95% upper bound, a count
/// (bold: these are violations) with its whole interval; `no data` when nothing was checked.
pub fn rate_with_interval(k: u64, n: u64) -> String {
    if n == 0 {
        return "no data".into();
    }
    let (lower, upper) = wilson_interval(k, n);
    // A zero is read by its upper bound; a count by its whole interval.
    if k == 0 {
        format!("0/{n} (≤ {})", percent(upper))
    } else {
        format!("**{k}/{n}** ({}–{})", percent(lower), percent(upper))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_for_the_pages_show_a_zero_by_its_bound_and_a_count_by_its_interval() {
        assert_eq!(rate_with_interval(0, 200), "0/200 (≤ 1.9%)");
        assert_eq!(rate_with_interval(3, 40), "**3/40** (2.6%–20%)");
        assert_eq!(rate_with_interval(0, 0), "no data");
    }

    #[test]
    fn rates_are_shown_with_their_bound() {
        assert_eq!(rate_with_bound(0, 45), "0/45 (≤ 7.9%)");
        assert_eq!(rate_with_bound(40, 40), "40/40 (≤ 100%)");
        assert_eq!(rate_with_bound(0, 1000), "0/1000 (≤ 0.38%)");
        assert_eq!(rate_with_bound(0, 0), "–");
    }

    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 5e-5
    }

    #[test]
    fn wilson_known_values() {
        let (lo, hi) = wilson_interval(0, 45);
        assert_eq!(lo, 0.0);
        assert!(close(hi, 0.0787), "{hi}");
        let (lo, hi) = wilson_interval(5, 100);
        assert!(close(lo, 0.0215), "{lo}");
        assert!(close(hi, 0.1118), "{hi}");
        assert_eq!(wilson_interval(0, 0), (0.0, 1.0));
        // k = n mirrors k = 0.
        let (lo, hi) = wilson_interval(45, 45);
        assert_eq!(hi, 1.0);
        assert!(close(lo, 1.0 - 0.0787), "{lo}");
        assert_eq!(wilson_interval(1, 1).1, 1.0);
        assert!(close(wilson_interval(1, 1).0, 0.2065), "{:?}", wilson_interval(1, 1));
        // More evidence, tighter bound.
        assert!(wilson_upper(0, 1000) < wilson_upper(0, 100));
    }

    /// The median's interval is the order statistics of the sign test's ranks.
    #[test]
    fn the_median_interval_takes_the_sign_test_ranks() {
        let values: Vec<i64> = (1..=300).rev().collect();
        assert_eq!(median_with_interval(&values), Some((133, 150, 168)));
        assert_eq!(median_with_interval(&[7]), Some((7, 7, 7)));
        assert_eq!(median_with_interval(&[3, -1]), Some((-1, -1, 3)));
        assert_eq!(median_with_interval(&[]), None);
    }

    proptest! {
        /// The interval brackets the median, and both ends are observed values.
        #[test]
        fn the_median_interval_brackets_the_median(values in proptest::collection::vec(-1000i64..1000, 1..500)) {
            let (lo, median, hi) = median_with_interval(&values).unwrap();
            prop_assert!(lo <= median && median <= hi);
            prop_assert!(values.contains(&lo) && values.contains(&median) && values.contains(&hi));
            let below = values.iter().filter(|&&v| v < median).count();
            prop_assert!(below <= (values.len() - 1) / 2);
        }

        #[test]
        fn wilson_contains_the_observed_rate(n in 1u64..100_000, k_frac in 0.0f64..=1.0) {
            let k = ((n as f64) * k_frac).round() as u64;
            let (lo, hi) = wilson_interval(k, n);
            let p = k as f64 / n as f64;
            prop_assert!(0.0 <= lo && lo <= p && p <= hi && hi <= 1.0, "{k}/{n}: ({lo}, {hi})");
        }

        /// Counting failures instead of successes mirrors the interval.
        #[test]
        fn wilson_is_symmetric(n in 1u64..100_000, k_frac in 0.0f64..=1.0) {
            let k = ((n as f64) * k_frac).round() as u64;
            let (lo, hi) = wilson_interval(k, n);
            let (lo2, hi2) = wilson_interval(n - k, n);
            prop_assert!((lo - (1.0 - hi2)).abs() < 1e-9 && (hi - (1.0 - lo2)).abs() < 1e-9);
        }
    }

    #[test]
    fn histogram_round_trips() {
        let mut h = new_latency_histogram();
        for us in [1, 7, 250, 250, 980, 12_345, 59_999_999] {
            h.record(us).unwrap();
        }
        let text = encode_histogram(&h);
        let back = decode_histogram(&text).unwrap();
        assert_eq!(back, h);
        assert_eq!(back.len(), 7);
        assert_eq!(LatencySummary::of(&back), LatencySummary::of(&h));
        assert!(decode_histogram("").unwrap().is_empty());
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
    }

    #[test]
    fn histograms_merge() {
        let mut a = new_latency_histogram();
        let mut b = new_latency_histogram();
        for us in 1..=100 {
            a.record(us).unwrap();
            b.record(us * 1000).unwrap();
        }
        let mut merged = decode_histogram(&encode_histogram(&a)).unwrap();
        merge_histogram(&mut merged, &decode_histogram(&encode_histogram(&b)).unwrap());
        assert_eq!(merged.len(), 200);
        assert!(merged.equivalent(merged.max(), 100_000));
        assert_eq!(median(&merged), Some(100));
        // A foreign histogram with values beyond 60 s saturates instead of failing.
        let mut wide = Histogram::<u64>::new_with_bounds(1, 1 << 40, 3).unwrap();
        wide.record(1 << 39).unwrap();
        merge_histogram(&mut merged, &wide);
        assert_eq!(merged.len(), 201);
        assert!(merged.equivalent(merged.max(), LATENCY_US_MAX));
    }

    #[test]
    fn empty_histograms_summarise_to_nothing() {
        let s = LatencySummary::of(&new_latency_histogram());
        assert_eq!(s, LatencySummary { count: 0, p50: None, p99: None, p999: None, max: None });
        assert_eq!(median(&new_latency_histogram()), None);
    }
}

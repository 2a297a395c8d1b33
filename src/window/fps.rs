//! Frame-rate measurement, as the paper's experiment does it: count the
//! frames of each second, keep one sample per second, report the median.

use std::time::{Duration, Instant};

/// Counts frames and closes one sample per elapsed second.
#[derive(Clone, Debug)]
pub struct FpsMeter {
    start: Instant,
    frames: u64,
    samples: Vec<f64>,
    period: Duration,
}

impl FpsMeter {
    pub fn new(now: Instant) -> Self {
        Self::with_period(now, Duration::from_secs(1))
    }

    /// A meter whose samples cover `period` each (tests use short ones).
    pub fn with_period(now: Instant, period: Duration) -> Self {
        FpsMeter {
            start: now,
            frames: 0,
            samples: Vec::new(),
            period: period.max(Duration::from_millis(1)),
        }
    }

    /// Count one frame shown at `now`; returns the frame rate of the period
    /// that just ended, if one did.
    pub fn frame(&mut self, now: Instant) -> Option<f64> {
        self.frames += 1;
        let elapsed = now.saturating_duration_since(self.start);
        if elapsed < self.period {
            return None;
        }
        let fps = self.frames as f64 / elapsed.as_secs_f64();
        self.samples.push(fps);
        self.frames = 0;
        self.start = now;
        Some(fps)
    }

    /// The most recent completed sample.
    pub fn last(&self) -> Option<f64> {
        self.samples.last().copied()
    }

    /// Every completed sample, oldest first.
    pub fn samples(&self) -> &[f64] {
        &self.samples
    }

    /// Forget the samples so far (e.g. the warm-up seconds).
    pub fn clear(&mut self) {
        self.samples.clear();
    }
}

/// Median of `values`; `None` if there are none.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_sample_per_period() {
        let t0 = Instant::now();
        let mut m = FpsMeter::new(t0);
        for i in 1..=59 {
            assert_eq!(m.frame(t0 + Duration::from_millis(i * 16)), None);
        }
        let fps = m.frame(t0 + Duration::from_millis(1000)).unwrap();
        assert!((fps - 60.0).abs() < 1e-9, "{fps}");
        assert_eq!(m.samples().len(), 1);
        assert_eq!(m.frame(t0 + Duration::from_millis(1500)), None);
        let fps = m.frame(t0 + Duration::from_millis(2000)).unwrap();
        assert!((fps - 2.0).abs() < 1e-9, "{fps}");
        assert_eq!(m.last(), Some(fps));
        m.clear();
        assert!(m.samples().is_empty());
    }

    #[test]
    fn median_odd_even_empty() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN]), None);
    }
}

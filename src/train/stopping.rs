//! Early stopping on a monitored loss: stop after `patience` epochs in a row whose loss
//! improved on the best so far by less than `min_delta`.

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarlyStopping {
    pub min_delta: f64,
    pub patience: usize,
    best: f64,
    best_epoch: usize,
    stale: usize,
}

impl EarlyStopping {
    pub fn new(min_delta: f64, patience: usize) -> Self {
        Self {
            min_delta,
            patience,
            best: f64::INFINITY,
            best_epoch: 0,
            stale: 0,
        }
    }

    /// Records epoch `epoch`'s loss; returns true when training should stop.
    pub fn update(&mut self, epoch: usize, loss: f64) -> bool {
        if self.best - loss > self.min_delta || (self.best.is_infinite() && loss.is_finite()) {
            self.best = loss;
            self.best_epoch = epoch;
            self.stale = 0;
        } else {
            self.stale += 1;
        }
        self.stale >= self.patience
    }

    pub fn best(&self) -> (f64, usize) {
        (self.best, self.best_epoch)
    }

    /// Starts counting stale epochs afresh (after acting on a plateau), keeping the best.
    pub fn restart_patience(&mut self) {
        self.stale = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::EarlyStopping;

    #[test]
    fn stops_after_patience_epochs_without_enough_improvement() {
        let mut s = EarlyStopping::new(0.1, 2);
        assert!(!s.update(1, 1.0));
        assert!(!s.update(2, 0.8)); // improved by 0.2
        assert!(!s.update(3, 0.75)); // by 0.05 < 0.1: stale 1
        assert!(s.update(4, 0.74)); // stale 2
        assert_eq!(s.best(), (0.8, 2));
    }

    #[test]
    fn a_restarted_plateau_waits_patience_epochs_again() {
        let mut s = EarlyStopping::new(0.0, 2);
        assert!(!s.update(1, 1.0));
        assert!(!s.update(2, 1.0));
        assert!(s.update(3, 1.0));
        s.restart_patience();
        assert!(!s.update(4, 1.0));
        assert!(s.update(5, 1.0));
        assert!(!s.update(6, 0.5)); // improved: best and count reset
        assert_eq!(s.best(), (0.5, 6));
    }
}

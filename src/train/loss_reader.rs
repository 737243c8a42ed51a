//! Reads chunk losses back from the GPU's loss log without stalling: ranges of slots are
//! copied to staging buffers and mapped asynchronously; values are collected when ready.

use crate::engine::{Engine, LOSS_LOG_SLOTS};
use crate::error::Result;
use crate::gpu::PendingRead;
use std::collections::VecDeque;

/// Flushes at least this often, so the ring never overwrites an unread slot.
const MAX_UNFLUSHED: usize = LOSS_LOG_SLOTS / 2;

pub struct LossReader {
    /// Iteration index of the first loss not yet asked for.
    next_unflushed: u64,
    /// Iterations written so far.
    written: u64,
    pending: VecDeque<(PendingRead, PendingRead)>,
    /// Reports that arrived but were not handed out yet, in iteration order.
    arrived: VecDeque<StepReport>,
    /// Iterations handed out so far.
    handed: u64,
}

impl LossReader {
    pub fn new() -> Self {
        Self {
            next_unflushed: 0,
            written: 0,
            pending: VecDeque::new(),
            arrived: VecDeque::new(),
            handed: 0,
        }
    }

    /// The loss-log slot of the next iteration; call [`LossReader::wrote`] after running it.
    pub fn next_slot(&self) -> usize {
        (self.written % LOSS_LOG_SLOTS as u64) as usize
    }

    pub fn wrote(&mut self, engine: &Engine<'_>, flush_every: usize) -> Result<()> {
        self.written += 1;
        let unflushed = (self.written - self.next_unflushed) as usize;
        if unflushed >= flush_every.clamp(1, MAX_UNFLUSHED) {
            self.flush(engine)?;
        }
        Ok(())
    }

    /// Asks for every written but unread loss.
    pub fn flush(&mut self, engine: &Engine<'_>) -> Result<()> {
        while self.next_unflushed < self.written {
            let first = (self.next_unflushed % LOSS_LOG_SLOTS as u64) as usize;
            let count = ((self.written - self.next_unflushed) as usize).min(LOSS_LOG_SLOTS - first);
            self.pending.push_back((
                engine.read_losses(first, count)?,
                engine.read_norms(first, count)?,
            ));
            self.next_unflushed += count as u64;
        }
        Ok(())
    }

    /// The reports of every iteration up to `upto` (counting from this reader's start) not
    /// handed out yet, in order; waits only if some have not arrived.
    pub fn reports_upto(&mut self, engine: &Engine<'_>, upto: u64) -> Result<Vec<StepReport>> {
        let more = self.ready(engine)?;
        self.arrived.extend(more);
        if self.handed + (self.arrived.len() as u64) < upto {
            self.flush(engine)?;
            engine.gpu().wait_idle()?;
            let more = self.ready(engine)?;
            self.arrived.extend(more);
        }
        let take = (upto.saturating_sub(self.handed) as usize).min(self.arrived.len());
        self.handed += take as u64;
        Ok(self.arrived.drain(..take).collect())
    }

    /// Iterations whose loss and gradient norm have arrived, in order, without waiting.
    fn ready(&mut self, engine: &Engine<'_>) -> Result<Vec<StepReport>> {
        let gpu = engine.gpu();
        let mut out = Vec::new();
        while let Some((losses, norms)) = self.pending.front() {
            if !(losses.is_ready(gpu)? && norms.is_ready(gpu)?) {
                break;
            }
            let (l, n) = (
                losses.take(gpu)?.unwrap_or_default(),
                norms.take(gpu)?.unwrap_or_default(),
            );
            out.extend(
                l.into_iter()
                    .zip(n)
                    .map(|(loss, grad_norm)| StepReport { loss, grad_norm }),
            );
            self.pending.pop_front();
        }
        Ok(out)
    }

    /// Flushes, waits for every iteration still in flight, and hands out all reports.
    pub fn drain(&mut self, engine: &Engine<'_>) -> Result<Vec<StepReport>> {
        self.flush(engine)?;
        engine.gpu().wait_idle()?;
        let more = self.ready(engine)?;
        self.arrived.extend(more);
        debug_assert!(self.pending.is_empty());
        self.handed += self.arrived.len() as u64;
        Ok(self.arrived.drain(..).collect())
    }
}

/// What the host learns about one training iteration.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepReport {
    pub loss: f32,
    /// The global gradient norm before clipping; not finite when the step was skipped.
    pub grad_norm: f32,
}

impl StepReport {
    /// Whether the GPU skipped this step (non-finite loss or gradient).
    pub fn skipped(&self) -> bool {
        !(self.loss.is_finite() && self.grad_norm.is_finite())
    }
}

impl Default for LossReader {
    fn default() -> Self {
        Self::new()
    }
}
